"""SoftmaxClassifier: scikit-learn's estimator checks, its array API checks, labels, errors,
pickling, partial_fit and warm_start. Skipped as a whole without scikit-learn."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

import sklearn
from conftest import _selected
from sklearn.utils.estimator_checks import check_array_api_input, parametrize_with_checks

from softmax_xp import SoftmaxClassifier, SoftmaxXP, to_numpy
from softmax_xp._backend import _problem
from softmax_xp.sklearn import expected_failed_checks

SELECTED = {name.split(":")[0] for name in _selected()}
once = pytest.mark.skipif("numpy" not in SELECTED, reason="runs once, in the numpy session")


def iris():
    from sklearn.datasets import load_iris
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


# -- scikit-learn's own checks -----------------------------------------------------------------
@once
@parametrize_with_checks(
    [
        SoftmaxClassifier(),
        SoftmaxClassifier(class_weight="balanced"),
        SoftmaxClassifier(penalty="elasticnet"),
        SoftmaxClassifier(penalty="l1"),
        SoftmaxClassifier(early_stopping=True),
        SoftmaxClassifier(early_stopping=True, class_weight="balanced"),
        SoftmaxClassifier(solver="sgd"),
        SoftmaxClassifier(solver="sgd", early_stopping=True),
        SoftmaxClassifier(fit_intercept=False),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"class_weight": "balanced"},
        {"penalty": "elasticnet", "l1_ratio": 0.5},
        {"penalty": "l1"},
    ],
)
def test_no_expected_failures_for_the_defaults_class_weights_and_penalties(params):
    """The defaults (L-BFGS, as LogisticRegression) pass every check, with class weights and
    with each penalty too: check_estimator(SoftmaxClassifier()) needs no expected failures."""
    assert expected_failed_checks(SoftmaxClassifier(**params)) == {}


def test_at_most_three_expected_failures():
    for solver in ("sgd", "lbfgs"):
        failures = expected_failed_checks(SoftmaxClassifier(solver=solver))
        assert len(failures) <= 3 and all(len(why) > 20 for why in failures.values())


def _array_api_cases():
    """scikit-learn's namespace/device/dtype combinations for our non-NumPy backends (the
    selected ones: array_api_strict, torch, cupy), each with both solvers."""
    from sklearn.utils._array_api import yield_namespace_device_dtype_combinations

    for namespace, device, dtype in yield_namespace_device_dtype_combinations(
        include_numpy_namespaces=False
    ):
        wanted = namespace in SELECTED and (namespace != "torch" or device == "cpu")
        torch_cuda = namespace == "torch" and device == "cuda" and "cupy" in SELECTED  # GPU runs
        if not (wanted or torch_cuda):
            continue
        for solver in ("sgd", "lbfgs"):
            yield pytest.param(
                namespace, device, dtype, solver, id=f"{namespace}-{device}-{dtype}-{solver}"
            )


@pytest.mark.parametrize(("namespace", "device", "dtype", "solver"), list(_array_api_cases()))
def test_sklearn_array_api_checks(namespace, device, dtype, solver, monkeypatch):
    name = "array_api_strict" if namespace == "array_api_strict" else namespace
    problem = _problem(name) if name != "torch" or device == "cpu" else _torch_cuda_problem()
    if problem is not None:
        pytest.skip(problem)
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    estimator = SoftmaxClassifier(solver=solver, random_state=0)
    check_array_api_input(
        "SoftmaxClassifier", estimator, namespace, device_name=device, dtype_name=dtype,
        check_values=solver == "lbfgs" and dtype == "float64", check_sample_weight=True,
    )  # fmt: skip


def _torch_cuda_problem():
    problem = _problem("torch")
    if problem is not None:
        return problem
    import torch

    return None if torch.cuda.is_available() else "torch has no CUDA device here"


@pytest.mark.skipif(not {"array_api_strict", "torch"} <= SELECTED, reason="needs both backends")
def test_sklearn_mixed_namespace_check(monkeypatch):
    """X from torch, y and sample_weight from array_api_strict: everything follows X."""
    checks = pytest.importorskip("sklearn.utils.estimator_checks")
    if not hasattr(checks, "check_array_api_mixed_inputs"):
        pytest.skip("this scikit-learn has no mixed-namespace check (added in 1.9)")
    from sklearn.utils._array_api import NamespaceAndDevice

    for name in ("torch", "array_api_strict"):
        if _problem(name):
            pytest.skip(_problem(name))
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    checks.check_array_api_mixed_inputs(
        "SoftmaxClassifier",
        SoftmaxClassifier(random_state=0),
        X_ns_and_device=NamespaceAndDevice("torch", "cpu"),
        other_ns_and_device=NamespaceAndDevice("array_api_strict", "device1"),
    )


# -- behaviour on every backend ----------------------------------------------------------------
@pytest.mark.parametrize(
    "labels",
    [
        np.array(["setosa", "versicolor", "virginica"]),
        np.array([1, 2, 3]),
        np.array([1.0, 2.0, 3.0]),
    ],
    ids=["strings", "one-to-three", "integral-floats"],
)
def test_any_labels(backend, labels):
    X, y = iris()
    y = labels[y]
    clf = SoftmaxClassifier(backend=backend.name, device=backend.device, solver="lbfgs")
    clf.fit(X, y)
    np.testing.assert_array_equal(clf.classes_, labels)
    predicted = clf.predict(X)
    assert isinstance(predicted, np.ndarray) and predicted.dtype == labels.dtype
    assert set(predicted) <= set(labels)
    assert clf.score(X, y) > 0.95
    proba = clf.predict_proba(X)
    assert isinstance(proba, np.ndarray) and proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-10)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-10)
    np.testing.assert_array_equal(predicted, labels[np.argmax(clf.decision_function(X), axis=1)])
    assert clf.coef_.shape == (3, 4) and clf.intercept_.shape == (3,)
    assert clf.model_.backend == backend.name


def test_fitted_attributes(backend):
    X, y = iris()
    clf = SoftmaxClassifier(backend=backend.name, device=backend.device, max_iter=7)
    clf.fit(X, y)
    assert clf.n_iter_ == 7 and len(clf.loss_curve_) == 7 and clf.n_features_in_ == 4
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert isinstance(clf.coef_, np.ndarray) and isinstance(clf.intercept_, np.ndarray)
    np.testing.assert_array_equal(clf.coef_, to_numpy(clf.model_.W).T)
    np.testing.assert_array_equal(clf.intercept_, to_numpy(clf.model_.b)[0])


def test_sample_weight_counts_rows(backend):
    X, y = iris()
    w = np.random.default_rng(0).integers(0, 3, size=150)
    kwargs = dict(backend=backend.name, device=backend.device, solver="lbfgs", tol=1e-9,
                  max_iter=500, dtype="float64", reg=1e-2)  # fmt: skip
    weighted = SoftmaxClassifier(**kwargs).fit(X, y, sample_weight=w)
    repeated = SoftmaxClassifier(**kwargs).fit(X.repeat(w, axis=0), y.repeat(w))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-6)


def test_pickle_round_trip(backend):
    X, y = iris()
    clf = SoftmaxClassifier(backend=backend.name, device=backend.device, max_iter=5,
                            random_state=0).fit(X, y)  # fmt: skip
    twin = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
    assert twin.model_.backend == backend.name
    twin.partial_fit(X, y)  # the copy trains on without touching the original
    assert clf.n_iter_ == 5 and twin.n_iter_ == 6


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_partial_fit_keeps_momentum_and_schedule(backend, momentum):
    """Three partial_fit calls are the first three epochs of one SoftmaxXP run."""
    X, y = iris()
    settings = dict(lr=0.3, momentum=momentum, lr_decay=0.5, dtype="float64")
    clf = SoftmaxClassifier(backend=backend.name, device=backend.device, batch_size=32,
                            random_state=4, **settings)  # fmt: skip
    clf.partial_fit(X, y, classes=np.unique(y))
    clf.partial_fit(X, y)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    run = SoftmaxXP(4, 3, backend=backend.name, device=backend.device, seed=4, init="zeros",
                    **settings)  # fmt: skip
    run.train(X, y, epochs=3, batch_size=32, verbose=0)
    np.testing.assert_allclose(clf.coef_, to_numpy(run.W).T, rtol=1e-12, atol=1e-14)
    assert clf.n_iter_ == 3 and clf.loss_curve_ == pytest.approx(run.history_.loss, rel=1e-12)


def test_partial_fit_errors():
    X, y = iris()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        SoftmaxClassifier().partial_fit(X, y)
    clf = SoftmaxClassifier(backend="numpy").partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
    with pytest.raises(ValueError, match=r"y contains labels not in classes: array\(\[2\]\)"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="X has 3 features, but SoftmaxClassifier is expecting 4"):
        clf.partial_fit(X[:, :3], y)
    for bad, match in [
        ({0, 1, 2}, r"Expected array-like \(array or non-string sequence\), got \{0, 1, 2\}"),
        ([0.5, 1.5], "Unknown label type"),
        (["a", 1], "Mix of label input types"),
    ]:
        with pytest.raises(ValueError, match=match):
            SoftmaxClassifier(backend="numpy").partial_fit(X, y, classes=bad)


def test_warm_start(backend):
    X, y = iris()
    kwargs = dict(backend=backend.name, device=backend.device, solver="lbfgs", dtype="float64",
                  tol=1e-8, max_iter=500, random_state=0)  # fmt: skip
    cold = SoftmaxClassifier(**kwargs).fit(X, y)
    warm = SoftmaxClassifier(warm_start=True, **kwargs).fit(X, y)
    warm.fit(X, y)  # starts at the optimum: almost nothing to do
    assert warm.n_iter_ < cold.n_iter_ / 4
    np.testing.assert_allclose(warm.predict_proba(X), cold.predict_proba(X), atol=1e-6)
    again = SoftmaxClassifier(**kwargs).fit(X, y)
    again.fit(X, y)  # no warm start: a fresh fit, the same iterations
    assert again.n_iter_ == cold.n_iter_
    # warm_start with other classes or features starts over
    warm.fit(X[:, :3], y)
    assert warm.coef_.shape == (3, 3)


# -- errors in scikit-learn's words ------------------------------------------------------------
@pytest.mark.parametrize(
    ("X", "y", "error", "match"),
    [
        (np.ones((1, 4)), np.array([0]), ValueError, "at least 2 classes.*only one class: 0"),
        (np.ones((5, 4)), np.zeros(5), ValueError, "only one class"),
        (np.ones((5, 0)), np.arange(5) % 2, ValueError, r"0 feature\(s\) \(shape=\(5, 0\)\)"),
        (np.full((3, 2), "a", dtype=object), np.arange(3) % 2, ValueError, "could not convert"),
        (np.ones((4, 2)), None, ValueError, "requires y to be passed, but the target y is None"),
        (np.ones((4, 2)), np.array([0.5, 1.5, 0.5, 1.5]), ValueError, "Unknown label type"),
    ],
    ids=["one-sample", "one-class", "no-features", "object-strings", "y-none", "continuous-y"],
)
def test_errors(X, y, error, match):
    with pytest.raises(error, match=match):
        SoftmaxClassifier(backend="numpy").fit(X, y)


def test_sparse_input_is_taken():
    sparse = pytest.importorskip("scipy.sparse")
    X, y = iris()
    args = {"solver": "lbfgs", "backend": "numpy", "random_state": 0}
    dense = SoftmaxClassifier(**args).fit(X, y)
    clf = SoftmaxClassifier(**args).fit(sparse.csr_array(X), y)
    np.testing.assert_allclose(clf.coef_, dense.coef_, rtol=1e-6, atol=1e-8)
    with pytest.raises(TypeError, match=r"array_api_strict backend has no sparse arrays"):
        SoftmaxClassifier(backend="array_api_strict").fit(sparse.csr_array(X), y)


def test_bad_hyperparameters_are_reported_at_fit():
    X, y = iris()
    with pytest.raises(ValueError, match="lr must be a finite number"):
        SoftmaxClassifier(lr=-1.0, backend="numpy").fit(X, y)
    with pytest.raises(ValueError, match="Unknown solver 'adam'"):
        SoftmaxClassifier(solver="adam", backend="numpy").fit(X, y)


def test_lbfgs_warns_when_not_converged():
    from sklearn.exceptions import ConvergenceWarning

    X, y = iris()
    with pytest.warns(
        ConvergenceWarning, match=r"did not converge: it stopped after 2 iterations \(max_iter=2"
    ):
        SoftmaxClassifier(solver="lbfgs", max_iter=2, backend="numpy").fit(X, y)


# -- array API dispatch ------------------------------------------------------------------------
@pytest.mark.skipif("torch" not in SELECTED, reason="torch not selected")
def test_dispatch_follows_x_and_refuses_mixed_namespaces(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    X, y = iris()
    Xt = torch.asarray(X, dtype=torch.float32)
    with sklearn.config_context(array_api_dispatch=True):
        clf = SoftmaxClassifier(solver="lbfgs", backend="numpy").fit(Xt, torch.asarray(y))
        assert clf.model_.backend == "torch" and clf.model_.dtype_name == "float32"
        assert isinstance(clf.coef_, torch.Tensor) and clf.coef_.dtype == torch.float32
        proba = clf.predict_proba(Xt)
        assert isinstance(proba, torch.Tensor) and proba.dtype == torch.float32
        assert isinstance(clf.predict(Xt), torch.Tensor)
        with pytest.raises(ValueError, match="namespace"):
            clf.predict(X)
    # without dispatch: NumPy out, the model stays where it was fitted
    out = clf.predict_proba(X)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, proba.numpy(), rtol=1e-5)


def test_without_dispatch_the_backend_parameter_decides(backend):
    X, y = iris()
    clf = SoftmaxClassifier(backend=backend.name, device=backend.device, max_iter=3).fit(
        X.astype(np.float32), y
    )
    assert clf.model_.backend == backend.name and clf.model_.dtype_name == "float32"
    assert isinstance(clf.coef_, np.ndarray) and clf.coef_.dtype == np.float32
    forced = SoftmaxClassifier(backend="numpy", dtype="float64", max_iter=3).fit(
        X.astype(np.float32), y
    )
    assert forced.coef_.dtype == np.float64


@once
def test_pipeline_and_grid_search():
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris()
    pipe = make_pipeline(StandardScaler(), SoftmaxClassifier(solver="lbfgs", backend="numpy"))
    search = GridSearchCV(pipe, {"softmaxclassifier__reg": [1e-3, 1e-1]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.9
    assert cross_val_score(pipe, X, y, cv=3).mean() > 0.9


def test_partial_fit_follows_set_params_between_calls(backend):
    """As SGDClassifier: a step size, L2 strength or momentum set between partial_fit calls is
    the one the next call uses (a schedule done by hand), and a bad one is reported."""
    X, y = iris()
    clf = SoftmaxClassifier(backend=backend.name, device=backend.device, dtype="float64",
                            random_state=0).partial_fit(X, y, classes=[0, 1, 2])  # fmt: skip
    before = clf.coef_.copy()
    clf.set_params(lr=1e-9, reg=0.5, momentum=0.5).partial_fit(X, y)
    assert np.abs(clf.coef_ - before).max() < 1e-6
    assert clf.model_.reg == 0.5 and clf.model_.momentum == 0.5
    clf.set_params(lr=-1.0)
    with pytest.raises(ValueError, match="lr must be a finite number"):
        clf.partial_fit(X, y)


@once
@pytest.mark.parametrize(
    ("params", "failing"),
    [
        ({}, set()),
        ({"early_stopping": True}, set()),
        ({"class_weight": "balanced"}, set()),
        ({"penalty": "elasticnet", "l1_ratio": 0.5}, set()),
        ({"warm_start": True}, set()),
        ({"early_stopping": True, "class_weight": "balanced"}, set()),
        ({"solver": "sgd"}, {"check_class_weight_classifiers"}),
        ({"solver": "sgd", "tol": None}, set()),
        ({"solver": "sgd", "early_stopping": True}, {"check_class_weight_classifiers"}),
        ({"solver": "sgd", "class_weight": "balanced", "tol": None}, set()),
        (
            {"solver": "sgd", "dtype": "float32"},
            {"check_sample_weight_equivalence_on_dense_data", "check_class_weight_classifiers"},
        ),
        (
            {"dtype": "float32"},
            {"check_sample_weight_equivalence_on_dense_data", "check_classifiers_train"},
        ),
        (
            {"solver": "sgd", "batch_size": 16},
            {"check_sample_weight_equivalence_on_dense_data", "check_class_weight_classifiers"},
        ),
        (
            {"solver": "sgd", "warm_start": True},
            {"check_supervised_y_2d", "check_class_weight_classifiers"},
        ),
        ({"fit_intercept": False}, {"check_class_weight_classifiers"}),
        ({"fit_intercept": False, "solver": "sgd", "tol": None}, {"check_class_weight_classifiers"}),
    ],
    ids=[
        "default",
        "early-stopping",
        "balanced",
        "elasticnet",
        "warm",
        "early-balanced",
        "sgd",
        "sgd-no-tol",
        "sgd-early-stopping",
        "sgd-balanced",
        "sgd-float32",
        "float32",
        "sgd-small-batch",
        "sgd-warm",
        "no-intercept",
        "sgd-no-intercept",
    ],
)  # fmt: skip
def test_expected_failed_checks_are_the_ones_that_fail(params, failing):
    """expected_failed_checks names exactly the checks each configuration fails (the reasons
    are in its docstring), so check_estimator(..., expected_failed_checks=...) passes for
    them too."""
    from sklearn.utils import estimator_checks as checks

    estimator = SoftmaxClassifier(**params)
    expected = expected_failed_checks(estimator)
    assert set(expected) == failing and all(len(why) > 40 for why in expected.values())
    for name in failing:
        check = getattr(checks, name)
        with pytest.raises(AssertionError):
            if name == "check_classifiers_train":
                check("SoftmaxClassifier", estimator, readonly_memmap=True, X_dtype="float32")
            else:
                check("SoftmaxClassifier", estimator)
