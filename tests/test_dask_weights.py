"""``sample_weight`` with a Dask ``X``: the same weights as in memory, checked before training.

Skipped when dask or distributed is not installed; the nox session ``tests-dask`` runs them on a
LocalCluster of 2 worker processes. Dask chunks are NumPy arrays; the model's own backend is the
``backend`` fixture's.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

from softmax_xp import SoftmaxXP, to_numpy  # noqa: E402

D, K = 6, 3
ROWS = 60  # 250 rows: blocks of 60, 60, 60, 60 and 10


def blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(K, D))
    y = rng.integers(0, K, size=n)
    return centres[y] + rng.normal(size=(n, D)), y


X, Y = blobs(250)
X_VAL, Y_VAL = blobs(50, seed=1)
# Block 1 (rows 60-119) weighs nothing. Seed 6: adding the blocks' float sums gives another mean
# than NumPy's sum of all weights, so only an exact mean makes the two paths agree bit for bit.
W8 = np.random.default_rng(6).uniform(0.0, 3.0, size=250)
W8[60:120] = 0.0


def test_the_float_sums_of_blocks_and_of_all_weights_differ():
    """The premise of the equality tests below: a Dask path adding block sums in float would
    scale the weights differently from the in-memory path."""
    by_blocks = sum(W8[lo : lo + ROWS].sum() for lo in range(0, 250, ROWS))
    assert by_blocks != W8.sum()


def new_model(backend=None, **kwargs) -> SoftmaxXP:
    args = {"lr": 0.2, "reg": 1e-3, "seed": 11, "dtype": "float64", **kwargs}
    if backend is None:
        return SoftmaxXP(D, K, backend="numpy", **args)
    return SoftmaxXP(D, K, backend=backend.name, device=backend.device, **args)


def dask_xyw(X=X, y=Y, w=W8, rows=ROWS):
    return (
        da.from_array(X, chunks=(rows, X.shape[1])),
        da.from_array(y, chunks=rows),
        da.from_array(w, chunks=rows),
    )


def assert_same(a, b, exact: bool) -> None:
    if exact:
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    else:
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-10, atol=1e-13)


# -- SGD: the in-memory blocks run, bit for bit ----------------------------------------------------
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_weighted_sgd_on_the_cluster_equals_in_memory_blocks(client, backend, momentum, internals):
    """Dask weights (a whole block of them 0) give the weights, velocity and History of
    ``train(..., shuffle="blocks", block_rows=R, sample_weight=w)`` in memory."""
    exact = backend.name == "numpy"
    kwargs = dict(epochs=3, batch_size=16, verbose=0)
    memory = new_model(backend, momentum=momentum)
    want = memory.train(
        X, Y, X_VAL, Y_VAL, shuffle="blocks", block_rows=ROWS, sample_weight=W8, **kwargs
    )
    model = new_model(backend, momentum=momentum)
    Xd, yd, wd = dask_xyw()
    got = model.train(Xd, yd, X_VAL, Y_VAL, sample_weight=wd, **kwargs)
    for ours, theirs in zip(
        (model.W, model.b, *(internals.state(model).velocity or ())),
        (memory.W, memory.b, *(internals.state(memory).velocity or ())),
        strict=True,
    ):
        assert_same(ours, theirs, exact)
    if exact:
        assert got.loss == want.loss
    np.testing.assert_allclose(got.loss, want.loss, rtol=1e-12)
    assert got.val_accuracy == want.val_accuracy
    unweighted = new_model(backend, momentum=momentum)
    unweighted.train(X, Y, shuffle="blocks", block_rows=ROWS, **kwargs)
    assert not np.allclose(to_numpy(unweighted.W), to_numpy(model.W))  # the weights did count


def test_unaligned_weight_chunks_and_float32(client):
    """Weights chunked unlike X are rechunked to X's rows; float32 on Dask's threaded
    scheduler still gives the in-memory weights exactly."""
    X32, w32 = X.astype(np.float32), W8.astype(np.float32)
    memory = new_model(dtype="float32", momentum=0.9)
    memory.train(
        X32, Y, epochs=2, batch_size=16, verbose=0, shuffle="blocks", block_rows=50,
        sample_weight=w32,
    )  # fmt: skip
    model = new_model(dtype="float32", momentum=0.9)
    Xd, yd, _ = dask_xyw(X32, rows=100)
    wd = da.from_array(w32, chunks=((30, 70, 120, 30),))
    with dask.config.set(scheduler="threads"):
        model.train(Xd, yd, epochs=2, batch_size=16, verbose=0, block_rows=50, sample_weight=wd)
    np.testing.assert_array_equal(model.W, memory.W)
    np.testing.assert_array_equal(model.b, memory.b)


@pytest.mark.parametrize("form", ["numpy", "list", "int"])
def test_in_memory_weights_are_cut_into_the_blocks(client, form):
    """An in-memory array or list (any real dtype) of weights goes with a Dask X."""
    w = {"numpy": W8, "list": W8.tolist(), "int": np.arange(250) % 4}[form]
    memory = new_model()
    memory.train(X, Y, epochs=2, verbose=0, shuffle="blocks", block_rows=ROWS, sample_weight=w)
    model = new_model()
    model.train(*dask_xyw()[:2], epochs=2, verbose=0, sample_weight=w)
    np.testing.assert_array_equal(model.W, memory.W)


def test_partial_fit_with_dask_weights_is_one_weighted_block_pass(client):
    pytest.importorskip("sklearn")
    from softmax_xp.sklearn import SoftmaxClassifier

    clf = SoftmaxClassifier(lr=0.2, reg=1e-3, random_state=11, dtype="float64")
    Xd, yd, wd = dask_xyw()
    for _ in range(2):
        clf.partial_fit(Xd, yd, classes=np.arange(K), sample_weight=wd)
    memory = new_model(init="zeros")
    memory.train(
        X, Y, epochs=2, batch_size=256, verbose=0, shuffle="blocks", block_rows=ROWS,
        sample_weight=W8,
    )  # fmt: skip
    np.testing.assert_array_equal(clf.coef_, memory.W.T)


def test_a_weighted_run_resumes_to_the_same_weights(client, tmp_path):
    """The checkpoint records nothing of the weights: the resumed run recomputes their mean
    from the data and goes on as if it had never stopped."""
    Xd, yd, wd = dask_xyw()
    kwargs = dict(batch_size=16, verbose=0, sample_weight=wd)
    whole = new_model(momentum=0.9)
    whole.train(Xd, yd, epochs=3, **kwargs)
    path = tmp_path / "ckpt.npz"
    new_model(momentum=0.9).train(Xd, yd, epochs=1, checkpoint=path, **kwargs)
    resumed = new_model(momentum=0.9, seed=0)
    history = resumed.train(Xd, yd, epochs=3, resume_from=path, **kwargs)
    np.testing.assert_array_equal(resumed.W, whole.W)
    assert history.loss == whole.history_.loss


# -- L-BFGS: the weighted reduction ----------------------------------------------------------------
def test_weighted_lbfgs_on_the_cluster_equals_in_memory(client, backend):
    pytest.importorskip("scipy")
    kwargs = dict(epochs=10, verbose=0, solver="lbfgs", tol=0.0)
    memory = new_model(backend, reg=1e-2)
    want = memory.train(X, Y, X_VAL, Y_VAL, sample_weight=W8, **kwargs)
    model = new_model(backend, reg=1e-2)
    Xd, yd, wd = dask_xyw()
    val = dask_xyw(X_VAL, Y_VAL, np.ones(50), rows=20)[:2]  # checked in the same pass
    got = model.train(Xd, yd, *val, sample_weight=wd, **kwargs)
    np.testing.assert_allclose(to_numpy(model.W), to_numpy(memory.W), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(to_numpy(model.b), to_numpy(memory.b), rtol=1e-8, atol=1e-10)
    assert len(got) == len(want) == 10
    np.testing.assert_allclose(got.loss, want.loss, rtol=1e-10)
    assert got.val_accuracy == want.val_accuracy


def test_classifier_fit_takes_dask_weights(client):
    pytest.importorskip("sklearn")
    pytest.importorskip("scipy")
    from softmax_xp.sklearn import SoftmaxClassifier

    args = dict(solver="lbfgs", reg=0.1, max_iter=100, tol=1e-6, random_state=0, dtype="float64")
    Xd, yd, wd = dask_xyw()
    lazy = SoftmaxClassifier(**args).fit(Xd, yd, sample_weight=wd)
    eager = SoftmaxClassifier(**args).fit(X, Y, sample_weight=W8)
    plain = SoftmaxClassifier(**args).fit(X, Y)
    np.testing.assert_allclose(lazy.coef_, eager.coef_, rtol=1e-7, atol=1e-9)
    assert not np.allclose(lazy.coef_, plain.coef_, rtol=1e-3)


# -- bad weights: refused in the validation pass, before the first epoch ---------------------------
def with_value(at: int, value: float) -> np.ndarray:
    w = W8.copy()
    w[at] = value
    return w


@pytest.mark.parametrize(
    ("weights", "error", "message"),
    [
        (
            lambda: with_value(-1, np.nan),
            ValueError,
            r"sample_weight contains NaN or infinity \(block 4, rows 240-249\); weights must be "
            "finite",
        ),
        (
            lambda: da.from_array(with_value(130, -0.5), chunks=100),
            ValueError,
            r"sample_weight contains negative values \(block 2, rows 120-179\); .* >= 0",
        ),
        (lambda: np.zeros(250), ValueError, "sample_weight is all zero"),
        (lambda: da.zeros(250, chunks=ROWS), ValueError, "sample_weight is all zero"),
        (lambda: np.ones(249), ValueError, r"sample_weight.shape == \(249,\), expected \(250,\)"),
        (
            lambda: da.ones((250, 1), chunks=ROWS),
            ValueError,
            r"sample_weight.shape == \(250, 1\), expected \(250,\)",
        ),
        (lambda: da.from_array(np.array(["a"] * 250)), TypeError, "must hold real numbers"),
        (
            lambda: (lambda w: w[w >= 0])(da.from_array(W8, chunks=ROWS)),
            ValueError,
            r"sample_weight has unknown chunk sizes .* sample_weight.compute_chunk_sizes\(\)",
        ),
        (
            lambda: with_value(3, 1e300),
            ValueError,
            r"value too large for float32 \(block 0, rows 0-59\); scale the weights down",
        ),
    ],
)
def test_bad_weights_are_refused_before_training(client, weights, error, message):
    dtype = "float32" if "float32" in message else "float64"
    model = new_model(dtype=dtype)
    W = model.W.copy()
    with pytest.raises(error, match=message):
        model.train(*dask_xyw()[:2], epochs=2, verbose=0, sample_weight=weights())
    np.testing.assert_array_equal(model.W, W)
    assert model.epoch_ == 0 and len(model.history_) == 0


def counting_reads(Xd):
    """``Xd`` and a dict that counts how often each of its blocks is computed (in this
    process: use Dask's threaded scheduler)."""
    reads, lock = {}, threading.Lock()

    def counted(block, block_info=None):
        with lock:
            key = block_info[0]["chunk-location"][0]
            reads[key] = reads.get(key, 0) + 1
        return block

    return Xd.map_blocks(counted, dtype=Xd.dtype), reads


def test_weights_are_checked_in_the_one_pass_over_x(client):
    """A NaN weight in the last block is found by the pass that checks X: each block of X is
    read once, and no epoch starts."""
    Xd, yd, _ = dask_xyw()
    Xd, reads = counting_reads(Xd)
    with (
        dask.config.set(scheduler="threads"),
        pytest.raises(ValueError, match=r"NaN or infinity \(block 4"),
    ):
        new_model().train(Xd, yd, epochs=1, verbose=0, sample_weight=with_value(-1, np.nan))
    assert reads == dict.fromkeys(range(5), 1)


def test_lbfgs_does_not_read_a_block_of_weight_zero(client):
    """Block 1 weighs nothing: L-BFGS reads it only in the validation pass."""
    pytest.importorskip("scipy")
    Xd, yd, wd = dask_xyw()
    Xd, reads = counting_reads(Xd)
    with dask.config.set(scheduler="threads"):
        new_model().train(Xd, yd, epochs=3, verbose=0, solver="lbfgs", sample_weight=wd)
    assert reads[1] == 1 and min(reads[i] for i in (0, 2, 3, 4)) > 3
