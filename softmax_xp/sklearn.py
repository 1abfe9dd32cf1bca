"""SoftmaxClassifier: the scikit-learn estimator, a thin layer over :class:`~softmax_xp.SoftmaxXP`.

It adds only the estimator protocol: hyper-parameters in the constructor, label encoding
(``classes_``), input validation with scikit-learn's utilities and messages, fitted attributes,
tags and array API dispatch. All the maths (training, probabilities) is SoftmaxXP's.

Array API (``sklearn.set_config(array_api_dispatch=True)``): everything follows ``X``. The
backend, device and dtype of the model come from ``X``, ``y`` and ``sample_weight`` are moved to
``X``'s namespace, fitted arrays (``coef_``, ``intercept_``) and outputs are in ``X``'s namespace
and on its device; calling a method with ``X`` from another namespace than ``fit``'s is an error.
Without dispatch, ``X`` must be NumPy-compatible, the model runs on the ``backend`` parameter and
every output is a NumPy array.

scikit-learn is the optional extra ``[sklearn]``: ``pip install "softmax-xp[sklearn]"``.
"""

from __future__ import annotations

import contextlib
import numbers
import warnings
from typing import Any

try:
    from sklearn import get_config
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedShuffleSplit
    from sklearn.utils._array_api import get_namespace_and_device
    from sklearn.utils.multiclass import check_classification_targets, unique_labels
    from sklearn.utils.validation import (
        check_is_fitted,
        check_random_state,
        check_scalar,
        validate_data,
    )
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "softmax_xp.SoftmaxClassifier needs scikit-learn, which is not installed. Install it "
        'with pip install "softmax-xp[sklearn]" (or pip install scikit-learn).'
    ) from exc

import array_api_compat
import numpy as np

from ._backend import backend_name, device_description, to_numpy
from ._data import is_lazy
from ._validation import check_hyperparameters
from .model import Callback, SoftmaxXP

try:
    from sklearn.utils._array_api import check_same_namespace
except ImportError:  # pragma: no cover - scikit-learn < 1.9
    check_same_namespace = None

__all__ = ["SoftmaxClassifier", "expected_failed_checks"]

Array = Any


def _dispatch() -> bool:
    return bool(get_config().get("array_api_dispatch", False))


class SoftmaxClassifier(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression (softmax with L2) trained by SoftmaxXP, as a scikit-learn
    classifier: it works in Pipeline, GridSearchCV, cross_val_score, clone and pickle.

    The objective is the mean cross-entropy plus ``0.5 * reg * ||W||^2`` (bias not penalised):
    the same optimum as ``LogisticRegression(C=1 / (reg * n_samples))`` for three or more
    classes. For two classes SoftmaxXP keeps one weight column per class, both penalised, which
    equals ``LogisticRegression(C=2 / (reg * n_samples))``.

    Parameters
    ----------
    lr, momentum, lr_decay, batch_size
        SGD's step size, heavy-ball momentum, per-epoch step-size factor and batch size
        (see :class:`~softmax_xp.SoftmaxXP`); not used by ``solver="lbfgs"``.
    reg
        L2 strength ``>= 0``.
    max_iter
        SGD epochs, or the maximum number of L-BFGS iterations.
    solver
        ``"sgd"`` (the chapter's mini-batch SGD) or ``"lbfgs"`` (full-batch L-BFGS to the exact
        optimum; needs scipy).
    tol, n_iter_no_change
        L-BFGS stops when its largest absolute gradient entry is ``<= tol``. SGD stops, as
        SGDClassifier does, after ``n_iter_no_change`` epochs in a row whose training loss is
        not below the best so far minus ``tol`` (``tol=None``: SGD runs all ``max_iter``
        epochs); reaching ``max_iter`` first warns ``ConvergenceWarning``.
    early_stopping, validation_fraction
        Hold out a stratified ``validation_fraction`` of the training rows and stop (either
        solver) after ``n_iter_no_change`` epochs in a row whose validation accuracy is not
        above the best so far plus ``tol``, as SGDClassifier's ``early_stopping`` does; the
        weights are those of the last epoch. Not with ``partial_fit`` or a Dask ``X``.
    backend, device
        Where the model runs when array API dispatch is off (``"auto"``: CuPy when a GPU answers,
        else NumPy). With dispatch on, ``X`` decides.
    dtype
        ``None`` (default): ``X``'s floating dtype (float32 stays float32; integers become
        float64), as scikit-learn does; or ``"float32"`` / ``"float64"`` to force one.
    random_state
        Seeds the initial weights and SGD's shuffles (an int, a RandomState or None).
    verbose
        Passed to :meth:`SoftmaxXP.train`: print one line per epoch when > 0.
    warm_start
        Start ``fit`` from the previous fit's weights when the classes and features match.

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
        The labels seen in ``fit`` (any labels: strings, 1..3, integral floats), sorted.
    coef_ : array (n_classes, n_features)
        Weights, as LogisticRegression lays them out: ``SoftmaxXP.W`` transposed; for two classes
        one row ``W[:, 1] - W[:, 0]`` (the log-odds of ``classes_[1]``), shape (1, n_features).
    intercept_ : array (n_classes,)
        The bias; for two classes ``(b_1 - b_0,)``.
    n_iter_ : ndarray of shape (1,)
        Epochs (SGD) or iterations (L-BFGS) of the last fit, as LogisticRegression's.
    loss_curve_ : list of float
        The training loss after each epoch or iteration.
    n_features_in_, feature_names_in_
        As every scikit-learn estimator.
    model_ : SoftmaxXP
        The fitted model (``model_.history_`` is the full History).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), SoftmaxClassifier(solver="lbfgs", backend="numpy"))
    >>> clf.fit(X, y).score(X, y) > 0.95
    True
    """

    def __init__(
        self,
        lr: float = 0.1,
        reg: float = 1e-4,
        max_iter: int = 100,
        batch_size: int = 256,
        momentum: float = 0.0,
        lr_decay: float = 1.0,
        solver: str = "sgd",
        tol: float = 1e-4,
        backend: str = "auto",
        device: Any = None,
        dtype: str | None = None,
        random_state: Any = None,
        verbose: int = 0,
        warm_start: bool = False,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
    ):
        self.lr = lr
        self.reg = reg
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.momentum = momentum
        self.lr_decay = lr_decay
        self.solver = solver
        self.tol = tol
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SoftmaxClassifier:
        """Fit the model on ``(X, y)``; ``sample_weight`` weights each row's loss (a weight of 2
        counts a row twice: exactly for L-BFGS, in expectation for mini-batch SGD, where a
        duplicated row could fall in another batch). Returns ``self``.

        Examples
        --------
        >>> X, y = [[0.0], [1.0], [2.0], [3.0]], ["no", "no", "yes", "yes"]
        >>> clf = SoftmaxClassifier(lr=1.0, max_iter=50, backend="numpy", random_state=0)
        >>> clf.fit(X, y).classes_.tolist(), clf.predict([[0.0], [3.0]]).tolist()
        (['no', 'yes'], ['no', 'yes'])
        """
        X, y = self._validate(X, y, reset=True)
        classes, codes = _encode(y)
        if classes.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, but the "
                f"data contains only one class: {classes[0].item()!r}."
            )
        stopping = self._stopping_rule()
        held_out: tuple[Any, Any] = (None, None)
        if self.early_stopping:
            X, codes, sample_weight, held_out = self._hold_out(X, codes, sample_weight)
        model = self._new_model(X, classes.shape[0])
        old = getattr(self, "model_", None)
        if (
            self.warm_start
            and old is not None
            and old.input_dim == X.shape[1]
            and _same(getattr(self, "classes_", None), classes)
        ):
            model.W, model.b = old.W, old.b
        lbfgs = self.solver == "lbfgs"
        model.train(
            X,
            codes,
            *held_out,
            epochs=self.max_iter,
            batch_size=self.batch_size,
            verbose=self.verbose,
            solver=self.solver,
            tol=self.tol if lbfgs and self.tol is not None else None,
            sample_weight=sample_weight,
            callback=[] if stopping is None else [stopping],
        )
        if not lbfgs and stopping is not None and not stopping.met and self.max_iter > 0:
            what = "validation accuracy" if self.early_stopping else "training loss"
            warnings.warn(
                f"SGD did not converge: the {what} still improved by more than tol={self.tol} "
                f"within the last {self.n_iter_no_change} of max_iter={self.max_iter} epochs. "
                "Increase max_iter, or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        if lbfgs and model.converged_ is False and not (stopping and stopping.met):
            warnings.warn(
                f"L-BFGS did not converge: it stopped after {model.epoch_} iterations "
                f"(max_iter={self.max_iter}; scipy: {model.solver_message_}). Increase "
                "max_iter, or tol, or scale the features (e.g. StandardScaler).",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.classes_ = classes
        self._set_fitted(model)
        return self

    def _stopping_rule(self) -> _NoImprovement | None:
        """SGDClassifier's stopping rule for this fit: on the validation accuracy with
        ``early_stopping``, else on SGD's training loss; None when there is none."""
        n = check_scalar(self.n_iter_no_change, "n_iter_no_change", numbers.Integral, min_val=1)
        if self.early_stopping:
            tol = -np.inf if self.tol is None else self.tol
            return _NoImprovement("val_accuracy", tol, int(n))
        if self.solver == "sgd" and self.tol is not None:
            return _NoImprovement("loss", self.tol, int(n))
        return None

    def _hold_out(
        self, X: Array, codes: np.ndarray, sample_weight: Any
    ) -> tuple[Array, np.ndarray, Any, tuple[Array, np.ndarray]]:
        """``(X, codes, sample_weight)`` of the training rows and ``(X, codes)`` of a stratified
        ``validation_fraction`` held out, split as SGDClassifier splits them."""
        if is_lazy(X):
            raise ValueError(
                "early_stopping=True holds out rows of X in memory; with a Dask X, pass your own "
                "validation set to SoftmaxXP.train(X, y, X_val, y_val, callback="
                "softmax_xp.EarlyStopping(...)) instead."
            )
        check_scalar(
            self.validation_fraction, "validation_fraction", numbers.Real,
            min_val=0, max_val=1, include_boundaries="neither",
        )  # fmt: skip
        splitter = StratifiedShuffleSplit(
            test_size=self.validation_fraction, random_state=_seed(self.random_state)
        )
        try:
            train, held = next(splitter.split(np.zeros((codes.shape[0], 1)), codes))
        except ValueError as exc:
            raise ValueError(
                f"early_stopping=True could not hold out a stratified validation_fraction="
                f"{self.validation_fraction} of {codes.shape[0]} rows: {exc}"
            ) from None
        xp = array_api_compat.array_namespace(X)
        take = (lambda a, i: a[i]) if not _dispatch() else (lambda a, i: _take_rows(xp, a, i))
        weights = _held_weights(sample_weight, train)
        return take(X, train), codes[train], weights, (take(X, held), codes[held])

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> SoftmaxClassifier:
        """One SGD pass over ``(X, y)``, continuing the current run: the momentum, the step-size
        schedule (``lr * lr_decay ** epoch``) and ``loss_curve_`` carry on from call to call.

        ``classes`` (every label the calls will see) is required on the first call, as in
        scikit-learn's other incremental classifiers. Whatever ``solver`` is, this is SGD.
        ``lr``, ``reg``, ``momentum`` and ``lr_decay`` are read on every call, so
        ``set_params`` between calls takes effect; the other parameters are fixed by the first.

        Examples
        --------
        >>> clf = SoftmaxClassifier(backend="numpy", random_state=0)
        >>> clf = clf.partial_fit([[0.0, 1.0], [1.0, 0.0]], [0, 1], classes=[0, 1, 2])
        >>> clf = clf.partial_fit([[2.0, 2.0]], [2])
        >>> int(clf.n_iter_[0]), clf.classes_.tolist()
        (2, [0, 1, 2])
        """
        if self.early_stopping:
            raise ValueError(
                "early_stopping=True is for fit, which holds out its validation rows; "
                "partial_fit cannot (set early_stopping=False)."
            )
        first = not hasattr(self, "model_")
        X, y = self._validate(X, y, reset=first)
        if first:
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit: every label "
                    "the later calls will see, e.g. classes=np.unique(y_all)."
                )
            known = _classes_of(classes)
            if known.shape[0] < 2:
                raise ValueError(f"classes must hold at least 2 labels, got {known!r}.")
            self.classes_ = known
            model = self._new_model(X, known.shape[0])
        else:
            if classes is not None and not _same(self.classes_, _classes_of(classes)):
                raise ValueError(
                    f"classes={classes!r} is not the same as on the first call to partial_fit "
                    f"({self.classes_!r})."
                )
            model = self.model_
            self._follow_sgd_params(model)
        codes = _codes(self.classes_, y)
        model.partial_train(X, codes, batch_size=self.batch_size, sample_weight=sample_weight)
        self._set_fitted(model)
        return self

    def _follow_sgd_params(self, model: SoftmaxXP) -> None:
        """Give a running model the SGD settings set since it was made (``set_params`` between
        ``partial_fit`` calls, as SGDClassifier follows them), checked as SoftmaxXP checks them."""
        hyper = check_hyperparameters(
            model.input_dim, model.num_classes, self.lr, self.reg, self.momentum,
            self.lr_decay, model.dtype_name, model.seed,
        )  # fmt: skip
        model.lr, model.reg = hyper["lr"], hyper["reg"]
        model.momentum, model.lr_decay = hyper["momentum"], hyper["lr_decay"]

    def _validate(self, X: Any, y: Any, reset: bool) -> tuple[Array, Array]:
        _check_one_label_per_sample(y, type(self).__name__)
        if is_lazy(X):  # X stays lazy; the labels come to the host
            return self._dask_features(X, reset), _host_labels(y)
        xp, _, _ = get_namespace_and_device(X)
        X, y = validate_data(self, X, y, reset=reset, dtype=[xp.float64, xp.float32])
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
        if dispatch := _dispatch():
            backend, _, device = _where(X)
        else:
            backend, device = self.backend, self.device
        if dtype is None or dispatch:
            dtype = _dtype_name(X)
        return SoftmaxXP(
            X.shape[1],
            num_classes,
            lr=self.lr,
            reg=self.reg,
            backend=backend,
            device=device,
            dtype=dtype,
            seed=_seed(self.random_state),
            momentum=self.momentum,
            lr_decay=self.lr_decay,
            init="zeros",  # as scikit-learn's linear models: L-BFGS's optimum is random_state's
        )

    def _set_fitted(self, model: SoftmaxXP) -> None:
        self.model_ = model
        xp = model.xp
        coef = xp.asarray(model.W.T, copy=True)
        intercept = xp.reshape(xp.asarray(model.b, copy=True), (-1,))
        if coef.shape[0] == 2:  # binary: one row, the log-odds of classes_[1], as scikit-learn
            coef, intercept = coef[1:, :] - coef[:1, :], intercept[1:] - intercept[:1]
        if not _dispatch():
            coef, intercept = to_numpy(coef), to_numpy(intercept)
        self.coef_, self.intercept_ = coef, intercept
        n_iter = np.asarray([model.epoch_], dtype=np.int32)
        if _dispatch():  # every fitted array follows X, as the array API checks require
            n_iter = xp.asarray(n_iter, device=model.device)
        self.n_iter_ = n_iter
        self.loss_curve_ = list(model.history_.loss)

    # -- prediction --------------------------------------------------------------------------
    def _input(self, X: Any, method: str) -> tuple[Array, Any]:
        """``X`` validated (not moved: SoftmaxXP moves it to the device chunk by chunk), and a
        function that puts a model array into the namespace (and device) the output must have."""
        check_is_fitted(self)
        if is_lazy(X):  # lazy outputs, computed block by block
            return self._dask_features(X, reset=False), lambda a: a
        if _dispatch() and check_same_namespace is not None:
            check_same_namespace(X, self, attribute="coef_", method=method)
        sk_xp, _, _ = get_namespace_and_device(X)
        X = validate_data(self, X, reset=False, dtype=[sk_xp.float64, sk_xp.float32])
        model = self.model_
        backend, xp, device = _where(X)

        def out(a: Array) -> Any:
            if not _dispatch():
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
        >>> clf = SoftmaxClassifier(lr=1.0, max_iter=50, backend="numpy", random_state=0)
        >>> clf = clf.fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        >>> (clf.decision_function([[0.0], [3.0]]) > 0).tolist()  # > 0: classes_[1]
        [False, True]
        """
        X, out = self._input(X, "decision_function")
        z = out(self.model_.decision_function(X))
        if z.shape[1] != 2:
            return z
        with _its_device(z):
            return z[:, 1] - z[:, 0]

    def predict_proba(self, X: Any) -> Array:
        """Class probabilities ``softmax(X W + b)``, columns in the order of ``classes_``.

        Examples
        --------
        >>> clf = SoftmaxClassifier(max_iter=5, backend="numpy", random_state=0)
        >>> proba = clf.fit([[0.0], [1.0], [2.0]], ["a", "b", "c"]).predict_proba([[1.0]])
        >>> proba.shape, bool(abs(proba.sum() - 1) < 1e-6)
        ((1, 3), True)
        """
        X, out = self._input(X, "predict_proba")
        return out(self.model_.predict_proba(X))

    def predict_log_proba(self, X: Any) -> Array:
        """``log_softmax(X W + b)``, computed without taking the log of probabilities.

        Examples
        --------
        >>> import numpy as np
        >>> clf = SoftmaxClassifier(max_iter=5, backend="numpy", random_state=0)
        >>> clf = clf.fit([[0.0], [1.0], [2.0]], [0, 1, 2])
        >>> bool(np.allclose(np.exp(clf.predict_log_proba([[1.0]])), clf.predict_proba([[1.0]])))
        True
        """
        X, out = self._input(X, "predict_log_proba")
        return out(self.model_.predict_log_proba(X))

    def predict(self, X: Any) -> Array:
        """The most probable class of each row, a label of ``classes_``.

        Examples
        --------
        >>> clf = SoftmaxClassifier(lr=1.0, max_iter=50, backend="numpy", random_state=0)
        >>> clf.fit([[0.0], [1.0], [2.0], [3.0]], [10, 10, 2, 2]).predict([[0.0], [3.0]])
        array([10,  2])
        """
        X, out = self._input(X, "predict")
        index = self.model_.predict(X)
        if is_lazy(index):
            classes = self.classes_
            return index.map_blocks(_label_of, classes, dtype=classes.dtype, meta=classes[:0])
        if _dispatch() and self.classes_.dtype.kind in "biuf":
            model = self.model_
            with _its_device(index):
                classes = model.xp.asarray(self.classes_, device=model.device)
                return out(model.xp.take(classes, index, axis=0))
        return self.classes_[to_numpy(index)]

    # -- tags --------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """scikit-learn's state, with ``device`` by name: a ``jax.Device`` does not pickle."""
        state = super().__getstate__()
        state["device"] = device_description(self.device)
        return state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        tags.input_tags.sparse = False
        tags.classifier_tags.multi_class = True
        return tags


def expected_failed_checks(estimator: SoftmaxClassifier) -> dict[str, str]:
    """The scikit-learn estimator checks this estimator is known to fail, with the reasons
    (``check_estimator(est, expected_failed_checks=expected_failed_checks(est))`` or
    ``parametrize_with_checks``): none with the defaults, nor with ``solver="lbfgs"``.

    SGD passes the sample-weight equivalence check because it normalises the weights to mean 1
    over the data set: a batch holding the whole (small) data set then steps along exactly the
    weighted mean's gradient, as a duplicated row would. The configurations below fail a check
    for a reason that is not a defect.

    Examples
    --------
    >>> expected_failed_checks(SoftmaxClassifier())
    {}
    >>> list(expected_failed_checks(SoftmaxClassifier(dtype="float32")))
    ['check_sample_weight_equivalence_on_dense_data']
    """
    failures: dict[str, str] = {}
    float32 = estimator.dtype == "float32"
    if float32:
        failures["check_sample_weight_equivalence_on_dense_data"] = (
            "dtype='float32': weighted and repeated fits agree to float32 rounding (about "
            "1e-7 relative), not to the check's rtol of 1e-7 on every probability."
        )
    elif estimator.solver == "sgd" and estimator.batch_size < 60:
        failures["check_sample_weight_equivalence_on_dense_data"] = (
            "mini-batch SGD with batches smaller than the data set (the check fits up to 60 "
            "rows): weights and duplicated rows agree in expectation only, since a duplicated "
            "row may fall in another batch."
        )
    if float32 and estimator.solver == "lbfgs":
        failures["check_classifiers_train"] = (
            "dtype='float32': predict_log_proba is log_softmax of the logits, more accurate "
            "than log(predict_proba); where a float32 probability rounds to 1.0 the two differ "
            "by about 1e-8, above the check's atol of 1e-9."
        )
    if estimator.warm_start and estimator.solver == "sgd":
        failures["check_supervised_y_2d"] = (
            "warm_start=True: the check's second fit continues SGD from the first one's "
            "weights, so its predictions differ (as SGDClassifier's and "
            "LogisticRegression's do with warm_start=True)."
        )
    return failures


def _where(X: Array) -> tuple[str, Any, Any]:
    """``(backend name, namespace, device)`` of an array (lists and the like: NumPy's)."""
    if not array_api_compat.is_array_api_obj(X):
        X = np.asarray(X)
    xp = array_api_compat.array_namespace(X)
    return backend_name(xp), xp, array_api_compat.device(X)


class _NoImprovement(Callback):
    """SGDClassifier's stopping rule: stop after ``n`` epochs in a row whose ``monitor`` (the
    validation accuracy, or the training loss) is not better than the best so far by ``tol``;
    ``met`` says whether it stopped the run."""

    def __init__(self, monitor: str, tol: float, n: int):
        self.monitor, self.tol, self.n = monitor, tol, n

    def on_train_begin(self, state: Any) -> None:
        self.best, self.count, self.met = None, 0, False

    def on_epoch_end(self, state: Any) -> None:
        value = state.history[self.monitor][-1]
        if self.monitor == "loss":
            value = -value  # the rule below is for a score, higher is better
        worse = self.best is not None and value < self.best + self.tol
        self.count = self.count + 1 if worse else 0
        if self.best is None or value > self.best:
            self.best = value
        if self.count >= self.n:
            self.met = True
            assert self.run is not None
            self.run.stop(f"no improvement of the {self.monitor} by tol={self.tol} in {self.n}")


def _take_rows(xp: Any, X: Array, rows: np.ndarray) -> Array:
    """Rows ``rows`` (host indices) of ``X``, on its device."""
    index = xp.asarray(rows, device=array_api_compat.device(X))
    return xp.take(X, index, axis=0)


def _held_weights(sample_weight: Any, rows: np.ndarray) -> Any:
    """The weights of rows ``rows`` (a scalar weight stays one for every row)."""
    if sample_weight is None:
        return None
    if array_api_compat.is_array_api_obj(sample_weight):
        sample_weight = to_numpy(sample_weight)
    weights = np.asarray(sample_weight)
    return weights if weights.ndim == 0 else weights[rows]


def _its_device(x: Array) -> Any:
    """A context in which ``x``'s device is current (CuPy's devices are such contexts)."""
    device = array_api_compat.device(x)
    return device if hasattr(device, "__enter__") else contextlib.nullcontext()


def _label_of(index: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The labels of class indices (one block of a lazy Dask ``predict``)."""
    return classes[index]


def _check_one_label_per_sample(y: Any, name: str) -> None:
    """Refuse a ``y`` of several columns (multilabel or multioutput) with the way to fit one."""
    shape = getattr(y, "shape", None)
    if shape is None and isinstance(y, list | tuple):
        shape = np.asarray(y, dtype=object).shape  # a list of rows; ragged ones stay 1-D
    if shape is not None and len(shape) == 2 and shape[1] > 1:
        raise ValueError(
            f"y should be a 1d array, got an array of shape {tuple(shape)} instead: {name} "
            "predicts one label per sample. For several labels per sample (multilabel or "
            f"multioutput y), fit one {name} per column with sklearn.multioutput."
            f"MultiOutputClassifier({name}()) or ClassifierChain({name}())."
        )


def _host_labels(y: Any) -> np.ndarray:
    """Labels as a 1-D host array (a Dask ``y`` is computed: labels are small beside ``X``)."""
    y = np.asarray(y.compute() if is_lazy(y) else to_numpy(y))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    check_classification_targets(y)
    return y


def _encode(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, codes)``: the sorted labels and each row's index in them (host NumPy)."""
    classes, codes = np.unique(to_numpy(y), return_inverse=True)
    return classes, codes.astype(np.int64, copy=False)


def _classes_of(classes: Any) -> np.ndarray:
    """``partial_fit``'s ``classes``, sorted and unique on the host, checked as scikit-learn's
    incremental classifiers check them (a sequence of class labels, not a mix of types)."""
    if array_api_compat.is_array_api_obj(classes):
        classes = to_numpy(classes)
    return np.asarray(unique_labels(classes))


def _codes(classes: np.ndarray, y: Any) -> np.ndarray:
    """Each label's index in ``classes``; ValueError naming labels not in ``classes``."""
    y = to_numpy(y)
    codes = np.searchsorted(classes, y)
    codes = np.minimum(codes, classes.shape[0] - 1)
    unknown = classes[codes] != y
    if np.any(unknown):
        raise ValueError(
            f"y contains labels not in classes: {np.unique(y[unknown])!r}; pass every label "
            "to the first partial_fit call's classes."
        )
    return codes.astype(np.int64, copy=False)


def _same(a: Any, b: np.ndarray) -> bool:
    return a is not None and a.shape == b.shape and bool(np.all(a == b))


def _dtype_name(X: Array) -> str:
    name = str(getattr(X.dtype, "name", X.dtype)).rsplit(".", 1)[-1]
    return name if name in ("float32", "float64") else "float64"


def _seed(random_state: Any) -> int | None:
    """SoftmaxXP's seed (a non-negative int, or None) from a scikit-learn random_state."""
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
