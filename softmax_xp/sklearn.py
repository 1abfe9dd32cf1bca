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

Sparse ``X`` (scipy.sparse, any format: converted to CSR once, never densified) is accepted by
every method. Without dispatch the model runs on ``backend`` (NumPy: scipy.sparse itself; torch
or CuPy: the matrix is moved once to their sparse CSR; array-api-strict has no sparse arrays and
refuses it). With dispatch on, a scipy.sparse ``X`` is NumPy's, as in scikit-learn: the model
runs on NumPy and the fitted arrays and outputs are NumPy arrays.

scikit-learn is the optional extra ``[sklearn]``: ``pip install "softmax-xp[sklearn]"``.
"""

from __future__ import annotations

from typing import Any

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.metaestimators import available_if
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "softmax_xp.SoftmaxClassifier needs scikit-learn, which is not installed. Install it "
        'with pip install "softmax-xp[sklearn]" (or pip install scikit-learn).'
    ) from exc

import numpy as np

from ._backend import device_description
from ._sklearn_fit import (
    SklearnCallbacks,
    class_weighted,
    classes_of,
    codes_of,
    dispatch,
    encode,
    hold_out,
    same,
    stopping_rule,
    warn_unconverged,
)
from ._sklearn_model import ModelBridge
from ._sklearn_predict import ClassifierOutputs
from .model import SoftmaxXP

try:  # scikit-learn's experimental callbacks (1.9): ProgressBar, ScoringMonitor, ...
    from sklearn.callback import CallbackSupportMixin as _CallbackSupport
    from sklearn.callback import with_callbacks as _with_callbacks

    _SKLEARN_CALLBACKS = True
except ImportError:  # pragma: no cover - scikit-learn < 1.9: nothing changes
    _CallbackSupport = object
    _SKLEARN_CALLBACKS = False

    def _with_callbacks(method: Any) -> Any:
        return method


__all__ = ["SoftmaxClassifier", "expected_failed_checks"]

Array = Any


class SoftmaxClassifier(_CallbackSupport, ModelBridge, ClassifierOutputs, ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # fmt: skip  # scikit-learn ships no types
    """Multinomial logistic regression (softmax with L2) trained by SoftmaxXP, as a scikit-learn
    classifier: it works in Pipeline, GridSearchCV, cross_val_score, clone and pickle.

    The objective is the mean cross-entropy plus ``0.5 * reg * ||W||^2`` (bias not penalised):
    the same optimum as ``LogisticRegression(C=1 / (reg * n_samples))`` for three or more
    classes. For two classes SoftmaxXP keeps one weight column per class, both penalised, which
    equals ``LogisticRegression(C=2 / (reg * n_samples))``. With sample or class weights the
    mean is weighted, and ``n_samples`` becomes the sum of the weights.

    Parameters
    ----------
    lr, momentum, lr_decay, batch_size
        SGD's step size, heavy-ball momentum, per-epoch step-size factor and batch size
        (see :class:`~softmax_xp.SoftmaxXP`); not used by ``solver="lbfgs"``.
    reg
        Penalty strength ``>= 0``.
    penalty, l1_ratio
        ``"l2"`` (default), ``"l1"`` or ``"elasticnet"`` with ``l1_ratio`` in [0, 1] (None: 0.15,
        as SGDClassifier; None with the other two): the penalty ``reg * (l1_ratio * ||W||_1 + 0.5 * (1 - l1_ratio) *
        ||W||^2)`` (see :class:`~softmax_xp.SoftmaxXP`); both solvers give exact zeros. For
        three or more classes ``reg`` is ``1 / (C * n_samples)`` for every penalty, with
        LogisticRegression's ``l1_ratio`` (0 for L2, 1 for L1). For two classes the split over
        two columns changes the mapping: ``C = 1 / (reg * n_samples)`` for L1 (the L1 norm of
        ``W[:, 1] - W[:, 0]`` is that of the two columns at the optimum) but ``2 / (reg *
        n_samples)`` for L2, and LogisticRegression's elastic net ``(C, rho)`` is ours with
        ``reg * l1_ratio = rho / (C n)`` and ``reg * (1 - l1_ratio) = 2 (1 - rho) / (C n)``.
    fit_intercept
        Whether to fit the bias (default True); False keeps ``intercept_`` at zero, as
        LogisticRegression's ``fit_intercept=False``. ``partial_fit`` follows it from call to
        call (turning it off zeroes the bias).
    max_iter
        SGD epochs, or the maximum number of L-BFGS iterations.
    solver
        ``"lbfgs"`` (default, as LogisticRegression: full-batch L-BFGS to the exact optimum;
        needs scipy) or ``"sgd"`` (the chapter's mini-batch SGD, as SGDClassifier; what
        ``partial_fit`` always uses). In 0.1.0 the default was ``"sgd"``.
    tol, n_iter_no_change
        L-BFGS stops when its largest absolute gradient entry is ``<= tol``. SGD stops, as
        SGDClassifier does, after ``n_iter_no_change`` epochs in a row whose training loss is
        not below the best so far minus ``tol`` (``tol=None``: SGD runs all ``max_iter``
        epochs); reaching ``max_iter`` first warns ``ConvergenceWarning``.
    early_stopping, validation_fraction
        Hold out a stratified ``validation_fraction`` of the training rows and stop (either
        solver) after ``n_iter_no_change`` epochs in a row whose validation accuracy is not
        above the best so far plus ``tol``, as SGDClassifier's ``early_stopping`` does; the
        weights are those of the last epoch. Not with ``partial_fit`` or a Dask ``X``. The
        split and the accuracy are weighted, so a row of weight k is k copies of it: identical
        rows stay on one side; each class holds out distinct rows, in an order drawn from
        ``random_state`` and their content, until they reach ``validation_fraction`` of its
        weight (at least one, leaving one to train; a class of one distinct row trains only);
        the held-out accuracy is ``sum w_i [right_i] / sum w_i`` (``sample_weight`` times
        ``class_weight``).
    class_weight
        ``{label: weight}`` (classes not in it weigh 1) or ``"balanced"``
        (``n_samples / (n_classes * np.bincount(y))``, counted in ``fit``'s ``y``): exactly the
        same fit as ``sample_weight`` multiplied by each row's class weight, for both solvers.
        ``partial_fit`` takes a dict only.
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
        The bias; for two classes ``(b_1 - b_0,)``; zeros with ``fit_intercept=False``.
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
        solver: str = "lbfgs",
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
        class_weight: dict[Any, float] | str | None = None,
        penalty: str = "l2",
        l1_ratio: float | None = None,
        fit_intercept: bool = True,
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
        self.class_weight = class_weight
        self.penalty = penalty
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept

    # -- fitting -----------------------------------------------------------------------------
    @_with_callbacks  # type: ignore[untyped-decorator]  # scikit-learn ships no types
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SoftmaxClassifier:
        """Fit the model on ``(X, y)``; ``sample_weight`` weights each row's loss (a weight of 2
        counts a row twice: exactly for L-BFGS, in expectation for mini-batch SGD, where a
        duplicated row could fall in another batch). Returns ``self``.

        Examples
        --------
        >>> X, y = [[0.0], [1.0], [2.0], [3.0]], ["no", "no", "yes", "yes"]
        >>> clf = SoftmaxClassifier(backend="numpy", random_state=0)
        >>> clf.fit(X, y).classes_.tolist(), clf.predict([[0.0], [3.0]]).tolist()
        (['no', 'yes'], ['no', 'yes'])
        """
        X, y = self._validate(X, y, reset=True)
        classes, codes = encode(y)
        if classes.shape[0] < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, but the "
                f"data contains only one class: {classes[0].item()!r}."
            )
        stopping = stopping_rule(self.early_stopping, self.solver, self.tol, self.n_iter_no_change)
        metadata = None if sample_weight is None else {"sample_weight": sample_weight}
        task = dict(estimator=self, X=X, y=y, metadata=metadata)  # for scikit-learn's callbacks
        sample_weight = class_weighted(sample_weight, codes, classes, self.class_weight)
        held_out: tuple[Any, Any] = (None, None)
        held_weights = None
        if self.early_stopping:
            X, codes, sample_weight, held_out, held_weights = hold_out(
                X, codes, sample_weight, self.validation_fraction, self.random_state, dispatch()
            )
        model = self._new_model(X, classes.shape[0])
        old = getattr(self, "model_", None)
        if (
            self.warm_start
            and old is not None
            and old.input_dim == X.shape[1]
            and same(getattr(self, "classes_", None), classes)
        ):
            model.W = old.W
            if model.fit_intercept:
                model.b = old.b
        bridge = self._sklearn_callbacks(task, model, classes)
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
            val_sample_weight=held_weights,
            callback=[callback for callback in (stopping, bridge) if callback is not None],
        )
        if bridge is not None:
            bridge.close()
            bridge.context.call_on_fit_task_end(**task, reconstruction_attributes={})
        warn_unconverged(self, model, stopping)
        self.classes_ = classes
        self._set_fitted(model)
        return self

    def _sklearn_callbacks(
        self, task: dict[str, Any], model: SoftmaxXP, classes: np.ndarray
    ) -> SklearnCallbacks | None:
        """The fit's scikit-learn callback context, begun, with its bridge to our run (None
        without scikit-learn's ``sklearn.callback``, before 1.9)."""
        if not _SKLEARN_CALLBACKS:
            return None
        context = self._init_callback_context(max_subtasks=self.max_iter + 1)
        context.call_on_fit_task_begin(**task)
        return SklearnCallbacks(context, self, task, model, classes)

    def _partial_fit_available(self) -> bool:
        """Whether ``partial_fit`` exists for these parameters: not with ``early_stopping``
        (fit holds out its validation rows) nor ``class_weight="balanced"`` (it counts the
        classes of the whole training set), so that ``hasattr(clf, "partial_fit")`` tells
        scikit-learn's tools the truth, as MLPClassifier does for its L-BFGS solver."""
        if self.early_stopping:
            raise AttributeError(
                "early_stopping=True is for fit, which holds out its validation rows; "
                "partial_fit cannot (set early_stopping=False)."
            )
        if isinstance(self.class_weight, str):
            raise AttributeError(
                "class_weight='balanced' counts the classes of the whole training set, which "
                "partial_fit does not see: compute the weights once, e.g. with sklearn.utils."
                "class_weight.compute_class_weight('balanced', classes=..., y=y_all), and pass "
                "class_weight=dict(zip(classes, weights))."
            )
        return True

    @available_if(_partial_fit_available)  # type: ignore[untyped-decorator]  # no types in sklearn
    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> SoftmaxClassifier:
        """One SGD pass over ``(X, y)``, continuing the current run: the momentum, the step-size
        schedule (``lr * lr_decay ** epoch``) and ``loss_curve_`` carry on from call to call.

        ``classes`` (every label the calls will see) is required on the first call, as in
        scikit-learn's other incremental classifiers. Whatever ``solver`` is, this is SGD. With
        ``early_stopping=True`` or ``class_weight="balanced"`` there is no ``partial_fit``
        (``hasattr`` is False; calling it raises AttributeError saying why).
        ``lr``, ``reg``, ``momentum``, ``lr_decay``, ``penalty``, ``l1_ratio`` and
        ``fit_intercept`` are read on every call, so
        ``set_params`` between calls takes effect; the other parameters are fixed by the first.

        Examples
        --------
        >>> clf = SoftmaxClassifier(backend="numpy", random_state=0)
        >>> clf = clf.partial_fit([[0.0, 1.0], [1.0, 0.0]], [0, 1], classes=[0, 1, 2])
        >>> clf = clf.partial_fit([[2.0, 2.0]], [2])
        >>> int(clf.n_iter_[0]), clf.classes_.tolist()
        (2, [0, 1, 2])
        """
        first = not hasattr(self, "model_")
        X, y = self._validate(X, y, reset=first)
        if first:
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit: every label "
                    "the later calls will see, e.g. classes=np.unique(y_all)."
                )
            known = classes_of(classes)
            if known.shape[0] < 2:
                raise ValueError(f"classes must hold at least 2 labels, got {known!r}.")
            self.classes_ = known
            model = self._new_model(X, known.shape[0])
        else:
            if classes is not None and not same(self.classes_, classes_of(classes)):
                raise ValueError(
                    f"classes={classes!r} is not the same as on the first call to partial_fit "
                    f"({self.classes_!r})."
                )
            model = self.model_
            self._follow_sgd_params(model)
        labels = codes_of(self.classes_, y)
        weights = class_weighted(sample_weight, labels, self.classes_, self.class_weight)
        model.partial_train(X, labels, batch_size=self.batch_size, sample_weight=weights)
        self._set_fitted(model)
        return self

    # -- tags --------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """scikit-learn's state, with ``device`` by name: a ``jax.Device`` does not pickle."""
        state: dict[str, Any] = super().__getstate__()
        state["device"] = device_description(self.device)
        return state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_class = True
        return tags


def expected_failed_checks(estimator: SoftmaxClassifier) -> dict[str, str]:
    """The scikit-learn estimator checks this estimator is known to fail, with the reasons
    (``check_estimator(est, expected_failed_checks=expected_failed_checks(est))`` or
    ``parametrize_with_checks``): none with the defaults (``solver="lbfgs"``), with
    ``early_stopping=True``, ``class_weight="balanced"`` or any ``penalty``; the
    configurations below fail a check for a reason that is not a defect.

    SGD passes the sample-weight equivalence check because it normalises the weights to mean 1
    over the data set: a batch holding the whole (small) data set then steps along exactly the
    weighted mean's gradient, as a duplicated row would.

    Examples
    --------
    >>> expected_failed_checks(SoftmaxClassifier())
    {}
    >>> expected_failed_checks(SoftmaxClassifier(class_weight="balanced", penalty="l1"))
    {}
    >>> list(expected_failed_checks(SoftmaxClassifier(solver="sgd")))
    ['check_class_weight_classifiers']
    >>> expected_failed_checks(SoftmaxClassifier(early_stopping=True, class_weight="balanced"))
    {}
    >>> list(expected_failed_checks(SoftmaxClassifier(solver="sgd", early_stopping=True)))
    ['check_class_weight_classifiers']
    >>> list(expected_failed_checks(SoftmaxClassifier(dtype="float32")))
    ['check_sample_weight_equivalence_on_dense_data', 'check_classifiers_train']
    >>> list(expected_failed_checks(SoftmaxClassifier(fit_intercept=False)))
    ['check_class_weight_classifiers']
    """
    failures: dict[str, str] = {}
    float32 = estimator.dtype == "float32"
    sgd = estimator.solver == "sgd"
    if float32:
        failures["check_sample_weight_equivalence_on_dense_data"] = (
            "dtype='float32': weighted and repeated fits agree to float32 rounding (about "
            "1e-7 relative), not to the check's rtol of 1e-7 on every probability."
        )
    elif sgd and estimator.batch_size < 60:
        failures["check_sample_weight_equivalence_on_dense_data"] = (
            "mini-batch SGD with batches smaller than the data set (the check fits up to 60 "
            "rows): weights and duplicated rows agree in expectation only, since a duplicated "
            "row may fall in another batch."
        )
    if float32 and not sgd:
        failures["check_classifiers_train"] = (
            "dtype='float32': predict_log_proba is log_softmax of the logits, more accurate "
            "than log(predict_proba); where a float32 probability rounds to 1.0 the two differ "
            "by about 1e-8, above the check's atol of 1e-9."
        )
    if sgd and (estimator.early_stopping or estimator.tol is not None):
        failures["check_class_weight_classifiers"] = (
            "solver='sgd' on the check's unscaled features (standard deviation 20): SGD's "
            "constant step lr=0.1 makes the loss oscillate for its first ~50 epochs, and the "
            "stopping rule (SGDClassifier's tol and n_iter_no_change, on the training loss or "
            "with early_stopping on the validation accuracy) ends the fit inside that "
            "transient; with tol=None, scaled features or L-BFGS (the default) the check passes."
        )
    if not estimator.fit_intercept:
        failures["check_class_weight_classifiers"] = (
            "fit_intercept=False: the check wants class 0 predicted on 87 % of its test rows, "
            "which needs a bias; without one the decision boundary passes through the origin, "
            "in the middle of the check's blobs (LogisticRegression and SGDClassifier with "
            "fit_intercept=False fail it too)."
        )
    if estimator.warm_start and sgd:
        failures["check_supervised_y_2d"] = (
            "warm_start=True: the check's second fit continues SGD from the first one's "
            "weights, so its predictions differ (as SGDClassifier's and "
            "LogisticRegression's do with warm_start=True)."
        )
    return failures
