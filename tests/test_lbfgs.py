"""Full-batch L-BFGS: the same optimum on every backend, and scikit-learn's on real data sets."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from softmax_xp import SoftmaxXP, loss_and_grads, to_numpy
from softmax_xp.solvers.lbfgs import minimize_lbfgs

pytest.importorskip("scipy")


def blobs(n: int = 300, d: int = 6, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.5, size=(k, d))
    y = rng.integers(0, k, size=n)
    return centres[y] + rng.normal(size=(n, d)), y


def fit_lbfgs(backend, X, y, dtype="float64", reg=1e-2, epochs=200, tol=1e-10, **kwargs):
    """``backend``: a name or a resolved Backend (its name and device)."""
    name, device = (backend, None) if isinstance(backend, str) else (backend.name, backend.device)
    model = SoftmaxXP(
        X.shape[1], int(y.max()) + 1, reg=reg, backend=name, device=device, dtype=dtype, seed=0
    )
    history = model.train(X, y, epochs=epochs, verbose=0, solver="lbfgs", tol=tol, **kwargs)
    return model, history


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lbfgs_gives_numpys_numbers_on_every_backend(backend, dtype):
    X, y = blobs()
    ref, ref_history = fit_lbfgs("numpy", X, y, dtype)
    model, history = fit_lbfgs(backend, X, y, dtype)
    rtol = 1e-6 if dtype == "float64" else 1e-3
    np.testing.assert_allclose(history.loss[-1], ref_history.loss[-1], rtol=rtol)
    atol = 1e-5 if dtype == "float64" else 1e-3
    np.testing.assert_allclose(
        to_numpy(model.predict_proba(X)), to_numpy(ref.predict_proba(X)), atol=atol
    )
    assert model.W.dtype == getattr(model.xp, dtype)
    assert 0 < len(history) <= 200
    assert len(history.epoch_time) == len(history.loss)


def test_lbfgs_reaches_a_stationary_point(arrays):
    X, y = blobs()
    model, _ = fit_lbfgs(arrays.backend, X, y)
    _, dW, db = model.compute_loss_and_grads(X, y)
    assert np.abs(arrays.host(dW)).max() < 1e-6
    assert np.abs(arrays.host(db)).max() < 1e-6


def test_history_has_one_entry_per_iteration_and_a_falling_loss(arrays):
    X, y = blobs()
    seen = []
    model, history = fit_lbfgs(
        arrays.backend, X[:200], y[:200], epochs=7, tol=0.0,
        X_val=X[200:], y_val=y[200:], callback=lambda it, h: seen.append((it, len(h))),
    )  # fmt: skip
    assert len(history) == len(history.val_accuracy) == len(history.epoch_time) == 7
    assert seen == [(i, i) for i in range(1, 8)]
    assert model.epoch_ == 7
    assert all(b <= a for a, b in zip(history.loss, history.loss[1:], strict=False))
    assert all(t > 0 for t in history.epoch_time)


def test_tol_stops_early(arrays):
    X, y = blobs()
    _, loose = fit_lbfgs(arrays.backend, X, y, tol=1e-2)
    _, tight = fit_lbfgs(arrays.backend, X, y, tol=1e-9)
    assert len(loose) < len(tight)


def test_minimize_lbfgs_takes_any_objective(arrays):
    """The interface the Dask engineer uses: a callable objective, weighted here."""
    X, y = blobs(n=120)
    Xd, yd = arrays(X), arrays(y, "int64")
    w = arrays(np.linspace(0.5, 2.0, 120))
    W0, b0 = arrays(np.zeros((6, 3))), arrays(np.zeros((1, 3)))
    calls = []

    def objective(W, b):
        calls.append(1)
        return loss_and_grads(Xd, yd, W, b, 1e-2, sample_weight=w)

    iterations = []
    result = minimize_lbfgs(
        objective, W0, b0, max_iter=100, to_host=to_numpy, tol=1e-9,
        callback=lambda i, W, b, loss: iterations.append((i, loss)),
    )  # fmt: skip
    W, b, n_iter, losses, converged, _ = result
    assert converged and n_iter == len(losses) == len(iterations) > 0
    assert [i for i, _ in iterations] == list(range(1, n_iter + 1))
    assert len(calls) >= n_iter
    _, dW, _db = objective(W, b)
    assert np.abs(arrays.host(dW)).max() < 1e-7
    np.testing.assert_array_equal(arrays.host(W0), 0.0)  # the start is not written
    assert arrays.host(W).shape == (6, 3) and arrays.host(b).shape == (1, 3)


def test_max_iter_zero_returns_the_start(arrays):
    W0, b0 = arrays(np.ones((2, 3))), arrays(np.zeros((1, 3)))
    W, _b, n_iter, losses, converged, _ = minimize_lbfgs(
        lambda W, b: (None, None, None), W0, b0, max_iter=0, to_host=to_numpy
    )
    assert n_iter == 0 and losses == [] and not converged
    np.testing.assert_array_equal(arrays.host(W), 1.0)


def test_lbfgs_is_an_error_without_scipy(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    model = SoftmaxXP(6, 3, backend="numpy", seed=0)
    X, y = blobs()
    with pytest.raises(ImportError, match=r"softmax-xp\[lbfgs\]"):
        model.train(X, y, epochs=3, verbose=0, solver="lbfgs")


def test_solver_and_tol_errors():
    model = SoftmaxXP(6, 3, backend="numpy", seed=0)
    X, y = blobs()
    with pytest.raises(ValueError, match="Unknown solver 'newton'"):
        model.train(X, y, verbose=0, solver="newton")
    with pytest.raises(ValueError, match="tol is the stopping rule of solver='lbfgs'"):
        model.train(X, y, verbose=0, solver="sgd", tol=1e-3)
    with pytest.raises(ValueError, match="tol must be a finite number"):
        model.train(X, y, verbose=0, solver="lbfgs", tol=-1.0)


def test_lbfgs_checkpoint_every_iteration_and_resume(tmp_path):
    X, y = blobs()
    path = tmp_path / "ckpt.npz"
    model = SoftmaxXP(6, 3, reg=1e-2, backend="numpy", dtype="float64", seed=0)
    model.train(X, y, epochs=4, verbose=0, solver="lbfgs", tol=0.0, checkpoint=path)
    assert path.exists()
    again = SoftmaxXP(6, 3, reg=1e-2, backend="numpy", dtype="float64", seed=0)
    history = again.train(X, y, epochs=200, verbose=0, solver="lbfgs", tol=1e-10, resume_from=path)
    assert history.loss[:4] == model.history_.loss  # the resumed run keeps the first 4
    full, _ = fit_lbfgs("numpy", X, y)
    np.testing.assert_allclose(again.predict_proba(X), full.predict_proba(X), atol=1e-6)


# -- against scikit-learn ---------------------------------------------------------------------
def _datasets():
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.preprocessing import StandardScaler

    for name in ("digits", "iris", "wine"):
        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
        yield name, StandardScaler().fit_transform(X), y


def _numpy_only(backend_names=("numpy",)):
    from conftest import _selected

    return pytest.mark.skipif(
        not any(b.split(":")[0] in backend_names for b in _selected()),
        reason="runs once, in the numpy session",
    )


@pytest.fixture
def one_blas_thread():
    """These products are tiny: on a shared machine, more BLAS threads only make them slower."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1):
        yield


@_numpy_only()
@pytest.mark.parametrize("reg", [1e-2, 1e-3])
def test_lbfgs_equals_logistic_regression(reg, one_blas_thread):
    LogisticRegression = pytest.importorskip("sklearn.linear_model").LogisticRegression

    for name, X, y in _datasets():
        n = X.shape[0]
        model = SoftmaxXP(X.shape[1], int(y.max()) + 1, reg=reg, backend="numpy", dtype="float64")
        model.train(X, y, epochs=1000, verbose=0, solver="lbfgs", tol=1e-9)
        ref = LogisticRegression(C=1 / (reg * n), tol=1e-9, max_iter=1000).fit(X, y)
        diff = np.abs(model.predict_proba(X) - ref.predict_proba(X)).max()
        assert diff <= 1e-5, f"{name}: max |proba difference| {diff:.2e}"


@_numpy_only()
def test_binary_softmax_equals_logistic_regression_at_twice_c(one_blas_thread):
    """Two classes: softmax penalises both weight columns, so its optimum is LogisticRegression's
    at C = 2 / (reg n) (the log-odds weights w1 - w0 carry half the penalty), not 1 / (reg n)."""
    LogisticRegression = pytest.importorskip("sklearn.linear_model").LogisticRegression

    _name, X, y = next(iter(_datasets()))  # digits
    X, y = X[y < 2], y[y < 2]
    reg, n = 1e-1, X.shape[0]
    model = SoftmaxXP(X.shape[1], 2, reg=reg, backend="numpy", dtype="float64", seed=0)
    model.train(X, y, epochs=5000, verbose=0, solver="lbfgs", tol=1e-12)
    twice = LogisticRegression(C=2 / (reg * n), tol=1e-12, max_iter=5000).fit(X, y)
    once = LogisticRegression(C=1 / (reg * n), tol=1e-12, max_iter=5000).fit(X, y)
    p = model.predict_proba(X)
    assert np.abs(p - twice.predict_proba(X)).max() <= 1e-6
    assert np.abs(p - once.predict_proba(X)).max() > 1e-3
    np.testing.assert_allclose(model.W[:, 1] - model.W[:, 0], twice.coef_[0], atol=1e-5)
