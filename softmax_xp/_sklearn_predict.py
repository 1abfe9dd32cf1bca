"""What a fitted SoftmaxClassifier returns: decision function, probabilities, log-probabilities
and labels, in the namespace and on the device scikit-learn's array API dispatch asks for, from
the weights of ``coef_`` and ``intercept_``."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils._array_api import get_namespace_and_device
from sklearn.utils.validation import check_is_fitted, validate_data

from ._backend import to_numpy
from ._data import is_lazy
from ._sklearn_fit import dense_host, dispatch, its_device, label_of, where, with_weights
from .model import SoftmaxXP

try:
    from sklearn.utils._array_api import check_same_namespace
except ImportError:  # pragma: no cover - scikit-learn < 1.9
    check_same_namespace = None

__all__ = ["ClassifierOutputs"]

Array = Any


class ClassifierOutputs:
    """The prediction methods of :class:`~softmax_xp.SoftmaxClassifier`."""

    coef_: Any
    intercept_: Any
    classes_: np.ndarray
    model_: SoftmaxXP
    _dask_features: Any

    def _predictor(self) -> SoftmaxXP:
        """``model_``, or, when ``coef_`` or ``intercept_`` were written after the fit, a model
        with their weights: scikit-learn's linear classifiers predict from them."""
        coef, intercept = dense_host(self.coef_), to_numpy(self.intercept_)
        fitted: tuple[Any, Any] = getattr(self, "_fitted", (None, None))
        fitted_coef, fitted_intercept = fitted
        if np.array_equal(coef, fitted_coef) and np.array_equal(intercept, fitted_intercept):
            return self.model_
        model: SoftmaxXP = with_weights(self.model_, coef, intercept)
        return model

    def sparsify(self) -> Any:
        """Store ``coef_`` as a scipy.sparse CSR matrix (worth it when most weights are 0, as
        after an L1 fit); predictions are unchanged. Returns ``self``.

        Examples
        --------
        >>> from softmax_xp import SoftmaxClassifier
        >>> clf = SoftmaxClassifier(backend="numpy").fit([[0.0], [1.0]], [0, 1])
        >>> type(clf.sparsify().coef_).__name__, type(clf.densify().coef_).__name__
        ('csr_matrix', 'ndarray')
        """
        check_is_fitted(self)
        from scipy import sparse

        self.coef_ = sparse.csr_matrix(dense_host(self.coef_))
        return self

    def densify(self) -> Any:
        """Store ``coef_`` as a dense array again (see :meth:`sparsify`). Returns ``self``.

        Examples
        --------
        >>> from softmax_xp import SoftmaxClassifier
        >>> clf = SoftmaxClassifier(backend="numpy").fit([[0.0], [1.0]], [0, 1])
        >>> type(clf.densify().coef_).__name__
        'ndarray'
        """
        check_is_fitted(self)
        if hasattr(self.coef_, "toarray"):
            self.coef_ = self.coef_.toarray()
        return self

    def _input(self, X: Any, method: str) -> tuple[Array, Any]:
        """``X`` validated (not moved: SoftmaxXP moves it to the device chunk by chunk), and a
        function that puts a model array into the namespace (and device) the output must have."""
        check_is_fitted(self)
        if is_lazy(X):  # lazy outputs, computed block by block
            return self._dask_features(X, reset=False), lambda a: a
        if dispatch() and check_same_namespace is not None:
            check_same_namespace(X, self, attribute="coef_", method=method)
        sk_xp, _, _ = get_namespace_and_device(X)
        X = validate_data(
            self, X, reset=False, dtype=[sk_xp.float64, sk_xp.float32], accept_sparse="csr"
        )
        model = self._predictor()
        backend, xp, device = where(X)

        def out(a: Array) -> Any:
            if not dispatch():
                return to_numpy(a)
            if backend == model.backend:
                return a
            return xp.asarray(to_numpy(a), device=device)

        return X, out

    def decision_function(self, X: Any) -> Array:
        """The logits ``X W + b``, shape (n_samples, n_classes); for two classes, as in every
        scikit-learn classifier, the log-odds of ``classes_[1]`` (``z_1 - z_0``), shape
        (n_samples,): positive means ``classes_[1]``. Computed as ``predict_proba`` is: chunked,
        and refused when ``X`` holds NaN or the logits overflow (a Dask ``X`` gives a lazy
        array that raises when computed).

        Examples
        --------
        >>> from softmax_xp import SoftmaxClassifier
        >>> clf = SoftmaxClassifier(backend="numpy", random_state=0)
        >>> clf = clf.fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        >>> (clf.decision_function([[0.0], [3.0]]) > 0).tolist()  # > 0: classes_[1]
        [False, True]
        """
        X, out = self._input(X, "decision_function")
        z = out(self._predictor().decision_function(X))
        if z.shape[1] != 2:
            return z
        with its_device(z):
            return z[:, 1] - z[:, 0]

    def predict_proba(self, X: Any) -> Array:
        """Class probabilities ``softmax(X W + b)``, columns in the order of ``classes_``.

        Examples
        --------
        >>> from softmax_xp import SoftmaxClassifier
        >>> clf = SoftmaxClassifier(backend="numpy", random_state=0)
        >>> proba = clf.fit([[0.0], [1.0], [2.0]], ["a", "b", "c"]).predict_proba([[1.0]])
        >>> proba.shape, bool(abs(proba.sum() - 1) < 1e-6)
        ((1, 3), True)
        """
        X, out = self._input(X, "predict_proba")
        return out(self._predictor().predict_proba(X))

    def predict_log_proba(self, X: Any) -> Array:
        """``log_softmax(X W + b)``, computed without taking the log of probabilities.

        Examples
        --------
        >>> from softmax_xp import SoftmaxClassifier
        >>> import numpy as np
        >>> clf = SoftmaxClassifier(backend="numpy", random_state=0)
        >>> clf = clf.fit([[0.0], [1.0], [2.0]], [0, 1, 2])
        >>> bool(np.allclose(np.exp(clf.predict_log_proba([[1.0]])), clf.predict_proba([[1.0]])))
        True
        """
        X, out = self._input(X, "predict_log_proba")
        return out(self._predictor().predict_log_proba(X))

    def predict(self, X: Any) -> Array:
        """The most probable class of each row, a label of ``classes_``.

        Examples
        --------
        >>> from softmax_xp import SoftmaxClassifier
        >>> clf = SoftmaxClassifier(backend="numpy", random_state=0)
        >>> clf.fit([[0.0], [1.0], [2.0], [3.0]], [10, 10, 2, 2]).predict([[0.0], [3.0]])
        array([10,  2])
        """
        X, out = self._input(X, "predict")
        index = self._predictor().predict(X)
        if is_lazy(index):
            classes = self.classes_
            return index.map_blocks(label_of, classes, dtype=classes.dtype, meta=classes[:0])
        if dispatch() and self.classes_.dtype.kind in "biuf":
            model = self.model_
            with its_device(index):
                classes = model.xp.asarray(self.classes_, device=model.device)
                return out(model.xp.take(classes, index, axis=0))
        return self.classes_[to_numpy(index)]
