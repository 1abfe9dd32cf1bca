"""The training loop's thread rule: small products on one BLAS / PyTorch thread, others as set."""

from __future__ import annotations

import re

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import softmax_xp._layout as layouts_module
import softmax_xp._threads as threads_module
from softmax_xp import SoftmaxXP

X = np.random.default_rng(0).normal(size=(64, 6))
Y = np.arange(64) % 3


def blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def threads_seen_in_epochs(internals, backend: str, probe) -> list:
    """Train 2 epochs, recording ``probe()`` inside each SGD epoch."""
    seen = []
    original = internals.sgd_epoch

    def recording(*args, **kwargs):
        seen.append(probe())
        return original(*args, **kwargs)

    internals.patch_sgd_epoch(recording)
    SoftmaxXP(6, 3, backend=backend, seed=0).train(X, Y, epochs=2, batch_size=16, verbose=0)
    return seen


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
@pytest.mark.parametrize(
    ("policy", "threshold", "inside"),
    [("auto", 2**25, {1}), ("auto", 1, {2}), ("default", 2**25, {2})],
)
def test_small_products_use_one_blas_thread(
    monkeypatch, backend, policy, threshold, inside, internals
):
    pytest.importorskip(backend)
    monkeypatch.setenv("SOFTMAX_XP_THREADS", policy)
    monkeypatch.setattr(threads_module, "SMALL_PRODUCT", threshold)
    with threadpool_limits(2, user_api="blas"):  # the library's own setting, whatever the machine
        seen = threads_seen_in_epochs(internals, backend, blas_threads)
        assert seen == [inside, inside]
        assert blas_threads() == {2}  # restored after training


def test_small_products_use_one_torch_thread(monkeypatch, internals):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert threads_seen_in_epochs(internals, "torch", torch.get_num_threads) == [1, 1]
        assert torch.get_num_threads() == 2
        monkeypatch.setattr(threads_module, "SMALL_PRODUCT", 1)
        assert threads_seen_in_epochs(internals, "torch", torch.get_num_threads) == [2, 2]
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bad", ["0", "-2", "1.5", "many", "four"])
def test_bad_policy_says_what_is_allowed(monkeypatch, bad):
    monkeypatch.setenv("SOFTMAX_XP_THREADS", bad)
    with pytest.raises(
        ValueError,
        match=rf"SOFTMAX_XP_THREADS='{re.escape(bad)}': use 'auto'.*'default'.*a number of threads, "
        "1 or more",
    ):
        SoftmaxXP(6, 3, backend="numpy", seed=0).train(X, Y, epochs=1, verbose=0)


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
@pytest.mark.parametrize("threshold", [2**25, 1])
def test_a_number_of_threads_is_used_for_every_product(monkeypatch, internals, backend, threshold):
    pytest.importorskip(backend)
    monkeypatch.setenv("SOFTMAX_XP_THREADS", " 3 ")
    monkeypatch.setattr(threads_module, "SMALL_PRODUCT", threshold)
    with threadpool_limits(2, user_api="blas"):
        assert threads_seen_in_epochs(internals, backend, blas_threads) == [{3}, {3}]
        assert blas_threads() == {2}


def test_a_number_of_threads_sets_torchs(monkeypatch, internals):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("SOFTMAX_XP_THREADS", "3")
    before = torch.get_num_threads()
    assert threads_seen_in_epochs(internals, "torch", torch.get_num_threads) == [3, 3]
    assert torch.get_num_threads() == before


def test_overlapping_torch_trainings_restore_the_setting():
    """Two trainings in two threads (GridSearchCV with joblib's threading backend) enter and
    leave the rule in any order: the setting of before comes back, not the other's one thread."""
    torch = pytest.importorskip("torch")
    from softmax_xp._backend import resolve_backend

    where = resolve_backend("torch", fallback=False)
    with threads_module._torch_threads(2):
        first, second = (threads_module.training_threads(where, 16, 6, 3) for _ in range(2))
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)  # the first training ends while the second runs
        assert torch.get_num_threads() == 1  # the second still runs on one thread
        second.__exit__(None, None, None)
        assert torch.get_num_threads() == 2


def test_blas_setting_survives_overlapping_trainings_in_worker_threads():
    """threadpoolctl lets one thread at a time control OpenBLAS. Training A (a worker thread of
    a threaded search) sets one thread, B starts and records that as the setting of before, A
    ends and restores, B ends and would set one thread for good: workers leave BLAS alone."""
    import threading

    from softmax_xp._backend import resolve_backend

    before = blas_threads()
    if before == {1}:
        pytest.skip("BLAS runs one thread here: nothing to lose")
    where = resolve_backend("numpy", fallback=False)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def training_a():
        with threads_module.training_threads(where, 16, 6, 3):
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def training_b():
        a_in.wait(10)
        with threads_module.training_threads(where, 16, 6, 3):
            b_in.set()
            a_out.wait(10)

    workers = [threading.Thread(target=training_a), threading.Thread(target=training_b)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert blas_threads() == before


# -- the thread count chosen per epoch ------------------------------------------------------------
def _count_of(backend: str):
    if backend == "torch":
        import torch

        return torch.get_num_threads
    return lambda: max(blas_threads())


def _default_two(backend: str):
    """The library's own thread count set to 2 for the test, whatever the machine."""
    if backend == "torch":
        return threads_module._torch_threads(2)
    return threadpool_limits(2, user_api="blas")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_one_thread_and_the_default_give_the_same_bits_where_the_probe_says_so(
    monkeypatch, backend, internals
):
    """float64 SGD on MNIST's shapes forced to one thread and to the default (2): where the
    probe that the measured choice rests on says the counts agree, the trainings are bit for
    bit the same; where they differ, the run takes the size rule (skipped, with the BLAS)."""
    pytest.importorskip(backend)
    rng = np.random.default_rng(0)
    X, y = rng.random((700, 784)), rng.integers(0, 10, 700)
    runs = {}
    with _default_two(backend):
        agree = internals.counts_agree(backend, "float64", 256, 784, 10)
        for policy in ("1", "default"):
            monkeypatch.setenv("SOFTMAX_XP_THREADS", policy)
            model = SoftmaxXP(784, 10, backend=backend, dtype="float64", seed=0, momentum=0.9)
            history = model.train(X, y, epochs=2, batch_size=256, verbose=0)
            runs[policy] = (np.asarray(model.W), history.loss, history.threads)
    assert runs["1"][2] == [1, 1] and runs["default"][2] == [2, 2]
    same = np.array_equal(runs["1"][0], runs["default"][0]) and runs["1"][1] == runs["default"][1]
    if agree:
        assert same
    if not same:
        blas = "PyTorch's BLAS" if backend == "torch" else layouts_module.blas_vendor()
        pytest.skip(f"{blas} rounds differently on 1 and 2 threads here: auto takes the size rule")


def _measured_run(internals, backend, costs, epochs=3, switch_after=None, momentum=0.0):
    """Train with the measured choice on, each SGD step taking ``costs[count]`` seconds of a
    fake clock on the count in effect; ``switch_after``: (epoch, new costs) mid-run. Returns
    the model, its History and the counts each step ran on."""
    now = [0.0]
    count = _count_of(backend)
    per_step: list[int] = []
    original = internals.sgd_epoch
    cost = dict(costs)

    def timed(*args, on_step=None, **kwargs):
        if on_step is None:  # not measuring
            return original(*args, **kwargs)
        first = [True]

        def step():
            if not first[0]:
                now[0] += cost[count()]  # the step that just ended, on the count in effect
            first[0] = False
            on_step()
            per_step.append(count())

        return original(*args, on_step=step, **kwargs)

    def callback(epoch, history):
        if switch_after and epoch == switch_after[0]:
            cost.clear()
            cost.update(switch_after[1])

    internals.pretend_counts_agree()
    internals.patch_thread_clock(lambda: now[0])
    internals.patch_sgd_epoch(timed)
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(200, 6)), rng.integers(0, 3, 200)
    model = SoftmaxXP(6, 3, backend=backend, dtype="float64", seed=0, momentum=momentum)
    with _default_two(backend):
        history = model.train(X, y, epochs=epochs, batch_size=8, verbose=0, callback=callback)
        assert count() == 2  # the library's count is back after the run
    return model, history, per_step


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict", "torch"])
def test_an_idle_machine_moves_to_the_default_count_a_busy_one_stays_on_one(
    monkeypatch, internals, backend
):
    pytest.importorskip(backend)
    monkeypatch.setenv("SOFTMAX_XP_THREADS", "auto")
    trial = internals.thread_trial_steps()
    _, idle, steps = _measured_run(internals, backend, {1: 3.0, 2: 1.0})
    assert idle.threads == [2, 2, 2]
    assert steps[:3] == [2, 2, 2] and steps[3 : trial - 1] == [1] * (trial - 4)  # trial, reference
    assert set(steps[trial - 1 : 25]) == {2}  # the rest of epoch 1 on the faster count
    _, busy, steps = _measured_run(internals, backend, {1: 1.0, 2: 3.0})
    assert busy.threads == [1, 1, 1]
    assert set(steps[trial - 1 : 25]) == {1}


def test_the_choice_follows_a_machine_that_becomes_busy(monkeypatch, internals):
    monkeypatch.setenv("SOFTMAX_XP_THREADS", "auto")
    _, history, _ = _measured_run(
        internals, "numpy", {1: 3.0, 2: 1.0}, epochs=4, switch_after=(2, {1: 1.0, 2: 3.0})
    )
    assert history.threads == [2, 2, 1, 1]


def test_the_measured_choice_gives_the_numbers_of_one_thread(monkeypatch, internals):
    """The trial steps are real steps: a measured run that switches counts trains exactly as a
    run forced to one thread (here on shapes the BLAS runs on one thread anyway)."""
    monkeypatch.setenv("SOFTMAX_XP_THREADS", "auto")
    measured, history, _ = _measured_run(internals, "numpy", {1: 3.0, 2: 1.0}, momentum=0.9)
    monkeypatch.setenv("SOFTMAX_XP_THREADS", "1")
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(200, 6)), rng.integers(0, 3, 200)
    forced = SoftmaxXP(6, 3, backend="numpy", dtype="float64", seed=0, momentum=0.9)
    forced_history = forced.train(X, y, epochs=3, batch_size=8, verbose=0)
    np.testing.assert_array_equal(measured.W, forced.W)
    assert history.loss == forced_history.loss
    assert history.threads == [2, 2, 2] and forced_history.threads == [1, 1, 1]


@pytest.mark.parametrize("policy", ["1", "default", "auto"])
def test_resume_is_bit_exact_whatever_the_thread_choice(monkeypatch, tmp_path, policy):
    monkeypatch.setenv("SOFTMAX_XP_THREADS", policy)
    rng = np.random.default_rng(2)
    X, y = rng.random((600, 784)), rng.integers(0, 10, 600)
    args = dict(batch_size=128, verbose=0)
    whole = SoftmaxXP(784, 10, backend="numpy", dtype="float64", seed=5, momentum=0.9)
    whole.train(X, y, epochs=4, **args)
    path = tmp_path / "ckpt.npz"
    SoftmaxXP(784, 10, backend="numpy", dtype="float64", seed=5, momentum=0.9).train(
        X, y, epochs=2, checkpoint=path, **args
    )
    resumed = SoftmaxXP(784, 10, backend="numpy", dtype="float64", seed=9, momentum=0.9)
    history = resumed.train(X, y, epochs=4, resume_from=path, **args)
    np.testing.assert_array_equal(resumed.W, whole.W)
    assert history.loss == whole.history_.loss
    assert len(history.threads) == 4 and history.threads[:2] == whole.history_.threads[:2]


def test_history_records_the_count_and_checkpoints_keep_it(monkeypatch, tmp_path):
    monkeypatch.setenv("SOFTMAX_XP_THREADS", "3")
    path = tmp_path / "ckpt.npz"
    model = SoftmaxXP(6, 3, backend="numpy", seed=0)
    assert model.train(X, Y, epochs=2, batch_size=16, verbose=0, checkpoint=path).threads == [3, 3]
    monkeypatch.setenv("SOFTMAX_XP_THREADS", "1")
    resumed = SoftmaxXP(6, 3, backend="numpy", seed=0)
    history = resumed.train(X, Y, epochs=3, batch_size=16, verbose=0, resume_from=path)
    assert history.threads == [3, 3, 1]
    lbfgs = SoftmaxXP(6, 3, backend="numpy", seed=0)
    history = lbfgs.train(X, Y, epochs=2, solver="lbfgs", verbose=0)
    assert history.threads == [0] * len(history)  # not a count of ours


def test_a_checkpoint_written_before_threads_were_recorded_resumes(tmp_path, monkeypatch):
    import json

    from softmax_xp._io import write_npz_atomic

    monkeypatch.setenv("SOFTMAX_XP_THREADS", "1")
    path, old = tmp_path / "ckpt.npz", tmp_path / "old.npz"
    SoftmaxXP(6, 3, backend="numpy", seed=0).train(
        X, Y, epochs=2, batch_size=16, verbose=0, checkpoint=path
    )
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "__header__"}
        header = json.loads(str(npz["__header__"]))
    header = {k: v for k, v in header.items() if k not in ("format", "format_version")}
    del header["history"]["threads"]
    write_npz_atomic(old, arrays, header)
    resumed = SoftmaxXP(6, 3, backend="numpy", seed=0)
    history = resumed.train(X, Y, epochs=3, batch_size=16, verbose=0, resume_from=old)
    assert history.threads == [0, 0, 1]  # 0: not recorded


def test_rows_too_big_to_probe_take_the_size_rule(internals):
    """The probe of whether the counts agree builds a few batches of synthetic rows: past 64 MiB
    of them it does not try, and the run takes the size rule (no measuring)."""
    with _default_two("numpy"):
        assert not internals.counts_agree("numpy", "float64", 256, 200_000, 10)
