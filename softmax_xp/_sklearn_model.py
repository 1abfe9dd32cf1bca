"""How :class:`~softmax_xp.SoftmaxClassifier` turns its parameters into a
:class:`~softmax_xp.SoftmaxXP` and the trained model into scikit-learn's fitted attributes, and
how it checks its inputs with scikit-learn's utilities (the estimator's half that knows the
model; :mod:`softmax_xp.sklearn` keeps the protocol: parameters, ``fit``, ``partial_fit``,
tags)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils._array_api import get_namespace_and_device
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from ._backend import to_numpy
from ._data import is_lazy
from ._sklearn_fit import check_one_label_per_sample, dispatch, dtype_name, host_labels, seed, where
from ._validation import check_hyperparameters
from .model import SoftmaxXP

__all__ = ["ModelBridge"]

Array = Any


class ModelBridge:
    """The estimator's parameters as a SoftmaxXP, its fitted attributes from one, and its
    input checks (a mixin of :class:`~softmax_xp.SoftmaxClassifier`)."""

    lr: float
    reg: float
    momentum: float
    lr_decay: float
    penalty: str
    l1_ratio: float | None
    fit_intercept: bool
    backend: str
    device: Any
    dtype: str | None
    random_state: Any
    n_features_in_: int | None
    model_: SoftmaxXP

    def _follow_sgd_params(self, model: SoftmaxXP) -> None:
        """Give a running model the SGD settings set since it was made (``set_params`` between
        ``partial_fit`` calls, as SGDClassifier follows them), checked as SoftmaxXP checks them."""
        hyper = check_hyperparameters(
            model.input_dim, model.num_classes, self.lr, self.reg, self.momentum,
            self.lr_decay, model.dtype_name, model.seed, self.penalty, self.l1_ratio,
            self.fit_intercept,
        )  # fmt: skip
        model.lr, model.reg = hyper["lr"], hyper["reg"]
        model.momentum, model.lr_decay = hyper["momentum"], hyper["lr_decay"]
        model.penalty, model.l1_ratio = hyper["penalty"], hyper["l1_ratio"]
        model.fit_intercept = hyper["fit_intercept"]

    def _validate(self, X: Any, y: Any, reset: bool) -> tuple[Array, Array]:
        check_one_label_per_sample(y, type(self).__name__)
        if is_lazy(X):  # X stays lazy; the labels come to the host
            return self._dask_features(X, reset), host_labels(y)
        xp, _, _ = get_namespace_and_device(X)
        X, y = validate_data(
            self, X, y, reset=reset, dtype=[xp.float64, xp.float32], accept_sparse="csr"
        )
        check_classification_targets(y)
        return X, y

    def _dask_features(self, X: Any, reset: bool) -> Any:
        """A Dask ``X`` checked for its number of features only (its values are checked by
        SoftmaxXP, block by block, when they are read)."""
        n_features = X.shape[1] if X.ndim == 2 else None
        if reset:
            self.n_features_in_ = n_features
        elif n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X

    def _new_model(self, X: Array, num_classes: int) -> SoftmaxXP:
        """An untrained SoftmaxXP for ``X``: on X's backend, device and dtype with dispatch on;
        on ``backend``/``device`` with ``dtype`` (default X's) otherwise."""
        dtype = self.dtype
        if dispatched := dispatch():
            backend, _, device = where(X)
        else:
            backend, device = self.backend, self.device
        if dtype is None or dispatched:
            dtype = dtype_name(X)
        return SoftmaxXP(
            X.shape[1],
            num_classes,
            lr=self.lr,
            reg=self.reg,
            backend=backend,
            device=device,
            dtype=dtype,
            seed=seed(self.random_state),
            momentum=self.momentum,
            lr_decay=self.lr_decay,
            penalty=self.penalty,
            l1_ratio=self.l1_ratio,
            fit_intercept=self.fit_intercept,
            init="zeros",  # as scikit-learn's linear models: L-BFGS's optimum is random_state's
        )

    def _set_fitted(self, model: SoftmaxXP) -> None:
        self.model_ = model
        xp = model.xp
        coef = xp.asarray(model.W.T, copy=True)
        intercept = xp.reshape(xp.asarray(model.b, copy=True), (-1,))
        if coef.shape[0] == 2:  # binary: one row, the log-odds of classes_[1], as scikit-learn
            coef, intercept = coef[1:, :] - coef[:1, :], intercept[1:] - intercept[:1]
        if not dispatch():
            coef, intercept = to_numpy(coef), to_numpy(intercept)
        self.coef_, self.intercept_ = coef, intercept
        self._fitted = (to_numpy(coef).copy(), to_numpy(intercept).copy())
        n_iter = np.asarray([model.epoch_], dtype=np.int32)
        if dispatch():  # every fitted array follows X, as the array API checks require
            n_iter = xp.asarray(n_iter, device=model.device)
        self.n_iter_ = n_iter
        self.loss_curve_ = list(model.history_.loss)
