"""Penalties: L2 (default), L1 and the elastic net, both solvers, every backend, files, Dask and
scikit-learn's saga on real data sets."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from softmax_xp import ResumeMismatchError, SoftmaxXP, loss_and_grads, to_numpy
from softmax_xp._modelfile import write_model
from softmax_xp.solvers.sgd import sgd_epoch

pytest.importorskip("scipy")


def blobs(n: int = 240, d: int = 8, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Classes told apart by the first 3 features; the other ``d - 3`` are noise (L1 drops them)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    centres = np.zeros((k, d))
    centres[:, :3] = rng.normal(scale=2.0, size=(k, 3))
    return centres[y] + rng.normal(size=(n, d)), y


def objective(X, y, W, b, reg, l1_ratio):
    """mean CE + reg (l1_ratio ||W||_1 + 0.5 (1 - l1_ratio) ||W||^2), in float64 on the host."""
    W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
    z = X @ W + b
    z = z - z.max(axis=1, keepdims=True)
    ce = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(y.shape[0]), y])
    return ce + reg * (l1_ratio * np.abs(W).sum() + 0.5 * (1 - l1_ratio) * (W * W).sum())


def model_on(backend, d, k, **kwargs) -> SoftmaxXP:
    return SoftmaxXP(d, k, backend=backend.name, device=backend.device, **kwargs)


def soft_threshold(x: np.ndarray, t: float) -> np.ndarray:
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


# -- the SGD step --------------------------------------------------------------------------------
@pytest.mark.parametrize("l1_ratio", [1.0, 0.3])
def test_one_full_batch_step_is_the_proximal_step(arrays, l1_ratio):
    """One batch of all rows: u = lr reg l1_ratio, q = 0, so the cumulative clip is the soft
    threshold of the smooth (L2-decayed) step; the batch loss is the elastic-net loss at W0."""
    X, y = blobs(n=40)
    rng = np.random.default_rng(1)
    W0, b0 = rng.normal(scale=0.3, size=(8, 3)), rng.normal(size=(1, 3))
    lr, reg = 0.5, 0.2
    W, b, _, losses = sgd_epoch(
        arrays(X), arrays(y, "int64"), arrays(np.arange(40), "int64"), arrays(W0), arrays(b0),
        None, lr=lr, momentum=0.0, reg=reg, batch_size=64, xp=arrays.xp, l1_ratio=l1_ratio,
    )  # fmt: skip
    loss, dW, db = loss_and_grads(X, y, W0, b0, 0.0)
    smooth = W0 * (1 - lr * reg * (1 - l1_ratio)) - lr * dW
    want = soft_threshold(smooth, lr * reg * l1_ratio)
    np.testing.assert_allclose(arrays.host(W), want, rtol=1e-12, atol=1e-15)
    assert np.array_equal(arrays.host(W) == 0, want == 0) and (want == 0).any()
    np.testing.assert_allclose(arrays.host(b), b0 - lr * db, rtol=1e-12)
    full, _, _ = loss_and_grads(X, y, W0, b0, reg, l1_ratio=l1_ratio)
    np.testing.assert_allclose(arrays.host(losses), [full], rtol=1e-12)
    assert full > loss + reg * l1_ratio * np.abs(W0).sum() * 0.999


def reference_epoch(X, y, order, W, b, *, lr, reg, l1_ratio, momentum, batch_size):
    """Tsuruoka et al.'s cumulative penalty written weight by weight, as in the paper: after
    each (L2-decayed, optionally heavy-ball) step, u += lr reg l1_ratio and each weight is
    clipped toward zero by what it has not yet received, u -/+ q."""
    W, b = W.copy(), b.copy()
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    q = np.zeros_like(W)
    u = 0.0
    for lo in range(0, len(order), batch_size):
        rows = order[lo : lo + batch_size]
        _, dW, db = loss_and_grads(X[rows], y[rows], W, b, reg * (1 - l1_ratio))
        if momentum:
            vW, vb = momentum * vW - lr * dW, momentum * vb - lr * db
            W, b = W + vW, b + vb
        else:
            W, b = W - lr * dW, b - lr * db
        u += lr * reg * l1_ratio
        for j in np.ndindex(W.shape):
            z = W[j]
            if z > 0:
                W[j] = max(0.0, z - (u + q[j]))
            elif z < 0:
                W[j] = min(0.0, z + (u - q[j]))
            q[j] += W[j] - z
    return W, b


@pytest.mark.parametrize("momentum", [0.0, 0.8])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.6])
def test_sgd_epoch_matches_the_cumulative_penalty_loop(arrays, momentum, l1_ratio):
    """Several steps (the last one short): the debt u - q of a clipped weight carries on from
    step to step, on every backend, with and without momentum."""
    X, y = blobs(n=30, d=5)
    rng = np.random.default_rng(2)
    W0, b0 = rng.normal(scale=0.2, size=(5, 3)), rng.normal(size=(1, 3))
    order = rng.permutation(30)
    settings = dict(lr=0.3, reg=0.3, l1_ratio=l1_ratio, momentum=momentum, batch_size=7)
    want_W, want_b = reference_epoch(X, y, order, W0, b0, **settings)
    velocity = (arrays(np.zeros((5, 3))), arrays(np.zeros((1, 3)))) if momentum else None
    W, b, _, _ = sgd_epoch(
        arrays(X), arrays(y, "int64"), arrays(order, "int64"), arrays(W0), arrays(b0), velocity,
        xp=arrays.xp, **settings,
    )  # fmt: skip
    np.testing.assert_allclose(arrays.host(W), want_W, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(arrays.host(b), want_b, rtol=1e-10)
    assert np.array_equal(arrays.host(W) == 0, want_W == 0) and (want_W == 0).any()


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
def test_sgd_gives_exact_zeros_and_numpys_weights_on_every_backend(backend, momentum, penalty):
    X, y = blobs()
    kwargs = dict(lr=0.05, reg=0.02, dtype="float64", seed=0, momentum=momentum, penalty=penalty)
    if penalty == "elasticnet":
        kwargs["l1_ratio"] = 0.7
    ref = SoftmaxXP(8, 3, backend="numpy", **kwargs)
    ref.train(X, y, epochs=20, batch_size=32)
    model = model_on(backend, 8, 3, **kwargs)
    history = model.train(X, y, epochs=20, batch_size=32)
    W = to_numpy(model.W)
    np.testing.assert_allclose(W, ref.W, atol=1e-10)
    assert np.array_equal(W == 0, ref.W == 0)
    assert (W[3:] == 0).mean() > max(0.3, (W[:3] == 0).mean())  # noise weights exactly zero
    assert (W[:3] != 0).any(axis=1).all()
    plain = SoftmaxXP(8, 3, backend="numpy", **{**kwargs, "penalty": "l2", "l1_ratio": None})
    plain.train(X, y, epochs=20, batch_size=32)
    assert (plain.W != 0).all()
    assert history.loss[-1] < history.loss[0]


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_elasticnet_at_0_and_1_is_l2_and_l1_exactly(backend, solver, momentum):
    X, y = blobs(n=120)

    def weights(penalty, l1_ratio=None):
        model = model_on(
            backend, 8, 3, lr=0.1, reg=0.02, seed=3, momentum=momentum, penalty=penalty,
            l1_ratio=l1_ratio, dtype="float64",
        )  # fmt: skip
        model.train(X, y, epochs=8, batch_size=25, solver=solver)
        return to_numpy(model.W), to_numpy(model.b), model.history_.loss

    for penalty, ratio in (("l2", 0.0), ("l1", 1.0)):
        W, b, loss = weights(penalty)
        W_en, b_en, loss_en = weights("elasticnet", ratio)
        assert np.array_equal(W, W_en) and np.array_equal(b, b_en) and loss == loss_en


def test_default_is_l2_and_reg_0_ignores_the_penalty(arrays):
    X, y = blobs(n=100)
    assert SoftmaxXP(8, 3, backend="numpy").penalty == "l2"
    runs = []
    for penalty in ("l2", "l1"):
        model = model_on(arrays.backend, 8, 3, reg=0.0, seed=0, penalty=penalty)
        model.train(X, y, epochs=3, batch_size=16)
        runs.append(arrays.host(model.W))
    assert np.array_equal(*runs)


# -- L-BFGS --------------------------------------------------------------------------------------
@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
def test_lbfgs_meets_the_optimality_conditions_on_every_backend(backend, penalty):
    """KKT of the non-smooth objective: where W = 0, |smooth gradient| <= reg l1_ratio; elsewhere
    the smooth gradient is -reg l1_ratio sign(W); the zeros are numpy's."""
    X, y = blobs()
    ratio = 1.0 if penalty == "l1" else 0.5
    kwargs = dict(reg=0.05, dtype="float64", penalty=penalty, init="zeros")
    if penalty == "elasticnet":
        kwargs["l1_ratio"] = ratio
    model = model_on(backend, 8, 3, **kwargs)
    model.train(X, y, epochs=500, solver="lbfgs", tol=1e-10)
    assert model.converged_
    W, b = to_numpy(model.W), to_numpy(model.b)
    _, dW, db = loss_and_grads(X, y, W, b, 0.05 * (1 - ratio))
    l1 = 0.05 * ratio
    zero = W == 0
    assert zero.sum() >= 8
    assert np.abs(dW[zero]).max() <= l1 + 1e-8
    np.testing.assert_allclose(dW[~zero], -l1 * np.sign(W[~zero]), atol=1e-7)
    assert np.abs(db).max() < 1e-7
    ref = SoftmaxXP(8, 3, backend="numpy", **kwargs)
    ref.train(X, y, epochs=500, solver="lbfgs", tol=1e-10)
    assert np.array_equal(zero, ref.W == 0)
    np.testing.assert_allclose(W, ref.W, atol=1e-7)
    history_end = model.history_.loss[-1]
    np.testing.assert_allclose(history_end, objective(X, y, W, b, 0.05, ratio), rtol=1e-12)


def test_lbfgs_l1_is_below_every_sgd_l1(arrays):
    X, y = blobs()
    exact = model_on(arrays.backend, 8, 3, reg=0.05, penalty="l1", dtype="float64", init="zeros")
    exact.train(X, y, epochs=500, solver="lbfgs", tol=1e-10)
    sgd = model_on(arrays.backend, 8, 3, lr=0.05, reg=0.05, penalty="l1", dtype="float64", seed=0)
    sgd.train(X, y, epochs=30, batch_size=16)
    best = objective(X, y, to_numpy(exact.W), to_numpy(exact.b), 0.05, 1.0)
    found = objective(X, y, to_numpy(sgd.W), to_numpy(sgd.b), 0.05, 1.0)
    assert best <= found < best * 1.05


# -- against scikit-learn's saga -----------------------------------------------------------------
def _dataset(name):
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _saga(X, y, C, l1_ratio):
    LogisticRegression = pytest.importorskip("sklearn.linear_model").LogisticRegression
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's notices about penalty and convergence
        return LogisticRegression(
            solver="saga", C=C, l1_ratio=l1_ratio, tol=1e-10, max_iter=20000
        ).fit(X, y)


def _numpy_session():
    from conftest import _selected

    return pytest.mark.skipif(
        not any(b.split(":")[0] == "numpy" for b in _selected()),
        reason="runs once, in the numpy session",
    )


@_numpy_session()
@pytest.mark.parametrize(
    "name", ["iris", "wine", pytest.param("digits", marks=pytest.mark.slow)]
)  # digits: saga needs ~2000-6000 epochs, ~1 min on 2 cores
@pytest.mark.parametrize("penalty,l1_ratio", [("l1", 1.0), ("elasticnet", 0.5), ("l2", 0.0)])
def test_lbfgs_reaches_sagas_objective_and_zeros(name, penalty, l1_ratio):
    """reg = 1 / (C n) for three or more classes, every penalty: our objective is at most saga's
    (to 1e-6, relative) and the zeros of coef_ are saga's (both converged to tol=1e-10)."""
    X, y = _dataset(name)
    n, d = X.shape
    reg = 0.01
    ref = _saga(X, y, 1 / (reg * n), l1_ratio)
    ratio = {"l1_ratio": l1_ratio} if penalty == "elasticnet" else {}
    model = SoftmaxXP(d, 3 if name != "digits" else 10, reg=reg, backend="numpy",
                      dtype="float64", penalty=penalty, init="zeros", **ratio)  # fmt: skip
    model.train(X, y, epochs=5000, solver="lbfgs", tol=1e-10)
    ours = objective(X, y, model.W, model.b, reg, l1_ratio)
    theirs = objective(X, y, ref.coef_.T, ref.intercept_[None, :], reg, l1_ratio)
    assert ours <= theirs * (1 + 1e-6), (ours, theirs)
    assert np.array_equal(model.W.T == 0, ref.coef_ == 0)
    if penalty != "l2":
        assert (ref.coef_ == 0).sum() > 0


@_numpy_session()
@pytest.mark.parametrize("penalty,l1_ratio", [("l1", 1.0), ("elasticnet", 0.4)])
def test_two_classes_map_to_c_per_penalty(penalty, l1_ratio):
    """Two classes: L1 maps to C = 1 / (reg n) (||w1 - w0||_1 is the two columns' L1 norm at
    the optimum); the elastic net (C, rho) is ours with reg l1_ratio = rho / (C n) and
    reg (1 - l1_ratio) = 2 (1 - rho) / (C n)."""
    X, y = _dataset("iris")
    X, y = X[y > 0], y[y > 0] - 1  # versicolor / virginica: they overlap
    n, reg = X.shape[0], 0.02
    if penalty == "l1":
        C, rho, ratio = 1 / (reg * n), 1.0, {}
    else:
        a, c = reg * l1_ratio, reg * (1 - l1_ratio)  # rho / (C n) and 2 (1 - rho) / (C n)
        rho = a / (a + c / 2)
        C, ratio = rho / (a * n), {"l1_ratio": l1_ratio}
    ref = _saga(X, y, C, rho)
    model = SoftmaxXP(4, 2, reg=reg, backend="numpy", dtype="float64", penalty=penalty,
                      init="zeros", **ratio)  # fmt: skip
    model.train(X, y, epochs=5000, solver="lbfgs", tol=1e-10)
    coef = model.W[:, 1] - model.W[:, 0]
    np.testing.assert_allclose(coef, ref.coef_[0], atol=1e-6)
    np.testing.assert_allclose(model.b[0, 1] - model.b[0, 0], ref.intercept_[0], atol=1e-6)
    assert np.array_equal(coef == 0, ref.coef_[0] == 0) and (coef == 0).any()


# -- checks, files and resume --------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"penalty": "l3"}, "Unknown penalty 'l3'"),
        ({"penalty": "elasticnet", "l1_ratio": 1.5}, r"l1_ratio must be .* \[0, 1\]"),
        ({"penalty": "elasticnet", "l1_ratio": -0.1}, r"l1_ratio must be .* \[0, 1\]"),
        ({"penalty": "elasticnet", "l1_ratio": float("nan")}, "l1_ratio must be"),
        ({"penalty": "l2", "l1_ratio": 0.5}, "only used with penalty='elasticnet'"),
        ({"penalty": "l1", "l1_ratio": 1.0}, "only used with penalty='elasticnet'"),
    ],
)
def test_bad_penalties_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SoftmaxXP(3, 2, backend="numpy", **kwargs)


@pytest.mark.parametrize("l1_ratio", [0.0, 1.0])
def test_elasticnet_accepts_the_ends(l1_ratio):
    assert SoftmaxXP(3, 2, backend="numpy", penalty="elasticnet", l1_ratio=l1_ratio).l1_ratio == (
        l1_ratio
    )


def test_save_and_load_keep_the_penalty(tmp_path):
    model = SoftmaxXP(3, 2, backend="numpy", penalty="elasticnet", l1_ratio=0.25)
    again = SoftmaxXP.load(model.save(tmp_path / "m.npz"), backend="numpy")
    assert (again.penalty, again.l1_ratio) == ("elasticnet", 0.25)
    assert "penalty='elasticnet', l1_ratio=0.25" in repr(again)


def test_a_file_without_the_penalty_loads_as_l2(tmp_path):
    hyper = dict(input_dim=3, num_classes=2, lr=0.1, reg=1e-4, momentum=0.0, lr_decay=1.0,
                 dtype="float32", seed=0)  # fmt: skip
    path = write_model(tmp_path / "old.npz", hyper, np.zeros((3, 2), "f4"), np.zeros((1, 2), "f4"))
    model = SoftmaxXP.load(path, backend="numpy")
    assert (model.penalty, model.l1_ratio) == ("l2", None)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_resume_continues_an_l1_run_and_refuses_another_penalty(tmp_path, solver):
    X, y = blobs(n=100)
    kwargs = dict(lr=0.1, reg=0.05, seed=0, dtype="float64", penalty="l1", momentum=0.5)
    path = tmp_path / "ckpt.npz"
    whole = SoftmaxXP(8, 3, backend="numpy", **kwargs)
    whole.train(X, y, epochs=6, batch_size=16, solver=solver)
    half = SoftmaxXP(8, 3, backend="numpy", **kwargs)
    half.train(X, y, epochs=3, batch_size=16, solver=solver, checkpoint=path)
    other = SoftmaxXP(8, 3, backend="numpy", **{**kwargs, "penalty": "elasticnet", "l1_ratio": 1})
    with pytest.raises(ResumeMismatchError, match="penalty='l1' \\(here 'elasticnet'\\)"):
        other.train(X, y, epochs=6, batch_size=16, solver=solver, resume_from=path)
    again = SoftmaxXP(8, 3, backend="numpy", **kwargs)
    again.train(X, y, epochs=6, batch_size=16, solver=solver, resume_from=path)
    if solver == "sgd":  # L-BFGS restarts without its curvature memory
        assert np.array_equal(again.W, whole.W)
    assert (again.W == 0).any()


# -- Dask and scikit-learn -----------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_dask_equals_in_memory_blocks(solver):
    da = pytest.importorskip("dask.array")
    X, y = blobs()
    kwargs = dict(lr=0.1, reg=0.03, seed=0, dtype="float64", penalty="elasticnet", l1_ratio=0.8)
    memory = SoftmaxXP(8, 3, backend="numpy", **kwargs)
    train = dict(epochs=4, batch_size=16, solver=solver)
    if solver == "sgd":
        train.update(shuffle="blocks", block_rows=70)
    memory.train(X, y, **train)
    lazy = SoftmaxXP(8, 3, backend="numpy", **kwargs)
    train.pop("shuffle", None), train.pop("block_rows", None)
    lazy.train(da.from_array(X, chunks=(70, 8)), da.from_array(y, chunks=70), **train)
    if solver == "sgd":
        assert np.array_equal(lazy.W, memory.W)
    else:
        np.testing.assert_allclose(lazy.W, memory.W, atol=1e-10)
    assert (lazy.W == 0).any()


def test_classifier_takes_the_penalty():
    pytest.importorskip("sklearn")
    from sklearn.base import clone

    from softmax_xp import SoftmaxClassifier

    X, y = blobs()
    clf = SoftmaxClassifier(solver="lbfgs", reg=0.05, penalty="l1", backend="numpy")
    clf.fit(X, y)
    assert clf.get_params()["penalty"] == "l1" and clone(clf).penalty == "l1"
    assert (clf.coef_[:, 3:] == 0).all() and (clf.coef_[:, :3] != 0).any(axis=0).all()
    assert clf.model_.penalty == "l1"
    net = SoftmaxClassifier(penalty="elasticnet", l1_ratio=0.5, backend="numpy", random_state=0)
    net.partial_fit(X, y, classes=[0, 1, 2])
    net.set_params(penalty="l1", l1_ratio=None)
    net.partial_fit(X, y)
    assert net.model_.penalty == "l1" and net.model_.l1_ratio is None
    default = SoftmaxClassifier(penalty="elasticnet", backend="numpy", random_state=0)
    default.fit(X, y)  # l1_ratio=None: SGDClassifier's 0.15, the parameter itself untouched
    explicit = SoftmaxClassifier(penalty="elasticnet", l1_ratio=0.15, backend="numpy")
    explicit.set_params(random_state=0).fit(X, y)
    assert default.l1_ratio is None and default.model_.l1_ratio == 0.15
    np.testing.assert_array_equal(default.coef_, explicit.coef_)
