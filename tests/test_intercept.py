"""``fit_intercept=False``: the bias stays exactly zero in every solver, on every backend, in
files, checkpoints and the scikit-learn estimator; LogisticRegression's optimum without an
intercept."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from softmax_xp import (
    ModelFileError,
    ResumeMismatchError,
    SoftmaxClassifier,
    SoftmaxXP,
    loss_and_grads,
    to_numpy,
)

pytest.importorskip("scipy")


def shifted_blobs(n: int = 240, d: int = 4, k: int = 3, seed: int = 0):
    """Classes of unequal sizes around centres far from the origin: the optimum needs a bias."""
    rng = np.random.default_rng(seed)
    y = rng.choice(k, size=n, p=np.linspace(1, 3, k) / np.linspace(1, 3, k).sum())
    centres = 3.0 + rng.normal(scale=1.5, size=(k, d))
    return centres[y] + rng.normal(size=(n, d)), y


def model_on(backend, d, k, **kwargs) -> SoftmaxXP:
    return SoftmaxXP(d, k, backend=backend.name, device=backend.device, **kwargs)


def rewrite_header(path, drop=(), **changes):
    """Rewrite a model file's JSON header (``__header__``) without the keys ``drop``, with
    ``changes``, as a file of another version would hold it."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    header = json.loads(str(arrays["__header__"]))
    header = {key: value for key, value in header.items() if key not in drop} | changes
    arrays["__header__"] = np.asarray(json.dumps(header))
    np.savez(path, **arrays)


# -- every solver, every backend -----------------------------------------------------------------
CASES = {
    "sgd": ({}, {}),
    "momentum": ({"momentum": 0.9}, {}),
    "elasticnet": ({"penalty": "elasticnet", "l1_ratio": 0.5, "reg": 1e-2, "momentum": 0.5}, {}),
    "lbfgs": ({}, {"solver": "lbfgs"}),
    "lbfgs-l1": ({"penalty": "l1", "reg": 1e-2}, {"solver": "lbfgs"}),
    "weights": ({"momentum": 0.9}, {"sample_weight": np.linspace(0.1, 2.0, 240)}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_bias_stays_zero_in_every_solver_on_every_backend(backend, case):
    """b is exactly zero after training; W differs from the run with a bias (whose b is not
    zero), so the flag reaches the solver."""
    ctor, train = CASES[case]
    X, y = shifted_blobs()
    models = [
        model_on(backend, 4, 3, dtype="float32", lr=0.05, seed=0, fit_intercept=fit, **ctor)
        for fit in (False, True)
    ]
    for model in models:
        model.train(X, y, epochs=8, batch_size=32, **train)
    without, with_bias = models
    assert not to_numpy(without.b).any() and to_numpy(with_bias.b).any()
    assert not np.array_equal(to_numpy(without.W), to_numpy(with_bias.W))
    assert np.isfinite(without.history_.loss).all()


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_an_epoch_without_the_bias_is_sgd_on_w_alone(arrays, internals, momentum):
    """The epoch's W is plain (heavy-ball) SGD on ``softmax(X W + b0)`` with ``b0`` fixed, step
    by step; ``b`` and its velocity come back as given (here not zero, to see them kept)."""
    X, y = shifted_blobs(n=70)
    rng = np.random.default_rng(1)
    W0, b0 = rng.normal(scale=0.1, size=(4, 3)), rng.normal(size=(1, 3))
    v0 = (rng.normal(size=(4, 3)), rng.normal(size=(1, 3))) if momentum else None
    order = rng.permutation(70)
    lr, reg, batch = 0.1, 0.01, 32
    W, b, velocity, _ = internals.sgd_epoch(
        arrays(X), arrays(y, "int64"), arrays(order, "int64"), arrays(W0), arrays(b0),
        None if v0 is None else (arrays(v0[0]), arrays(v0[1])),
        lr=lr, momentum=momentum, reg=reg, batch_size=batch, xp=arrays.xp, fit_intercept=False,
    )  # fmt: skip
    want, vW = W0.copy(), None if v0 is None else v0[0].copy()
    for lo in range(0, 70, batch):
        rows = order[lo : lo + batch]
        _, dW, _ = loss_and_grads(X[rows], y[rows], want, b0, reg)
        if vW is None:
            want = want - lr * dW
        else:
            vW = momentum * vW - lr * dW
            want = want + vW
    np.testing.assert_allclose(arrays.host(W), want, rtol=1e-12, atol=1e-14)
    assert np.array_equal(arrays.host(b), b0)
    if momentum:
        assert np.array_equal(arrays.host(velocity[1]), v0[1])


def test_lbfgs_moves_no_bias_entries():
    """The host vector L-BFGS works on holds W alone (the loss and dW travel, db does not)."""
    from softmax_xp.solvers.lbfgs import minimize_lbfgs

    X, y = shifted_blobs(n=60)
    sizes: list[int] = []

    def to_host(x):
        sizes.append(x.shape[0])
        return np.asarray(x)

    def objective(W, b):
        return loss_and_grads(X, y, W, b, 0.01)

    W0, b0 = np.zeros((4, 3)), np.zeros((1, 3))
    result = minimize_lbfgs(objective, W0, b0, max_iter=5, to_host=to_host, fit_intercept=False)
    assert set(sizes) == {12, 13}  # the start W (12), then loss + dW (13): never the 3 of b
    assert not result.b.any() and result.W.any()


@pytest.fixture(scope="module")
def scaled():
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.preprocessing import StandardScaler

    def load(name):
        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
        return StandardScaler().fit_transform(X), y

    return load


@pytest.mark.parametrize("name", ["iris", "wine"])
def test_lbfgs_matches_logistic_regression_without_intercept(scaled, name):
    """Three classes: reg = 1 / (C n), as with an intercept; probabilities to 1e-5."""
    from sklearn.linear_model import LogisticRegression

    X, y = scaled(name)
    n, d = X.shape
    reg = 0.01
    ref = LogisticRegression(fit_intercept=False, C=1 / (reg * n), tol=1e-10, max_iter=10000)
    ref.fit(X, y)
    model = SoftmaxXP(d, 3, reg=reg, backend="numpy", dtype="float64", init="zeros",
                      fit_intercept=False)  # fmt: skip
    model.train(X, y, epochs=5000, solver="lbfgs", tol=1e-10)
    assert not model.b.any() and not ref.intercept_.any()
    np.testing.assert_allclose(model.predict_proba(X), ref.predict_proba(X), atol=1e-5)


# -- boundaries ----------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_only_a_bias_can_learn_the_class_frequencies(solver):
    """Features that carry nothing (all zero) and classes 9 : 1: with a bias the model predicts
    the frequencies, without one it cannot move from the uniform 1/2."""
    X, y = np.zeros((200, 2)), (np.arange(200) % 10 == 0).astype(int)
    models = []
    for fit in (True, False):
        model = SoftmaxXP(2, 2, lr=0.5, reg=0.0, backend="numpy", dtype="float64", seed=0,
                          init="zeros", fit_intercept=fit)  # fmt: skip
        model.train(X, y, epochs=60, solver=solver)
        models.append(model.predict_proba(X[:1])[0])
    np.testing.assert_allclose(models[0], [0.9, 0.1], atol=2e-3)
    assert np.array_equal(models[1], [0.5, 0.5])


# -- arguments, files, resume --------------------------------------------------------------------
@pytest.mark.parametrize("value", ["yes", 1, None, 0.0])
def test_a_bad_fit_intercept_says_what_to_pass(value):
    with pytest.raises(TypeError, match=r"fit_intercept must be True or False.*fit_intercept=Tr"):
        SoftmaxXP(3, 2, backend="numpy", fit_intercept=value)


def test_numpy_bools_are_bools():
    assert SoftmaxXP(3, 2, backend="numpy", fit_intercept=np.False_).fit_intercept is False


def test_a_model_without_a_bias_refuses_one_and_turning_it_off_zeroes_it():
    model = SoftmaxXP(3, 2, backend="numpy", fit_intercept=False)
    model.b = [[0.0, 0.0]]
    with pytest.raises(
        ValueError, match=r"b must be zero .*fit_intercept=False.*fit_intercept = Tr"
    ):
        model.b = [[0.0, 1.0]]
    model.fit_intercept = True
    model.b = [[0.0, 1.0]]
    model.fit_intercept = False
    assert not model.b.any() and model.b.shape == (1, 2)


def test_save_and_load_keep_fit_intercept(tmp_path):
    X, y = shifted_blobs()
    model = SoftmaxXP(4, 3, backend="numpy", seed=0, fit_intercept=False)
    model.train(X, y, epochs=2)
    again = SoftmaxXP.load(model.save(tmp_path / "m.npz"), backend="numpy")
    assert again.fit_intercept is False and "fit_intercept=False" in repr(again)
    assert np.array_equal(again.W, model.W) and not again.b.any()
    assert "fit_intercept" not in repr(SoftmaxXP(4, 3, backend="numpy"))


def test_a_file_without_the_field_loads_as_fit_intercept_true(tmp_path):
    model = SoftmaxXP(3, 2, backend="numpy", seed=0)
    model.b = [[0.5, -0.5]]
    path = model.save(tmp_path / "old.npz")
    rewrite_header(path, drop=("fit_intercept",))
    again = SoftmaxXP.load(path, backend="numpy")
    assert again.fit_intercept is True and np.array_equal(again.b, model.b)


def test_a_file_with_a_bias_and_fit_intercept_false_is_refused(tmp_path):
    model = SoftmaxXP(3, 2, backend="numpy", seed=0)
    model.b = [[0.5, -0.5]]
    path = model.save(tmp_path / "bad.npz")
    rewrite_header(path, fit_intercept=False)
    with pytest.raises(ModelFileError, match=r"b is not zero .* fit_intercept=False"):
        SoftmaxXP.load(path, backend="numpy")
    rewrite_header(path, fit_intercept="no")
    with pytest.raises(ModelFileError, match="fit_intercept must be True or False"):
        SoftmaxXP.load(path, backend="numpy")


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_resume_continues_without_the_bias_and_refuses_a_change(tmp_path, solver):
    X, y = shifted_blobs(n=100)
    kwargs = dict(lr=0.1, seed=0, dtype="float64", momentum=0.5, fit_intercept=False)
    path = tmp_path / "ckpt.npz"
    whole = SoftmaxXP(4, 3, backend="numpy", **kwargs)
    whole.train(X, y, epochs=6, batch_size=16, solver=solver)
    SoftmaxXP(4, 3, backend="numpy", **kwargs).train(
        X, y, epochs=3, batch_size=16, solver=solver, checkpoint=path
    )
    other = SoftmaxXP(4, 3, backend="numpy", **{**kwargs, "fit_intercept": True})
    with pytest.raises(ResumeMismatchError, match="fit_intercept=False \\(here True\\)"):
        other.train(X, y, epochs=6, batch_size=16, solver=solver, resume_from=path)
    again = SoftmaxXP(4, 3, backend="numpy", **kwargs)
    again.train(X, y, epochs=6, batch_size=16, solver=solver, resume_from=path)
    assert not again.b.any()
    if solver == "sgd":  # L-BFGS restarts without its curvature memory
        assert np.array_equal(again.W, whole.W)


# -- the scikit-learn estimator ------------------------------------------------------------------
@pytest.fixture
def sklearn():
    return pytest.importorskip("sklearn")


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_classifier_intercept_is_zeros_of_logistic_regressions_shape(sklearn, k, solver):
    X, y = shifted_blobs(k=k)
    clf = SoftmaxClassifier(fit_intercept=False, solver=solver, backend="numpy", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SGD's ConvergenceWarning on these unscaled features
        clf.fit(X, y)
    shape = (1,) if k == 2 else (k,)
    assert clf.intercept_.shape == shape and not clf.intercept_.any()
    assert clf.model_.fit_intercept is False and clf.score(X, y) > 0.5


def test_max_iter_0_gives_zeros(sklearn):
    X, y = shifted_blobs()
    clf = SoftmaxClassifier(fit_intercept=False, max_iter=0, tol=None, backend="numpy").fit(X, y)
    assert not clf.coef_.any() and not clf.intercept_.any() and clf.intercept_.shape == (3,)


def test_a_written_intercept_takes_effect(sklearn):
    X, y = shifted_blobs()
    clf = SoftmaxClassifier(fit_intercept=False, solver="lbfgs", backend="numpy").fit(X, y)
    before = clf.decision_function(X[:5])
    shift = np.array([1.0, 0.0, -1.0])
    clf.intercept_ = shift
    np.testing.assert_allclose(clf.decision_function(X[:5]), before + shift)
    assert clf.model_.fit_intercept is False and not clf.model_.b.any()


def test_params_clone_and_bad_values(sklearn):
    from sklearn.base import clone

    clf = SoftmaxClassifier(fit_intercept=False)
    assert clf.get_params()["fit_intercept"] is False
    assert clone(clf).fit_intercept is False
    assert clf.set_params(fit_intercept=True).fit_intercept is True
    with pytest.raises(TypeError, match="fit_intercept must be True or False"):
        SoftmaxClassifier(fit_intercept="yes", backend="numpy").fit([[0.0], [1.0]], [0, 1])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_partial_fit_and_warm_start_follow_fit_intercept(sklearn):
    X, y = shifted_blobs()
    clf = SoftmaxClassifier(fit_intercept=False, backend="numpy", random_state=0)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    assert not clf.intercept_.any()
    clf.set_params(fit_intercept=True).partial_fit(X, y)
    assert clf.intercept_.any()
    clf.set_params(fit_intercept=False).partial_fit(X, y)  # turning it off zeroes the bias
    assert not clf.intercept_.any() and clf.n_iter_[0] == 3
    warm = SoftmaxClassifier(solver="lbfgs", backend="numpy", warm_start=True).fit(X, y)
    assert warm.intercept_.any()
    warm.set_params(fit_intercept=False).fit(X, y)  # keeps the weights, drops the bias
    assert not warm.intercept_.any()
