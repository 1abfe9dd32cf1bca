"""Training and inference on Dask arrays, on a LocalCluster of 2 worker processes.

Skipped when dask or distributed is not installed (``pip install "softmax-xp[dask]"``); the nox
session ``tests-dask`` runs them. Dask chunks are NumPy arrays here; the model's own backend is
the ``backend`` fixture's.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

from softmax_xp import SoftmaxXP, to_numpy  # noqa: E402
from softmax_xp._data.dask_tasks import aligned  # noqa: E402

D, K = 12, 4


def blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(K, D))
    y = rng.integers(0, K, size=n)
    return centres[y] + rng.normal(size=(n, D)), y


X, Y = blobs(250)
X_VAL, Y_VAL = blobs(90, seed=1)
ROWS = 60  # 250 rows: blocks of 60, 60, 60, 60 and 10


def new_model(backend=None, **kwargs) -> SoftmaxXP:
    args = {"lr": 0.2, "reg": 1e-3, "seed": 11, "dtype": "float64", **kwargs}
    if backend is None:
        return SoftmaxXP(D, K, backend="numpy", **args)
    return SoftmaxXP(D, K, backend=backend.name, device=backend.device, **args)


def dask_xy(X=X, y=Y, rows=ROWS):
    return da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(y, chunks=rows)


def assert_same(a, b, exact: bool) -> None:
    if exact:
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    else:
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-10, atol=1e-13)


# -- SGD: the same weights as in memory -----------------------------------------------------------
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_cluster_gives_the_in_memory_blocks_weights(client, backend, momentum, internals):
    """Chunks of R rows on the cluster = shuffle="blocks", block_rows=R in memory (bit for bit
    in float64 on NumPy), including the History."""
    exact = backend.name == "numpy"
    kwargs = dict(epochs=3, batch_size=16, verbose=0)
    memory = new_model(backend, momentum=momentum)
    want = memory.train(X, Y, X_VAL, Y_VAL, shuffle="blocks", block_rows=ROWS, **kwargs)
    model = new_model(backend, momentum=momentum)
    got = model.train(*dask_xy(), *dask_xy(X_VAL, Y_VAL), **kwargs)
    for ours, theirs in zip(
        (model.W, model.b, *(internals.state(model).velocity or ())),
        (memory.W, memory.b, *(internals.state(memory).velocity or ())),
        strict=True,
    ):
        assert_same(ours, theirs, exact)
    assert model.backend == backend.name and model.epoch_ == 3
    if exact:
        assert got.loss == want.loss
    np.testing.assert_allclose(got.loss, want.loss, rtol=1e-12)
    assert got.val_accuracy == want.val_accuracy


def test_local_scheduler_and_block_rows(client):
    """Without the cluster (Dask's threaded scheduler), and with block_rows rechunking the array:
    still the in-memory weights; float32 too."""
    memory = new_model(dtype="float32")
    memory.train(X, Y, epochs=2, batch_size=16, verbose=0, shuffle="blocks", block_rows=50)
    model = new_model(dtype="float32")
    Xd, yd = dask_xy(X.astype(np.float32), Y, rows=100)
    with dask.config.set(scheduler="threads"):
        model.train(Xd, yd, epochs=2, batch_size=16, verbose=0, block_rows=50)
    np.testing.assert_array_equal(model.W, memory.W)


def test_labels_may_be_in_memory_and_validation_data_too(client):
    memory = new_model()
    want = memory.train(X, Y, X_VAL, Y_VAL, epochs=2, verbose=0, shuffle="blocks", block_rows=ROWS)
    model = new_model()
    got = model.train(dask_xy()[0], Y, X_VAL, Y_VAL, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.W, memory.W)
    assert got.val_accuracy == want.val_accuracy


# -- L-BFGS: one reduction per evaluation ------------------------------------------------------------
def test_lbfgs_on_the_cluster_equals_in_memory(client, backend):
    pytest.importorskip("scipy")
    kwargs = dict(epochs=10, verbose=0, solver="lbfgs", tol=0.0)
    memory = new_model(backend, reg=1e-2)
    want = memory.train(X, Y, X_VAL, Y_VAL, **kwargs)
    model = new_model(backend, reg=1e-2)
    got = model.train(*dask_xy(), *dask_xy(X_VAL, Y_VAL), **kwargs)
    np.testing.assert_allclose(to_numpy(model.W), to_numpy(memory.W), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(to_numpy(model.b), to_numpy(memory.b), rtol=1e-8, atol=1e-10)
    assert len(got) == len(want) == 10
    np.testing.assert_allclose(got.loss, want.loss, rtol=1e-10)
    assert got.val_accuracy == want.val_accuracy


# -- the scikit-learn estimator ------------------------------------------------------------------------
def test_classifier_fits_and_predicts_dask_arrays(client):
    pytest.importorskip("sklearn")
    pytest.importorskip("scipy")
    from softmax_xp.sklearn import SoftmaxClassifier

    names = np.array(["ant", "bee", "cat", "dog"])
    Xd, yd = dask_xy(X, names[Y])
    args = dict(solver="lbfgs", reg=1e-2, max_iter=200, tol=1e-6, random_state=0, dtype="float64")
    lazy = SoftmaxClassifier(**args).fit(Xd, yd)
    eager = SoftmaxClassifier(**args).fit(X, names[Y])
    np.testing.assert_allclose(lazy.coef_, eager.coef_, rtol=1e-7, atol=1e-9)
    labels = lazy.predict(Xd)
    assert isinstance(labels, da.Array) and isinstance(lazy.predict_proba(Xd), da.Array)
    np.testing.assert_array_equal(labels.compute(), eager.predict(X))
    assert lazy.score(Xd, yd) == eager.score(X, names[Y])


def test_partial_fit_on_dask_is_one_block_wise_pass(client):
    """Two partial_fit calls on a Dask array = two epochs of shuffle="blocks" in memory."""
    pytest.importorskip("sklearn")
    from softmax_xp.sklearn import SoftmaxClassifier

    clf = SoftmaxClassifier(lr=0.2, reg=1e-3, random_state=11, dtype="float64")
    for _ in range(2):
        clf.partial_fit(*dask_xy(), classes=np.arange(K))
    memory = new_model(lr=0.2, reg=1e-3, init="zeros")  # the estimator starts from zeros
    memory.train(X, Y, epochs=2, batch_size=256, verbose=0, shuffle="blocks", block_rows=ROWS)
    assert clf.n_iter_ == 2
    np.testing.assert_array_equal(clf.coef_, memory.W.T)


def test_empty_chunks_are_skipped(client):
    chunks = ((60, 0, 60, 60, 60, 10), (D,))
    Xd, yd = da.from_array(X, chunks=chunks), da.from_array(Y, chunks=chunks[:1])
    model = new_model()
    history = model.train(Xd, yd, epochs=2, verbose=0)
    assert len(history) == 2 and np.isfinite(history.loss).all()
    np.testing.assert_array_equal(model.predict(Xd).compute(), model.predict(X))


# -- validation before the first epoch -------------------------------------------------------------
def bad(X=X, y=Y, at=-1, value=np.nan):
    X = X.copy()
    X[at, 3] = value
    return dask_xy(X, y)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lambda: bad(), r"X contains NaN \(block 4, rows 240-249\)"),
        (lambda: bad(at=70, value=np.inf), r"X contains infinity .* \(block 1, rows 60-119\)"),
        (
            lambda: dask_xy(X, np.where(np.arange(250) == 130, K, Y)),
            r"y contains the label 4 \(block 2, rows 120-179\), but SoftmaxXP has num_classes=4",
        ),
        (lambda: dask_xy(X, np.where(np.arange(250) == 7, -1, Y)), "negative label -1"),
        (lambda: dask_xy(X, np.where(np.arange(250) == 7, 0.5, Y)), "non-integer label"),
    ],
)
def test_bad_values_are_refused_before_training(client, data, message):
    model = new_model()
    W = model.W.copy()
    Xd, yd = data()
    with pytest.raises(ValueError, match=message):
        model.train(Xd, yd, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.W, W)
    assert model.epoch_ == 0 and len(model.history_) == 0


def test_bad_layouts_are_refused_with_the_fix():
    Xd, yd = dask_xy()
    model = new_model()
    with pytest.raises(ValueError, match=r"chunked along its columns .* X.rechunk\(\{1: -1\}\)"):
        model.train(Xd.rechunk((ROWS, 5)), yd, epochs=1, verbose=0)
    unknown = Xd[Xd[:, 0] > -np.inf]  # boolean indexing: unknown chunk sizes
    with pytest.raises(ValueError, match=r"unknown chunk sizes .*X.compute_chunk_sizes\(\)"):
        model.train(unknown, yd, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        model.train(Xd, yd[:-1], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="expecting 12 features"):
        model.train(Xd[:, :5], yd, epochs=1, verbose=0)
    with pytest.raises(TypeError, match="dtype bool"):
        model.train(Xd, yd > 1, epochs=1, verbose=0)


# -- checkpoints, resume and Ctrl-C ----------------------------------------------------------------
def test_interrupted_run_resumes_to_the_same_weights(client, monkeypatch, tmp_path, internals):
    kwargs = dict(batch_size=16, verbose=0)
    whole = new_model(momentum=0.9)
    whole.train(*dask_xy(), epochs=4, **kwargs)

    calls = {"n": 0}

    def interrupting(real_chain):
        def chain(*args, **kw):  # Ctrl-C while epoch 3 runs on the cluster
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return real_chain(*args, **kw)

        return chain

    path = tmp_path / "ckpt.npz"
    model = new_model(momentum=0.9)
    internals.patch_dask_chain(interrupting)
    with pytest.raises(KeyboardInterrupt):
        model.train(*dask_xy(), epochs=4, checkpoint=path, **kwargs)
    monkeypatch.undo()
    assert model.epoch_ == 2 and len(model.history_) == 2

    resumed = new_model(momentum=0.9, seed=0)
    history = resumed.train(*dask_xy(), epochs=4, resume_from=path, **kwargs)
    np.testing.assert_array_equal(resumed.W, whole.W)
    np.testing.assert_array_equal(
        internals.state(resumed).velocity[0], internals.state(whole).velocity[0]
    )
    assert history.loss == whole.history_.loss


def test_a_cluster_checkpoint_resumes_in_memory(client, tmp_path):
    """The checkpoint of a Dask run resumes on in-memory data with the same blocks, and back."""
    path = tmp_path / "ckpt.npz"
    whole = new_model(momentum=0.9)
    whole.train(X, Y, epochs=3, verbose=0, shuffle="blocks", block_rows=ROWS)
    new_model(momentum=0.9).train(*dask_xy(), epochs=1, verbose=0, checkpoint=path)
    model = new_model(momentum=0.9)
    model.train(
        X,
        Y,
        epochs=2,
        verbose=0,
        shuffle="blocks",
        block_rows=ROWS,
        resume_from=path,
        checkpoint=path,
    )
    model.train(*dask_xy(), epochs=3, verbose=0, resume_from=path)
    np.testing.assert_array_equal(model.W, whole.W)
    with pytest.raises(ValueError, match="resume with the same shuffle and blocks"):
        new_model(momentum=0.9).train(*dask_xy(rows=50), epochs=3, verbose=0, resume_from=path)
    with pytest.raises(ValueError, match="written by solver='sgd', this run uses solver='lbfgs'"):
        new_model(momentum=0.9).train(
            *dask_xy(), epochs=3, verbose=0, solver="lbfgs", resume_from=path
        )


# -- inference ---------------------------------------------------------------------------------------
def test_predict_is_lazy_and_matches_in_memory(client, backend):
    model = new_model(backend)
    model.train(X, Y, epochs=2, verbose=0)
    Xd = dask_xy()[0]
    proba, labels = model.predict_proba(Xd), model.predict(Xd)
    assert isinstance(proba, da.Array) and isinstance(labels, da.Array)
    assert proba.chunks == (Xd.chunks[0], (K,)) and labels.chunks == (Xd.chunks[0],)
    # the weights are one key of the graph, shared by every block's task
    graph = dict(proba.__dask_graph__())
    weights = [key for key, task in graph.items() if "softmax_xp-predict_proba" not in str(key)]
    assert len(graph) - len(weights) == Xd.numblocks[0]
    np.testing.assert_allclose(proba.compute(), to_numpy(model.predict_proba(X)), rtol=1e-12)
    np.testing.assert_array_equal(labels.compute(), to_numpy(model.predict(X)))
    assert model.score(Xd, Y) == model.score(X, Y)
    assert model.score(Xd, da.from_array(Y, chunks=100)) == model.score(X, Y)


def test_lazy_predictions_of_two_models_computed_together_stay_apart(client):
    Xd = dask_xy()[0]
    one, two = new_model(), new_model()
    two.train(X, Y, epochs=1, verbose=0)
    for method in ("predict_proba", "predict"):
        lazy = [getattr(m, method)(Xd) for m in (one, two)]
        assert lazy[0].name != lazy[1].name
        for got, model in zip(dask.compute(*lazy), (one, two), strict=True):
            np.testing.assert_allclose(got, to_numpy(getattr(model, method)(X)), rtol=1e-12)


def test_lazy_predict_refuses_nan_when_computed(client):
    model = new_model()
    labels = model.predict(bad()[0])  # nothing is read yet
    with pytest.raises(ValueError, match="contains NaN"):
        labels.compute()


def test_aligned_copies_only_unaligned_or_strided_blocks():
    x = np.arange(24.0).reshape(4, 6)
    assert aligned(x) is x
    raw = np.zeros(x.nbytes + 1, dtype=np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=np.float64, count=24, offset=1).reshape(4, 6)
    assert not unaligned.flags.aligned
    fixed = aligned(unaligned)
    assert fixed.flags.aligned and fixed.flags.c_contiguous
    np.testing.assert_array_equal(fixed, unaligned)
    assert aligned(x.T).flags.c_contiguous


# -- out of core: the client never holds the data -----------------------------------------------------
def peak_rss_during(fn) -> tuple[float, int]:
    """Run ``fn``; return its seconds and this process's peak RSS (bytes), sampled every 20 ms."""
    psutil = pytest.importorskip("psutil")
    proc, peak, done = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.02)

    thread = threading.Thread(target=sample)
    thread.start()
    start = time.perf_counter()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return time.perf_counter() - start, peak[0]


def test_a_3_gb_lazy_array_trains_with_a_small_client(client):
    """1,000,000 x 784 float32 (3.1 GB), generated block by block on the workers, trains one
    epoch while this (client) process stays under 1 GB peak RSS. Heaviest test of the module
    (~30 s on 2 cores): blocks of 50,000 rows (157 MB) and batches of 4096 keep it short."""
    n, d, rows = 1_000_000, 784, 50_000
    X_big = da.random.default_rng(0).random((n, d), chunks=(rows, d), dtype=np.float32)
    y_big = da.random.default_rng(1).integers(0, 10, size=n, chunks=rows)
    model = SoftmaxXP(d, 10, backend="numpy", seed=0, lr=0.01)
    seconds, peak = peak_rss_during(
        lambda: model.train(X_big, y_big, epochs=1, batch_size=4096, verbose=0)
    )
    assert model.epoch_ == 1 and np.isfinite(model.history_.loss[0])
    assert peak < 2**30, f"client peak RSS {peak / 2**20:.0f} MB during a {seconds:.0f} s epoch"
