"""One contract, every data source: in-memory rows with a global shuffle, in-memory rows in
blocks, a Dask array's blocks (on Dask's local scheduler, no cluster), a scipy.sparse CSR
matrix and a Dask array of CSR chunks train through the same
run, so the same scenarios must hold on each: training, resume, Ctrl-C, divergence, callback
order, a resume on other data refused, and inference that never returns NaN silently."""

from __future__ import annotations

import json

import numpy as np
import pytest

from softmax_xp import (
    Callback,
    ResumeMismatchError,
    SoftmaxXP,
    TrainingDivergedError,
    to_numpy,
)

D, K, N, ROWS = 5, 3, 90, 40  # blocks of 40, 40 and 10 rows
SOURCES = ("global", "blocks", "dask", "sparse", "dask-sparse")


def blobs(n: int = N, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(K, D))
    y = rng.integers(0, K, size=n)
    return centres[y] + rng.normal(size=(n, D)), y


X, Y = blobs()


@pytest.fixture(params=SOURCES)
def source(request):
    """``make(X, y, **train_kwargs) -> (X, y, train_kwargs)`` for one data source."""
    if request.param in ("dask", "dask-sparse"):
        da = pytest.importorskip("dask.array")
        dask = pytest.importorskip("dask")
        if request.param == "dask-sparse":
            sparse = pytest.importorskip("scipy.sparse")

        def make(X, y, sample_weight=None, **kwargs):
            if sample_weight is not None:
                kwargs["sample_weight"] = da.from_array(sample_weight, chunks=ROWS)
            Xd = da.from_array(X, chunks=(ROWS, D))
            if request.param == "dask-sparse":  # chunks of scipy.sparse CSR
                Xd = Xd.map_blocks(sparse.csr_matrix)
            return Xd, da.from_array(y, chunks=ROWS), kwargs

        with dask.config.set(scheduler="threads"):  # Dask's default, no distributed client
            yield make
        return
    blocks = {"shuffle": "blocks", "block_rows": ROWS} if request.param == "blocks" else {}
    if request.param == "sparse":
        sparse = pytest.importorskip("scipy.sparse")

    def make(X, y, sample_weight=None, **kwargs):
        if sample_weight is not None:
            kwargs["sample_weight"] = sample_weight
        if request.param == "sparse":
            X = sparse.csr_matrix(X)
        return X, y, {**blocks, **kwargs}

    yield make


def new_model(**kwargs) -> SoftmaxXP:
    args = {"lr": 0.2, "reg": 1e-3, "momentum": 0.9, "lr_decay": 0.9, "seed": 3, **kwargs}
    return SoftmaxXP(D, K, backend="numpy", **{"dtype": "float64", **args})


def train(model, source, epochs, X=X, y=Y, **kwargs):
    Xs, ys, extra = source(X, y, **kwargs)
    return model.train(Xs, ys, epochs=epochs, batch_size=16, **extra)


def header(path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(str(npz["__header__"]))


def test_training_on_each_source(source):
    model = new_model()
    history = train(model, source, 3)
    assert model.epoch_ == 3 and len(history) == 3
    assert history.loss[-1] < history.loss[0] and model.score(X, Y) > 0.8


def test_dask_blocks_train_exactly_as_in_memory_blocks():
    """Dask's default threaded scheduler (no client) gives in-memory shuffle="blocks" weights
    bit for bit, in float64 and float32: the block tasks run under the in-memory thread rule.
    Products of MNIST's size (batch 256, 784 features, 10 classes) are the ones BLAS would
    otherwise spread over its threads, in another summation order (before: 5e-18 and 3e-9)."""
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    rng = np.random.default_rng(0)
    X, y = rng.random((1200, 784)), rng.integers(0, 10, 1200)
    for dtype in ("float64", "float32"):
        memory, lazy = (SoftmaxXP(784, 10, backend="numpy", dtype=dtype, seed=0) for _ in "ab")
        memory.train(X, y, epochs=2, shuffle="blocks", block_rows=500)
        with dask.config.set(scheduler="threads"):
            lazy.train(da.from_array(X, chunks=(500, 784)), da.from_array(y, chunks=500), epochs=2)
        np.testing.assert_array_equal(lazy.W, memory.W)
        np.testing.assert_array_equal(lazy.b, memory.b)
        assert lazy.history_.loss == memory.history_.loss


def test_resume_gives_the_uninterrupted_weights(source, tmp_path):
    whole = new_model()
    train(whole, source, 4)
    path = tmp_path / "ckpt.npz"
    train(new_model(), source, 2, checkpoint=path)
    assert header(path)["epochs"] == 2 and header(path)["epoch"] == 2
    resumed = new_model()
    history = train(resumed, source, 4, resume_from=path)
    np.testing.assert_array_equal(resumed.W, whole.W)
    assert history.loss == whole.history_.loss


def test_ctrl_c_keeps_the_last_complete_epoch(source, tmp_path, internals):
    """A KeyboardInterrupt in epoch 3 (in its first block) leaves the model, its History and
    the checkpoint at epoch 2, and the resumed run ends where an uninterrupted one does."""
    whole = new_model()
    train(whole, source, 4)
    count = internals.interrupt_sgd_after(2)
    model, path = new_model(), tmp_path / "ckpt.npz"
    with pytest.raises(KeyboardInterrupt):
        train(model, source, 4, checkpoint=path, callback=count)
    assert model.epoch_ == 2 and len(model.history_) == 2 and header(path)["epoch"] == 2
    internals.monkeypatch.undo()
    resumed = new_model()
    train(resumed, source, 4, resume_from=path)
    np.testing.assert_array_equal(resumed.W, whole.W)


def test_divergence_keeps_the_start_of_the_run(source):
    model = new_model(lr=1e30, momentum=0.0)
    W = to_numpy(model.W).copy()
    with pytest.raises(TrainingDivergedError, match="Training diverged in epoch 1") as info:
        train(model, source, 3, X=X * 1e100)
    assert info.value.epoch == 1 and model.epoch_ == 0
    np.testing.assert_array_equal(model.W, W)


def test_callbacks_run_in_order_after_the_checkpoint(source, tmp_path):
    path, events = tmp_path / "ckpt.npz", []

    class Recorder(Callback):
        def on_train_begin(self, state):
            events.append(("begin", state.epoch))

        def on_epoch_end(self, state):
            events.append(("epoch", state.epoch, header(path)["epoch"]))

        def on_train_end(self, state):
            events.append(("end", state.epoch))

    def function(epoch, history):
        events.append(("function", epoch, len(history)))

    train(new_model(), source, 2, checkpoint=path, callback=[Recorder(), function])
    assert events == [
        ("begin", 0),
        ("epoch", 1, 1),
        ("function", 1, 1),
        ("epoch", 2, 2),
        ("function", 2, 2),
        ("end", 2),
    ]


def test_a_resume_on_other_data_is_refused(source, tmp_path):
    path = tmp_path / "ckpt.npz"
    train(new_model(), source, 2, checkpoint=path)
    shuffled = np.random.default_rng(5).permutation(N)
    with pytest.raises(ResumeMismatchError, match="trained on other data") as info:
        train(new_model(), source, 3, X=X[shuffled], y=Y[shuffled], resume_from=path)
    assert info.value.kind == "data"
    with pytest.raises(ResumeMismatchError, match="more than epochs=1") as info:
        train(new_model(), source, 1, resume_from=path)
    assert info.value.kind == "epochs" and info.value.differences == {"epochs": (2, 1)}


@pytest.mark.parametrize(
    ("scale", "dtype", "reg"),
    [
        (1e200, "float64", 1e-3),
        (3e38, "float32", 1e-3),
        (1, "float64", 1e300),
    ],
)
def test_lbfgs_that_cannot_start_raises_as_sgd_does(source, scale, dtype, reg):
    """Huge features or a huge reg: L-BFGS finds no finite step from the start (or no finite
    loss at it). Before, it did 0 iterations and said nothing; now both solvers raise
    TrainingDivergedError and keep the weights."""
    huge = np.clip(X, -1, 1) * scale  # finite in dtype
    model = new_model(momentum=0.0, dtype=dtype, reg=reg)
    W = to_numpy(model.W).copy()
    with pytest.raises(TrainingDivergedError, match="L-BFGS cannot start in iteration 1"):
        train(model, source, 5, X=huge, solver="lbfgs")
    np.testing.assert_array_equal(model.W, W)
    assert model.epoch_ == 0
    with pytest.raises(TrainingDivergedError, match="diverged in epoch 1"):
        train(new_model(momentum=0.0, dtype=dtype, reg=reg), source, 2, X=huge)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_weights_whose_sum_overflows_are_one_clear_error(source, solver):
    weights = np.full(N, 1e307)  # each weight fits float64; their sum does not
    with pytest.raises(ValueError, match="sample_weight sums to more than float64 can hold"):
        train(new_model(momentum=0.0), source, 2, sample_weight=weights, solver=solver)


def test_a_dask_chunk_shorter_than_declared_is_named():
    da = pytest.importorskip("dask.array")
    Xd = da.from_array(X, chunks=(ROWS, D)).map_blocks(lambda b: b[:-1] if len(b) == ROWS else b)
    yd = da.from_array(Y, chunks=ROWS)
    with pytest.raises(ValueError, match=r"block 0, rows 0-39 of X holds 39 rows, but"):
        new_model().train(Xd, yd, epochs=1)


INFERENCE = ("predict", "predict_proba", "predict_log_proba", "decision_function")


@pytest.mark.parametrize("method", [*INFERENCE, "score"])
def test_inference_on_nan_is_refused_on_every_source(source, method):
    model = new_model()
    bad = X.copy()
    bad[50, 2] = np.nan
    Xs, ys, _ = source(bad, Y)
    with pytest.raises(ValueError, match="contains NaN"):
        if method == "score":
            model.score(Xs, ys)
        else:
            result = getattr(model, method)(Xs)
            if hasattr(result, "compute"):
                result.compute()


@pytest.mark.parametrize("method", ["decision_function", "predict_log_proba", "predict_proba"])
def test_the_estimator_never_returns_nan_for_dask_input(method):
    """The reported bug: SoftmaxClassifier.decision_function and predict_log_proba on a Dask X
    holding NaN returned NaN, where predict_proba raised."""
    da = pytest.importorskip("dask.array")
    pytest.importorskip("sklearn")
    from softmax_xp import SoftmaxClassifier

    clf = SoftmaxClassifier(max_iter=2, random_state=0).fit(X, Y)
    bad = X.copy()
    bad[7, 0] = np.nan
    with pytest.raises(ValueError, match="contains NaN"):
        getattr(clf, method)(da.from_array(bad, chunks=(ROWS, D))).compute()


def test_early_stopping_stops_and_restores_on_every_source(source):
    from softmax_xp import EarlyStopping

    first: list[np.ndarray] = []

    class First(Callback):
        def on_epoch_end(self, state):
            if state.epoch == 1:
                first.append(to_numpy(state.W).copy())

    stop = EarlyStopping(monitor="loss", patience=2, min_delta=1e9)
    model = new_model()
    history = train(model, source, 10, callback=[First(), stop])
    assert len(history) == stop.stopped_epoch == 3 and stop.best_epoch == 1
    np.testing.assert_array_equal(model.W, first[0])


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_no_intercept_keeps_the_bias_zero_on_every_source(source, solver):
    """fit_intercept=False, with momentum and sample weights: b stays exactly zero, and W is
    not that of the same run with a bias."""
    weights = np.linspace(0.5, 1.5, N)
    model = new_model(fit_intercept=False)
    train(model, source, 3, sample_weight=weights, solver=solver)
    assert not model.b.any() and model.score(X, Y) > 0.8
    with_bias = new_model(fit_intercept=True)
    train(with_bias, source, 3, sample_weight=weights, solver=solver)
    assert with_bias.b.any() and not np.allclose(with_bias.W, model.W)
