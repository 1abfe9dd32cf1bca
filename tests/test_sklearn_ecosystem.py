"""SoftmaxClassifier among scikit-learn's other tools, as users combine them: pandas inputs,
model selection (with loky workers), metadata routing, meta-estimators, displays and array API
pipelines. These are scikit-learn's behaviours, so they run once, on the numpy backend, except
the array API pipeline, which runs on every backend."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

import sklearn
from conftest import _selected
from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from softmax_xp import SoftmaxClassifier
from softmax_xp._backend import index_dtype

SELECTED = {name.split(":")[0] for name in _selected()}
pytestmark = pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
once = pytest.mark.skipif("numpy" not in SELECTED, reason="runs once, in the numpy session")


def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def clf(**params):
    settings = {"backend": "numpy", "solver": "lbfgs", "dtype": "float64", "max_iter": 500,
                "tol": 1e-6, "random_state": 0}  # fmt: skip
    return SoftmaxClassifier(**{**settings, **params})


# -- pandas ----------------------------------------------------------------------------------
@once
def test_dataframe_features_keep_their_names():
    pd = pytest.importorskip("pandas")
    X, y = iris()
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    model = clf().fit(frame, y)
    np.testing.assert_array_equal(model.feature_names_in_, ["sl", "sw", "pl", "pw"])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict(X)
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        model.predict(frame[["pw", "pl", "sw", "sl"]])
    with sklearn.config_context(transform_output="pandas"), warnings.catch_warnings():
        warnings.simplefilter("error")  # a pipeline of DataFrames: names all the way
        pipe = make_pipeline(StandardScaler(), clf()).fit(frame, y)
        proba = pipe.predict_proba(frame)
    np.testing.assert_array_equal(pipe[-1].feature_names_in_, frame.columns)
    assert isinstance(proba, np.ndarray)  # set_output is for transformers: not proba
    np.testing.assert_allclose(proba, model.predict_proba(frame), atol=1e-6)


@once
@pytest.mark.parametrize(
    ("make_y", "classes"),
    [
        (lambda pd, y: pd.Series(np.array(["setosa", "versi", "virgi"])[y]), ["setosa", "versi", "virgi"]),
        (lambda pd, y: pd.Series(np.array(["c", "a", "b"])[y], dtype="category"), ["a", "b", "c"]),
        (lambda pd, y: pd.Series(np.array([9, 3, 7])[y]), [3, 7, 9]),
        (lambda pd, y: list(np.array(["x", "y", "z"])[y]), ["x", "y", "z"]),
        (lambda pd, y: pd.Series(y > 0), [False, True]),
    ],
    ids=["str-series", "categorical", "int-gaps", "str-list", "bool"],
)  # fmt: skip
def test_pandas_and_list_labels(make_y, classes):
    pd = pytest.importorskip("pandas")
    X, y = iris()
    labels = make_y(pd, y)
    model = clf().fit(X, labels)
    assert list(model.classes_) == classes
    predicted = model.predict(X)
    assert set(predicted) <= set(classes)
    assert np.mean(predicted == np.asarray(labels)) > 0.9
    proba = model.predict_proba(X)  # columns in the order of classes_
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], predicted)


@once
def test_label_shapes_as_logistic_regression():
    from sklearn.exceptions import DataConversionWarning

    X, y = iris()
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        column = clf().fit(X, y[:, None])
    np.testing.assert_allclose(column.coef_, clf().fit(X, y).coef_)
    two = np.stack([y, y > 0], axis=1)  # several labels per sample: one model per column
    for fit in (clf().fit, lambda X, y: clf().partial_fit(X, y, classes=[0, 1, 2])):
        with pytest.raises(ValueError, match=r"shape \(150, 2\) instead.*MultiOutputClassifier"):
            fit(X, two)


@once
def test_dask_labels_of_several_columns_get_the_same_advice():
    da = pytest.importorskip("dask.array")
    X, y = iris()
    two = da.from_array(np.stack([y, y > 0], axis=1), chunks=50)
    with pytest.raises(ValueError, match=r"shape \(150, 2\) instead.*MultiOutputClassifier"):
        clf().fit(da.from_array(X, chunks=50), two)


# -- model selection -------------------------------------------------------------------------
@once
def test_search_with_two_loky_workers_and_several_scorers():
    from sklearn.model_selection import GridSearchCV, cross_validate

    X, y = iris()
    pipe = make_pipeline(StandardScaler(), clf())
    search = GridSearchCV(pipe, {"softmaxclassifier__reg": [1e-3, 1e-1]}, cv=2, n_jobs=2)
    search.fit(X, y)  # the estimators are cloned and pickled to the loky workers and back
    assert search.best_score_ > 0.85 and search.best_estimator_[-1].reg in (1e-3, 1e-1)
    scores = cross_validate(
        pipe, X, y, cv=3, scoring=["accuracy", "neg_log_loss", "roc_auc_ovr", "f1_macro"]
    )
    assert np.all(np.isfinite(scores["test_neg_log_loss"]))
    assert scores["test_roc_auc_ovr"].mean() > 0.95 and scores["test_accuracy"].mean() > 0.9


@once
def test_metadata_routing_passes_sample_weight_to_fit_and_score():
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import cross_validate

    X, y = iris()
    w = np.random.default_rng(0).uniform(0.2, 3.0, size=150)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=False),
            clf(reg=1e-2).set_fit_request(sample_weight=True).set_score_request(sample_weight=True),
        )
        routed = pipe.fit(X, y, sample_weight=w)[-1]
        scores = cross_validate(pipe, X, y, cv=3, params={"sample_weight": w})
    direct = clf(reg=1e-2).fit(StandardScaler().fit_transform(X), y, sample_weight=w)
    np.testing.assert_allclose(routed.coef_, direct.coef_, rtol=1e-6, atol=1e-8)
    assert scores["test_score"].mean() > 0.9
    weighted = direct.score(X, y, sample_weight=w)
    assert weighted == pytest.approx(accuracy_score(y, direct.predict(X), sample_weight=w))


# -- meta-estimators and displays ------------------------------------------------------------
def _meta_estimators():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import BaggingClassifier, StackingClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsOneClassifier, OneVsRestClassifier

    yield "calibrated", CalibratedClassifierCV(clf(), cv=3)
    yield "one-vs-rest", OneVsRestClassifier(clf())
    yield "one-vs-one", OneVsOneClassifier(clf())
    yield (
        "voting-soft",
        VotingClassifier([("s", clf()), ("l", LogisticRegression())], voting="soft"),
    )
    yield "stacking", StackingClassifier([("s", clf())], final_estimator=clf(), cv=3)
    yield "bagging", BaggingClassifier(clf(), n_estimators=3, max_samples=0.7, random_state=0)


@once
@pytest.mark.parametrize(
    ("name", "meta"), list(_meta_estimators()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_meta_estimators(name, meta):
    X, y = iris()
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=150)
    fit_params = {} if name in ("one-vs-rest", "one-vs-one", "stacking") else {"sample_weight": w}
    meta.fit(X, y, **fit_params)
    assert meta.score(X, y) > 0.9
    if hasattr(meta, "predict_proba"):
        proba = meta.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
        np.testing.assert_array_equal(meta.classes_[proba.argmax(axis=1)], meta.predict(X))


@once
def test_self_training_and_frozen_estimator():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.semi_supervised import SelfTrainingClassifier

    X, y = iris()
    partly = np.where(np.arange(150) % 3 == 0, y, -1)
    assert SelfTrainingClassifier(clf()).fit(X, partly).score(X, y) > 0.9
    frozen_module = pytest.importorskip("sklearn.frozen")
    fitted = clf().fit(X, y)
    calibrated = CalibratedClassifierCV(frozen_module.FrozenEstimator(fitted)).fit(X, y)
    np.testing.assert_array_equal(calibrated.classes_, fitted.classes_)
    assert calibrated.score(X, y) > 0.9


@once
def test_displays_and_log_loss_use_classes_order():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.inspection import DecisionBoundaryDisplay
    from sklearn.metrics import RocCurveDisplay, log_loss

    X, y = iris()
    names = np.array(["zeta", "alpha", "mu"])[y]  # sorted order differs from first-seen order
    model = clf().fit(X[:, :2], names)
    proba = model.predict_proba(X[:, :2])
    own = -np.mean(np.log(proba[np.arange(150), np.searchsorted(model.classes_, names)]))
    assert log_loss(names, proba, labels=model.classes_) == pytest.approx(own)
    for method in ("predict", "predict_proba", "decision_function"):
        display = DecisionBoundaryDisplay.from_estimator(model, X[:, :2], response_method=method)
        assert display.response.shape[:2] == (100, 100)
    binary = clf().fit(X[:, :2], y > 0)
    roc = RocCurveDisplay.from_estimator(binary, X[:, :2], y > 0)
    assert roc.roc_auc > 0.95
    plt.close("all")


@once
def test_permutation_importance_and_curves():
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import learning_curve, validation_curve

    X, y = iris()
    model = clf().fit(X, y)
    importance = permutation_importance(model, X, y, n_repeats=2, random_state=0)
    assert importance.importances_mean[2:].min() > importance.importances_mean[:2].min()
    _, _, test = learning_curve(clf(), X, y, cv=3, train_sizes=[0.5, 1.0], shuffle=True,
                                random_state=0)  # fmt: skip
    assert np.all(test.mean(axis=1) > 0.85)
    _, test = validation_curve(clf(), X, y, param_name="reg", param_range=[1e-3, 1.0], cv=3)
    assert np.all(np.isfinite(test))


# -- array API -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_array_api_pipeline_stays_in_the_input_namespace(arrays, dtype, monkeypatch):
    """With dispatch on, a Pipeline(MinMaxScaler, SoftmaxClassifier) fed arrays of any backend
    returns arrays of that backend, on its device, in its floating dtype (labels in its default
    integer dtype). On JAX the scaler is left out: scikit-learn's own MinMaxScaler assigns into
    its arrays, which JAX's immutable arrays refuse (X is scaled before it becomes a JAX array)."""
    import array_api_compat

    if arrays.backend.name == "cupy":
        pytest.skip("the CuPy run of this check is in the GPU suite")
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    X, y = iris()
    scaler: Any = MinMaxScaler()
    if arrays.backend.name == "jax":
        X, scaler = scaler.fit_transform(X), "passthrough"
    Xa, ya = arrays(X, dtype), arrays(y, "int64")
    xp, device = arrays.xp, arrays.device
    with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        pipe = make_pipeline(scaler, SoftmaxClassifier(solver="lbfgs", random_state=0))
        pipe.fit(Xa, ya)
        outputs = {m: getattr(pipe, m)(Xa) for m in
                   ("predict_proba", "predict_log_proba", "decision_function")}  # fmt: skip
        predicted = pipe.predict(Xa)
        score = pipe.score(Xa, ya)
    for name, out in {**outputs, "coef_": pipe[-1].coef_}.items():
        assert array_api_compat.array_namespace(out) is array_api_compat.array_namespace(Xa), name
        assert array_api_compat.device(out) == device and out.dtype == getattr(xp, dtype), name
    assert array_api_compat.array_namespace(predicted) is array_api_compat.array_namespace(Xa)
    assert predicted.dtype == index_dtype(xp, device) and score > 0.9


# -- the estimator protocol ------------------------------------------------------------------
@once
def test_params_repr_and_tags():
    from sklearn.base import clone, is_classifier

    model = SoftmaxClassifier(reg=0.1, solver="sgd", random_state=3)
    assert repr(model) == "SoftmaxClassifier(random_state=3, reg=0.1, solver='sgd')"
    assert repr(SoftmaxClassifier(solver="lbfgs")) == "SoftmaxClassifier()"  # the default
    twin = clone(model).set_params(max_iter=7)
    assert twin.get_params() == {**model.get_params(), "max_iter": 7}
    assert is_classifier(model) and is_classifier(make_pipeline(StandardScaler(), model))
    tags = model.__sklearn_tags__()
    assert tags.estimator_type == "classifier" and tags.array_api_support
    assert tags.target_tags.required and not tags.target_tags.multi_output
    assert tags.classifier_tags.multi_class and not tags.classifier_tags.multi_label
    assert tags.input_tags.sparse and not tags.input_tags.allow_nan
