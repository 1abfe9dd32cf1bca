"""SoftmaxClassifier's early-stopping hold-out is weight-consistent: identical rows are never
split, each class holds out its share of weight, a row of weight k and k copies of it are
split and validated alike, so a weighted fit and a fit on repeated rows predict the same."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

from softmax_xp import SoftmaxClassifier


def rows_and_weights(n=60, seed=0):
    """Iris rows (scaled) of three classes with integer weights, some zero."""
    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(seed)
    rows = rng.choice(X.shape[0], size=n, replace=False)
    X = StandardScaler().fit_transform(X)[rows]
    return X, y[rows], rng.integers(0, 4, size=n)


def keyed(X, y):
    """Each row's (features, label) as a hashable key."""
    return [(row.tobytes(), int(label)) for row, label in zip(X, y, strict=True)]


def weight_by_key(X, y, w):
    totals = {}
    for key, weight in zip(keyed(X, y), w, strict=True):
        totals[key] = totals.get(key, 0.0) + float(weight)
    return {key: total for key, total in totals.items() if total > 0}


@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_a_weight_of_k_is_k_copies_for_the_early_stopping_fit(backend, solver):
    X, y, w = rows_and_weights()
    params = dict(backend=backend.name, device=backend.device, dtype="float64",
                  random_state=3, early_stopping=True, validation_fraction=0.2,
                  n_iter_no_change=3, solver=solver, max_iter=40)  # fmt: skip
    if solver == "sgd":
        params.update(batch_size=1000, lr=0.5)  # one batch: weights are copies exactly
    weighted = SoftmaxClassifier(**params).fit(X, y, sample_weight=w)
    repeated = SoftmaxClassifier(**params).fit(X.repeat(w, axis=0), y.repeat(w))
    assert weighted.model_.history_.val_accuracy == repeated.model_.history_.val_accuracy
    assert weighted.n_iter_[0] == repeated.n_iter_[0]
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-7)


def test_weight_k_and_k_copies_are_split_alike(internals):
    X, y, w = rows_and_weights()
    Xw, yw, ww, (Xh, yh), wh = internals.hold_out(X, y, w, 0.25, 7)
    Xr, yr, wr, (Xhr, yhr), whr = internals.hold_out(
        X.repeat(w, axis=0), y.repeat(w), None, 0.25, 7
    )
    assert wr is None and whr is None  # unweighted stays unweighted, as before
    assert weight_by_key(Xh, yh, wh) == weight_by_key(Xhr, yhr, np.ones(yhr.shape[0]))
    assert weight_by_key(Xw, yw, ww) == weight_by_key(Xr, yr, np.ones(yr.shape[0]))


def test_identical_rows_are_never_split(internals):
    X, y, _ = rows_and_weights()
    copies = np.r_[np.arange(60), np.arange(0, 60, 2), np.arange(0, 60, 3)]
    Xtr, ytr, _, (Xh, yh), _ = internals.hold_out(X[copies], y[copies], None, 0.3, 0)
    assert not set(keyed(Xtr, ytr)) & set(keyed(Xh, yh))
    assert Xtr.shape[0] + Xh.shape[0] == copies.shape[0]


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_each_class_holds_out_its_fraction_of_weight(internals, fraction):
    X, y, w = rows_and_weights(n=90)
    _, _, _, (_, yh), wh = internals.hold_out(X, y, w.astype(float), fraction, 1)
    for label in np.unique(y):
        total, held = w[y == label].sum(), wh[yh == label].sum()
        # The smallest prefix of groups reaching the fraction: at most one row's weight above.
        assert fraction * total <= held < fraction * total + w[y == label].max()
    # Unweighted: ceil(fraction * count) distinct rows per class, stratified.
    _, _, _, (_, yh), wh = internals.hold_out(X, y, None, fraction, 1)
    assert wh is None
    for label in np.unique(y):
        assert (yh == label).sum() == np.ceil(fraction * (y == label).sum())


def test_zero_weight_rows_do_not_change_the_split(internals):
    X, y, w = rows_and_weights()
    w = np.maximum(w, 1)
    rng = np.random.default_rng(5)
    extra = rng.normal(size=(25, X.shape[1]))
    X0, y0 = np.r_[X, extra], np.r_[y, rng.integers(0, 3, size=25)]
    w0 = np.r_[w, np.zeros(25, dtype=w.dtype)]
    _, _, _, (Xh, yh), wh = internals.hold_out(X, y, w, 0.2, 4)
    _, _, _, (Xh0, yh0), wh0 = internals.hold_out(X0, y0, w0, 0.2, 4)
    assert weight_by_key(Xh, yh, wh) == weight_by_key(Xh0, yh0, wh0)


def test_the_split_is_reproducible_from_random_state(internals):
    X, y, w = rows_and_weights()
    first = internals.hold_out(X, y, w, 0.3, 11)[3]
    again = internals.hold_out(X, y, w, 0.3, 11)[3]
    other = internals.hold_out(X, y, w, 0.3, 12)[3]
    np.testing.assert_array_equal(first[0], again[0])
    assert set(keyed(*first)) != set(keyed(*other))
    state = np.random.RandomState(0)
    assert (
        internals.hold_out(X, y, w, 0.3, state)[3][0].shape[0] > 0
    )  # a RandomState works as in scikit-learn


def test_each_class_is_on_both_sides_on_small_data(internals):
    X, y, _ = rows_and_weights()
    rows = np.r_[np.flatnonzero(y == 0)[:2], np.flatnonzero(y == 1)[:9], np.flatnonzero(y == 2)]
    _, ytr, _, (_, yh), _ = internals.hold_out(X[rows], y[rows], None, 0.01, 0)
    assert set(ytr) == set(yh) == {0, 1, 2}
    # A class of one distinct row (three copies, or weight 3) trains; it cannot be on both sides.
    one = np.r_[np.flatnonzero(y == 0)[[0, 0, 0]], np.flatnonzero(y != 0)]
    _, ytr, _, (_, yh), _ = internals.hold_out(X[one], y[one], None, 0.2, 0)
    assert 0 in set(ytr) and 0 not in set(yh)


def test_no_rows_to_hold_out_is_a_clear_error():
    X = np.array([[0.0], [0.0], [1.0], [1.0]])
    with pytest.raises(ValueError, match="found no rows to hold out"):
        SoftmaxClassifier(early_stopping=True).fit(X, [0, 0, 1, 1])


def test_sparse_rows_are_split_as_dense_ones(internals):
    sparse = pytest.importorskip("scipy.sparse")
    X, y, w = rows_and_weights()
    X[X < 0] = 0.0
    dense = internals.hold_out(X, y, w, 0.3, 2)
    lazy = internals.hold_out(sparse.csr_array(X), y, w, 0.3, 2)
    np.testing.assert_array_equal(lazy[3][0].toarray(), dense[3][0])
    np.testing.assert_array_equal(lazy[4], dense[4])
