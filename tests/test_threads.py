"""The training loop's thread rule: small products on one BLAS / PyTorch thread, others as set."""

from __future__ import annotations

import re

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

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
