"""What a LogisticRegression or SGDClassifier user reaches for: early stopping, the stopping rule
on the training loss, class weights, a start from zeros, n_iter_'s shape, float32 L-BFGS."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from softmax_xp import SoftmaxClassifier, SoftmaxXP, to_numpy


def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def clf_on(backend, **params):
    return SoftmaxClassifier(backend=backend.name, device=backend.device, dtype="float64",
                             random_state=0, **params)  # fmt: skip


# -- stopping ----------------------------------------------------------------------------------
def test_sgd_stops_when_the_training_loss_stops_improving():
    X, y = iris()
    clf = SoftmaxClassifier(solver="sgd", lr=0.5, max_iter=500, tol=1e-3, n_iter_no_change=3,
                            random_state=0)  # fmt: skip
    clf.fit(X, y)
    losses, n = clf.loss_curve_, int(clf.n_iter_[0])
    assert clf.n_iter_.shape == (1,) and n == len(losses) < 500
    best, count = np.inf, 0
    for loss in losses:  # SGDClassifier's rule, epoch by epoch
        count = count + 1 if loss > best - 1e-3 else 0
        best = min(best, loss)
    assert count == 3  # met exactly at the last epoch run


def test_max_iter_reached_warns_and_tol_none_runs_every_epoch():
    X, y = iris()
    with pytest.warns(ConvergenceWarning, match="SGD did not converge"):
        SoftmaxClassifier(solver="sgd", max_iter=3, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = SoftmaxClassifier(solver="sgd", max_iter=7, tol=None, random_state=0).fit(X, y)
    assert int(clf.n_iter_[0]) == 7


def test_early_stopping_holds_out_a_stratified_fraction_and_stops():
    X, y = wine()
    clf = SoftmaxClassifier(solver="sgd", lr=0.5, max_iter=300, early_stopping=True,
                            validation_fraction=0.2,
                            n_iter_no_change=4, random_state=0).fit(X, y)  # fmt: skip
    history = clf.model_.history_
    assert len(history.val_accuracy) == int(clf.n_iter_[0]) < 300
    assert clf.model_.history_.val_loss  # the held-out rows were validated every epoch
    best, count = -np.inf, 0
    for score in history.val_accuracy:
        count = count + 1 if score < best + clf.tol else 0
        best = max(best, score)
    assert count == 4


def test_early_stopping_is_refused_where_it_cannot_hold_out():
    X, y = iris()
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as info:
        SoftmaxClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    assert "early_stopping=True is for fit" in str(info.value.__cause__)  # why, chained
    assert not hasattr(SoftmaxClassifier(early_stopping=True), "partial_fit")  # as MLPClassifier
    with pytest.raises(ValueError, match="validation_fraction"):
        SoftmaxClassifier(early_stopping=True, validation_fraction=1.5).fit(X, y)
    with pytest.raises(ValueError, match="n_iter_no_change"):
        SoftmaxClassifier(n_iter_no_change=0).fit(X, y)


def test_early_stopping_with_lbfgs_stops_too():
    X, y = wine()
    clf = SoftmaxClassifier(solver="lbfgs", max_iter=200, tol=1e-10, early_stopping=True,
                            n_iter_no_change=2, random_state=0).fit(X, y)  # fmt: skip
    assert int(clf.n_iter_[0]) < 200
    assert "no improvement of the val_accuracy" in clf.model_.solver_message_


def test_early_stopping_holds_out_a_row_of_each_class_on_small_data(backend):
    """Ten rows of two classes: a validation_fraction of 0.1 is one row, fewer than the
    classes; the hold-out takes one of each (where SGDClassifier refuses the fit)."""
    X, y = iris()
    rows = np.r_[0:5, 50:55]
    clf = clf_on(backend, early_stopping=True, max_iter=20).fit(X[rows], y[rows])
    assert clf.classes_.tolist() == [0, 1] and clf.score(X[rows], y[rows]) == 1.0


def test_early_stopping_checks_sample_weight_before_holding_out():
    X, y = iris()
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(3,\), expected \(150,\)"):
        SoftmaxClassifier(early_stopping=True).fit(X, y, sample_weight=np.ones(3))


def test_early_stopping_on_sparse_x():
    sparse = pytest.importorskip("scipy.sparse")
    X, y = wine()
    dense = SoftmaxClassifier(early_stopping=True, random_state=0, max_iter=30).fit(X, y)
    lazy = SoftmaxClassifier(early_stopping=True, random_state=0, max_iter=30)
    lazy.fit(sparse.csr_array(X), y)
    np.testing.assert_allclose(lazy.coef_, dense.coef_, atol=1e-8)


@pytest.mark.parametrize("load", ["iris", "wine", "digits"])
def test_the_default_fit_is_logistic_regressions_without_warnings(load):
    """The default solver is L-BFGS, as LogisticRegression's: on standardized data the default
    fit converges (no ConvergenceWarning, where SGD's 100 epochs did not) to the same
    probabilities as LogisticRegression's defaults with reg = 1 / (C n)."""
    from sklearn import datasets

    X, y = getattr(datasets, f"load_{load}")(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = SoftmaxClassifier().fit(X, y)
        theirs = LogisticRegression(C=1 / (1e-4 * len(y))).fit(X, y)
    assert ours.solver == "lbfgs" and int(ours.n_iter_[0]) < 100
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-9)


# -- class weights -----------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
@pytest.mark.parametrize("class_weight", [{0: 3.0, 2: 0.0}, "balanced"])
def test_class_weight_equals_the_sample_weights_it_stands_for(backend, solver, class_weight):
    X, y = wine()
    keep = np.r_[0:40, 59:130, 130:178]  # unbalanced classes
    X, y = X[keep], y[keep]
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    counts = np.bincount(y, weights=w)  # "balanced" counts with the weights (LogisticRegression)
    per_class = w.sum() / (3 * counts) if class_weight == "balanced" else np.array([3.0, 1.0, 0.0])
    params = dict(solver=solver, max_iter=20, tol=None if solver == "sgd" else 1e-6)
    weighted = clf_on(backend, class_weight=class_weight, **params).fit(X, y, sample_weight=w)
    by_rows = clf_on(backend, **params).fit(X, y, sample_weight=w * per_class[y])
    np.testing.assert_array_equal(to_numpy(weighted.coef_), to_numpy(by_rows.coef_))


def test_balanced_class_weight_counts_the_sample_weights():
    """class_weight="balanced" with integer sample weights is the fit on the repeated rows
    (the classes are counted with the weights, as LogisticRegression counts them)."""
    X, y = wine()
    w = np.random.default_rng(1).integers(0, 4, len(y))
    params = dict(class_weight="balanced", tol=1e-10, max_iter=1000, dtype="float64")
    weighted = SoftmaxClassifier(**params).fit(X, y, sample_weight=w)
    repeated = SoftmaxClassifier(**params).fit(X.repeat(w, axis=0), y.repeat(w))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), atol=1e-7)
    theirs = LogisticRegression(class_weight="balanced", C=1 / (1e-4 * w.sum()), tol=1e-12,
                                max_iter=10000).fit(X, y, sample_weight=w)  # fmt: skip
    np.testing.assert_allclose(weighted.predict_proba(X), theirs.predict_proba(X), atol=1e-5)


def test_class_weight_lbfgs_matches_logistic_regression():
    X, y = wine()
    reg = 0.01
    ours = SoftmaxClassifier(solver="lbfgs", reg=reg, max_iter=1000, tol=1e-10,
                             class_weight={0: 2.0, 1: 0.5}, dtype="float64").fit(X, y)  # fmt: skip
    total_weight = np.array([2.0, 0.5, 1.0])[y].sum()  # C = 1 / (reg * sum of the weights)
    theirs = LogisticRegression(C=1 / (reg * total_weight), class_weight={0: 2.0, 1: 0.5},
                                tol=1e-12, max_iter=10000).fit(X, y)  # fmt: skip
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-5)


def test_class_weight_labels_and_partial_fit():
    X, y = iris()
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = SoftmaxClassifier(class_weight={"virginica": 0.0}, solver="sgd", max_iter=5, tol=None)
    clf.fit(X, labels)
    assert "virginica" not in set(clf.predict(X[y == 2]))  # weight 0: the class is not learnt
    with pytest.raises(ValueError, match="not classes of y"):
        SoftmaxClassifier(class_weight={"rose": 2.0}).fit(X, labels)
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as info:
        SoftmaxClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    assert "class_weight='balanced' counts the classes" in str(info.value.__cause__)
    assert not hasattr(SoftmaxClassifier(class_weight="balanced"), "partial_fit")
    dict_weights = SoftmaxClassifier(class_weight={1: 2.0}, random_state=0)
    by_rows = SoftmaxClassifier(random_state=0)
    dict_weights.partial_fit(X, y, classes=[0, 1, 2])
    by_rows.partial_fit(X, y, classes=[0, 1, 2], sample_weight=np.where(y == 1, 2.0, 1.0))
    np.testing.assert_array_equal(dict_weights.coef_, by_rows.coef_)


# -- the start and L-BFGS's stopping rule ------------------------------------------------------
def test_lbfgs_does_not_depend_on_random_state_and_sums_to_zero():
    X, y = iris()
    fits = [
        SoftmaxClassifier(solver="lbfgs", reg=0.0, max_iter=50, dtype="float64").fit(X, y)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0].coef_, fits[1].coef_)
    np.testing.assert_allclose(fits[0].coef_.sum(axis=0), 0.0, atol=1e-12)


def test_max_iter_zero_gives_zeros():
    X, y = iris()
    with pytest.warns(ConvergenceWarning):
        clf = SoftmaxClassifier(max_iter=0, solver="lbfgs").fit(X, y)
    assert not np.any(clf.coef_) and not np.any(clf.intercept_)
    clf = SoftmaxClassifier(max_iter=0, solver="sgd").fit(X, y)  # SGD starts from zeros too
    assert not np.any(clf.coef_)


def test_float32_lbfgs_stops_where_float64_would():
    """Before, float32's own epsilon in scipy's ftol stopped L-BFGS ~18 iterations in, 1.9 %
    from the optimum, without a warning."""
    X, y = wine()
    params = dict(solver="lbfgs", reg=1e-3, max_iter=1000, tol=1e-5)
    f64 = SoftmaxClassifier(dtype="float64", **params).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        f32 = SoftmaxClassifier(dtype="float32", **params).fit(X.astype(np.float32), y)
    gap = np.abs(f32.coef_ - f64.coef_).max() / np.abs(f64.coef_).max()
    assert gap < 2e-3 and int(f32.n_iter_[0]) > 18


def test_softmaxxp_keeps_its_random_start_and_offers_zeros():
    assert np.any(SoftmaxXP(3, 2, backend="numpy", seed=0).W)
    zero = SoftmaxXP(3, 2, backend="numpy", seed=0, init="zeros")
    assert not np.any(zero.W)
    with pytest.raises(ValueError, match="Unknown init 'ones'"):
        SoftmaxXP(3, 2, init="ones")


# -- coef_ and intercept_ written by the user --------------------------------------------------
def test_written_coef_and_intercept_take_effect():
    X, y = iris()
    clf = SoftmaxClassifier(solver="sgd", max_iter=20, random_state=0, dtype="float64").fit(X, y)
    before = clf.predict_proba(X)
    clf.coef_ = np.zeros_like(clf.coef_)
    clf.intercept_ = np.array([0.0, 5.0, 0.0])
    np.testing.assert_allclose(clf.decision_function(X), np.tile([0.0, 5.0, 0.0], (150, 1)))
    assert set(clf.predict(X)) == {1}
    fitted = SoftmaxClassifier(solver="sgd", max_iter=20, random_state=0, dtype="float64").fit(X, y)
    fitted.coef_[0, 0] += 100.0  # in place, too
    assert not np.allclose(fitted.predict_proba(X), before)


def test_a_written_binary_coef_gives_the_log_odds():
    X, y = iris()
    X, y = X[y > 0], y[y > 0]
    clf = SoftmaxClassifier(solver="sgd", max_iter=20, random_state=0, dtype="float64").fit(X, y)
    odds = clf.decision_function(X)
    clf.coef_, clf.intercept_ = -clf.coef_, -clf.intercept_
    np.testing.assert_allclose(clf.decision_function(X), -odds, atol=1e-12)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(np.log(proba[:, 1] / proba[:, 0]), -odds, atol=1e-9)
    np.testing.assert_array_equal(
        clf.predict(X), np.where(-odds > 0, clf.classes_[1], clf.classes_[0])
    )


def test_sparsify_and_densify_keep_the_predictions():
    sparse = pytest.importorskip("scipy.sparse")
    X, y = iris()
    clf = SoftmaxClassifier(solver="sgd", max_iter=10, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert sparse.issparse(clf.sparsify().coef_)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    assert isinstance(clf.densify().coef_, np.ndarray)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)


def test_a_coef_of_the_wrong_shape_is_a_clear_error():
    X, y = iris()
    clf = SoftmaxClassifier(solver="sgd", max_iter=2).fit(X, y)
    clf.coef_ = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"needs \(3, 4\) and \(3,\)"):
        clf.predict(X)


# -- scikit-learn's callbacks (sklearn.callback, 1.9+) -------------------------------------------
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_scikit_learn_callbacks_see_every_epoch(solver):
    callback = pytest.importorskip("sklearn.callback")
    X, y = iris()
    seen = []

    class Record:
        def setup(self, estimator, context):
            seen.append("setup")

        def on_fit_task_begin(self, estimator, context, **kwargs):
            seen.append(("begin", context.task_name))

        def on_fit_task_end(self, estimator, context, *, fitted_estimator=None, X=None, y=None,
                            metadata=None):  # fmt: skip
            name = context.task_name
            if fitted_estimator is not None and name == "epoch":
                seen.append(("end", name, round(fitted_estimator.score(X, y), 6)))
            else:
                seen.append(("end", name))

        def teardown(self, estimator, context):
            seen.append("teardown")

    if not isinstance(Record(), callback.FitCallback):
        pytest.skip("this scikit-learn's FitCallback protocol differs")
    clf = SoftmaxClassifier(solver=solver, max_iter=3, tol=None if solver == "sgd" else 1e-12,
                            random_state=0, dtype="float64")  # fmt: skip
    clf.set_callbacks(Record()).fit(X, y)
    epochs = [event for event in seen if event[:2] == ("end", "epoch") and len(event) == 3]
    assert seen[0] == "setup" and seen[1] == ("begin", "fit") and seen[-1] == "teardown"
    assert len(epochs) == int(clf.n_iter_[0]) == 3
    assert epochs[-1][2] == round(clf.score(X, y), 6)  # the last epoch's copy is the fit


def test_a_scikit_learn_callback_can_stop_the_fit():
    callback = pytest.importorskip("sklearn.callback")
    X, y = iris()

    class StopAfterTwo:
        def __init__(self):
            self.ends = 0

        def setup(self, estimator, context):
            pass

        def on_fit_task_begin(self, estimator, context, **kwargs):
            pass

        def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
            if context.task_name == "epoch" and fitted_estimator is not None:
                self.ends += 1
                return self.ends >= 2
            return False

        def teardown(self, estimator, context):
            pass

    if not isinstance(StopAfterTwo(), callback.FitCallback):
        pytest.skip("this scikit-learn's FitCallback protocol differs")
    clf = SoftmaxClassifier(max_iter=50, tol=None, random_state=0).set_callbacks(StopAfterTwo())
    assert int(clf.fit(X, y).n_iter_[0]) == 2
