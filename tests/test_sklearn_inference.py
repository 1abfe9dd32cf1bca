"""SoftmaxClassifier's decision_function and predict_log_proba: chunked and checked like
predict_proba (one chunk of X and its logits on the device at a time, overflow refused), and the
binary decision_function of every scikit-learn classifier."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

from softmax_xp import SoftmaxClassifier, to_numpy
from softmax_xp.functional import log_softmax


def _data(n=150, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X @ rng.normal(size=(d, k))).argmax(axis=1)
    return X, y


@pytest.mark.parametrize("method", ["decision_function", "predict_log_proba"])
def test_logit_methods_move_x_one_chunk_at_a_time(backend, method, internals):
    X, y = _data()
    clf = SoftmaxClassifier(backend=backend.name, device=backend.device, dtype="float64",
                            max_iter=3, random_state=0).fit(X, y)  # fmt: skip
    internals.limit_chunk_rows(16)
    rows = internals.record_chunks()
    got = getattr(clf, method)(X)
    assert rows and max(rows) <= 16 and sum(rows) == 150
    logits = X @ to_numpy(clf.model_.W) + to_numpy(clf.model_.b)
    want = logits if method == "decision_function" else to_numpy(log_softmax(logits))
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["decision_function", "predict_log_proba"])
def test_logit_methods_refuse_overflowed_logits(backend, method):
    """Features far outside the training range overflow float32 logits: the same clear error as
    predict_proba's, not inf or NaN."""
    X, y = _data()
    clf = SoftmaxClassifier(backend=backend.name, device=backend.device, dtype="float32",
                            solver="lbfgs", max_iter=30).fit(X, y)  # fmt: skip
    huge = np.sign(X) * 3e38  # finite float32 features, overflowing logits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"overflowed float32.*Scale X"):
            getattr(clf, method)(huge)


def test_binary_decision_function_is_logistic_regressions(backend):
    """Two classes: shape (n,), positive means classes_[1], and at C = 2 / (reg n) the same
    numbers as LogisticRegression's."""
    from sklearn.linear_model import LogisticRegression

    X, y = _data(k=2)
    labels = np.array(["no", "yes"])[y]
    reg = 1e-2
    clf = SoftmaxClassifier(backend=backend.name, device=backend.device, solver="lbfgs",
                            dtype="float64", reg=reg, tol=1e-10, max_iter=500).fit(X, labels)  # fmt: skip
    ref = LogisticRegression(C=2 / (reg * X.shape[0]), tol=1e-10, max_iter=500).fit(X, labels)
    decision = clf.decision_function(X)
    assert decision.shape == (150,)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(decision > 0).astype(int)])
    np.testing.assert_allclose(decision, ref.decision_function(X), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(clf.predict_log_proba(X), ref.predict_log_proba(X), atol=1e-5)
