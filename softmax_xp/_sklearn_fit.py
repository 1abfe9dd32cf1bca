"""What SoftmaxClassifier's fit needs besides SoftmaxXP: labels and their codes, class weights,
SGDClassifier's stopping rule and its held-out validation rows, and where an array lives."""

from __future__ import annotations

import contextlib
import numbers
import warnings
from typing import Any

import array_api_compat
import numpy as np
from sklearn import get_config
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_random_state, check_scalar

from ._backend import backend_name, to_numpy
from ._data import is_lazy
from ._sparse import is_sparse
from ._weights import check_weight_total, checked_host_weights, exact_sum
from .model import Callback

__all__ = [
    "NoImprovement",
    "SklearnCallbacks",
    "check_one_label_per_sample",
    "class_weighted",
    "classes_of",
    "codes_of",
    "dense_host",
    "dispatch",
    "dtype_name",
    "encode",
    "hold_out",
    "host_labels",
    "its_device",
    "label_of",
    "same",
    "seed",
    "stopping_rule",
    "warn_unconverged",
    "where",
    "with_weights",
]

Array = Any


def dispatch() -> bool:
    """Whether scikit-learn's array API dispatch is on (then everything follows ``X``)."""
    return bool(get_config().get("array_api_dispatch", False))


def stopping_rule(
    early_stopping: bool, solver: str, tol: float | None, n_iter_no_change: Any
) -> NoImprovement | None:
    """SGDClassifier's stopping rule for a fit: on the validation accuracy with
    ``early_stopping``, else on SGD's training loss; None when there is none."""
    n = check_scalar(n_iter_no_change, "n_iter_no_change", numbers.Integral, min_val=1)
    if early_stopping:
        return NoImprovement("val_accuracy", -np.inf if tol is None else tol, int(n))
    if solver == "sgd" and tol is not None:
        return NoImprovement("loss", tol, int(n))
    return None


def warn_unconverged(estimator: Any, model: Any, stopping: NoImprovement | None) -> None:
    """ConvergenceWarning, as SGDClassifier and LogisticRegression give it, when the fit of
    ``estimator`` ended at ``max_iter`` before its stopping rule (SGD) or scipy (L-BFGS) said
    it had converged."""
    if estimator.solver == "sgd":
        if stopping is None or stopping.met or estimator.max_iter == 0:
            return
        what = "validation accuracy" if estimator.early_stopping else "training loss"
        message = (
            f"SGD did not converge: the {what} still improved by more than "
            f"tol={estimator.tol} within the last {estimator.n_iter_no_change} of "
            f"max_iter={estimator.max_iter} epochs. Increase max_iter, or tol."
        )
    else:
        if model.converged_ is not False or (stopping is not None and stopping.met):
            return
        scipy_says = f"; scipy: {model.solver_message_}" if model.solver_message_ else ""
        message = (
            f"L-BFGS did not converge: it stopped after {model.epoch_} iterations "
            f"(max_iter={estimator.max_iter}{scipy_says}). Increase max_iter, or tol, or scale "
            "the features (e.g. StandardScaler)."
        )
    warnings.warn(message, ConvergenceWarning, stacklevel=3)


def hold_out(
    X: Array,
    labels: np.ndarray,
    sample_weight: Any,
    validation_fraction: Any,
    random_state: Any,
    dispatch: bool,
) -> tuple[Array, np.ndarray, Any, tuple[Array, np.ndarray], np.ndarray | None]:
    """``(X, labels, sample_weight)`` of the training rows, ``(X, labels)`` of the held-out
    rows and their weights (None without ``sample_weight`` or with one number for all rows).

    The split is by weight, so that a row of weight ``k`` and ``k`` copies of it are split
    alike: identical rows (features and label) form a group that is never cut; the groups
    are ordered by a key drawn from a hash of their content and ``random_state`` (so the
    order does not depend on how many copies a group has), and each class holds out its
    groups in that order until they reach ``validation_fraction`` of the class's weight
    (stratified), but at least one group with a positive weight, leaving at least one in
    training. A class with fewer than two such groups (one distinct row, or rows that all
    weigh 0) holds out nothing: it cannot be on both sides. Rows of weight 0 train (they
    weigh nothing on either side)."""
    if is_lazy(X):
        raise ValueError(
            "early_stopping=True holds out rows of X in memory; with a Dask X, pass your own "
            "validation set to SoftmaxXP.train(X, y, X_val, y_val, callback="
            "softmax_xp.EarlyStopping(...)) instead."
        )
    check_scalar(
        validation_fraction, "validation_fraction", numbers.Real,
        min_val=0, max_val=1, include_boundaries="neither",
    )  # fmt: skip
    n = labels.shape[0]
    weights = None  # one weight per row; None: each row weighs 1
    if sample_weight is not None:
        host = checked_host_weights(_host(sample_weight), n)
        check_weight_total(exact_sum(host), "float64")
        if np.ndim(_host(sample_weight)) > 0:
            weights = host
    keys = _group_keys(X, labels, seed(random_state))
    held = _held_rows(keys, labels, weights, float(validation_fraction))
    train = ~held

    def take(mask: np.ndarray) -> Array:
        rows = np.flatnonzero(mask)
        if not dispatch or is_sparse(X):  # scipy.sparse is NumPy's, and has no namespace
            return X[rows]
        xp = array_api_compat.array_namespace(X)
        return xp.take(X, xp.asarray(rows, device=array_api_compat.device(X)), axis=0)

    train_weights = sample_weight if weights is None else weights[train]
    val_weights = None if weights is None else weights[held]
    held_out = (take(held), labels[held])
    return take(train), labels[train], train_weights, held_out, val_weights


def _held_rows(
    keys: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, fraction: float
) -> np.ndarray:
    """A mask of the rows to hold out (see :func:`hold_out`): groups of equal ``keys``, in the
    order of their keys, per class until their weight reaches ``fraction`` of the class's."""
    groups, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    rows_weights = np.ones(labels.shape[0]) if weights is None else weights
    group_weight = np.bincount(inverse, weights=rows_weights, minlength=groups.shape[0])
    group_label = labels[first]
    held_groups = np.zeros(groups.shape[0], dtype=bool)
    for label in np.unique(labels):
        # The class's groups of positive weight, in the order of their keys (np.unique sorts).
        mine = np.flatnonzero((group_label == label) & (group_weight > 0))
        if mine.shape[0] < 2:
            continue  # no weight to validate, or one row (and its copies): it trains
        cumulative = np.cumsum(group_weight[mine])
        count = int(np.searchsorted(cumulative, fraction * cumulative[-1], side="left")) + 1
        held_groups[mine[: min(max(count, 1), mine.shape[0] - 1)]] = True
    if not np.any(held_groups):
        raise ValueError(
            "early_stopping=True found no rows to hold out: it holds out rows of the classes "
            "that have at least 2 distinct rows (identical rows stay together) with a positive "
            "weight, and none has. Add rows, or set early_stopping=False."
        )
    held: np.ndarray = held_groups[inverse]
    return held


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_HASH_ROWS = 4096  # rows hashed at a time (bounds the temporary copy of their bits)


def _mix(h: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on ``uint64`` values (wrapping arithmetic)."""
    h = h + _GOLDEN
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: np.ndarray = h ^ (h >> np.uint64(31))
    return out


def _group_keys(X: Array, labels: np.ndarray, seed: int | None) -> np.ndarray:
    """A 64-bit key per row, equal for identical rows (the same features, bit for bit up to the
    sign of zero, and the same label), drawn at random with ``seed`` otherwise: a random linear
    hash of the features' bits modulo 2**64, then mixed with the label. Dense and sparse rows
    of the same values get the same key (zeros add nothing)."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    top = np.iinfo(np.uint64).max
    multipliers = rng.integers(0, top, size=d, dtype=np.uint64, endpoint=True) | np.uint64(1)
    salt = rng.integers(0, top, dtype=np.uint64, endpoint=True)
    with np.errstate(over="ignore"):
        if is_sparse(X):
            csr = X.tocsr(copy=True)
            csr.sum_duplicates()
            terms = multipliers[csr.indices] * _bits(csr.data).astype(np.uint64)
            sums = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(terms, dtype=np.uint64)])
            h = sums[csr.indptr[1:]] - sums[csr.indptr[:-1]]
        else:
            dense = np.asarray(to_numpy(X) if array_api_compat.is_array_api_obj(X) else X)
            h = np.empty(dense.shape[0], dtype=np.uint64)
            for lo in range(0, dense.shape[0], _HASH_ROWS):
                h[lo : lo + _HASH_ROWS] = _bits(dense[lo : lo + _HASH_ROWS]) @ multipliers
        return _mix(h ^ _mix(labels.astype(np.uint64) + salt))


def _bits(values: np.ndarray) -> np.ndarray:
    """The bits of real ``values`` as unsigned integers of their width (floats as they are
    stored, -0.0 as 0.0); integer products with them wrap modulo 2**64 once promoted to
    ``uint64``."""
    values = np.asarray(values)
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    values = np.ascontiguousarray(values + values.dtype.type(0))  # -0.0 + 0.0 is 0.0
    bits: np.ndarray = values.view(f"uint{8 * values.dtype.itemsize}")
    return bits


def class_weighted(
    sample_weight: Any, labels: np.ndarray, classes: np.ndarray, class_weight: Any
) -> Any:
    """``sample_weight`` times each row's class weight (scikit-learn's ``compute_class_weight``
    over ``classes``, from all of ``labels``; ``"balanced"`` counts the classes with
    ``sample_weight``, as LogisticRegression does), as LogisticRegression and SGDClassifier
    combine them; ``sample_weight`` itself when ``class_weight`` is None."""
    if class_weight is None:
        return sample_weight
    if isinstance(class_weight, dict):
        unknown = [key for key in class_weight if not np.any(classes == key)]
        if unknown:
            raise ValueError(
                f"class_weight has labels that are not classes of y: {unknown!r}; its keys are "
                f"labels of classes_ ({classes.tolist()!r})."
            )
    if sample_weight is None:
        return compute_class_weight(class_weight, classes=classes, y=classes[labels])[labels]
    weights = np.asarray(_host(sample_weight), dtype=np.float64)
    if class_weight == "balanced" and weights.shape == labels.shape:
        per_class = _balanced(labels, classes.shape[0], weights)
    else:  # a bad sample_weight is reported with the others' errors, by SoftmaxXP
        per_class = compute_class_weight(class_weight, classes=classes, y=classes[labels])
    return per_class[labels] * weights


def _balanced(labels: np.ndarray, n_classes: int, weights: np.ndarray) -> np.ndarray:
    """``"balanced"`` class weights counted with the sample weights, as LogisticRegression
    counts them (scikit-learn >= 1.7): ``sum(w) / (n_classes * sum of w over the class)``, so
    a weight of k and k copies of a row give the same weights. A class whose rows all weigh 0
    gets 1 (its rows stay at 0)."""
    counts = np.bincount(labels, weights=weights, minlength=n_classes)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = weights.sum() / (n_classes * counts)
    return np.where(counts > 0, per_class, 1.0)


def _host(values: Any) -> Any:
    return to_numpy(values) if array_api_compat.is_array_api_obj(values) else np.asarray(values)


def where(X: Array) -> tuple[str, Any, Any]:
    """``(backend name, namespace, device)`` of an array (lists and the like, and
    scipy.sparse matrices: NumPy's)."""
    if is_sparse(X):
        return "numpy", array_api_compat.array_namespace(np.empty(0)), "cpu"
    if not array_api_compat.is_array_api_obj(X):
        X = np.asarray(X)
    xp = array_api_compat.array_namespace(X)
    return backend_name(xp), xp, array_api_compat.device(X)


class NoImprovement(Callback):
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


def its_device(x: Array) -> Any:
    """A context in which ``x``'s device is current (CuPy's devices are such contexts)."""
    device = array_api_compat.device(x)
    return device if hasattr(device, "__enter__") else contextlib.nullcontext()


def label_of(index: np.ndarray, classes: np.ndarray) -> Array:
    """The labels of class indices (one block of a lazy Dask ``predict``)."""
    return classes[index]


def check_one_label_per_sample(y: Any, name: str) -> None:
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


def host_labels(y: Any) -> Array:
    """Labels as a 1-D host array (a Dask ``y`` is computed: labels are small beside ``X``)."""
    y = np.asarray(y.compute() if is_lazy(y) else to_numpy(y))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    check_classification_targets(y)
    return y


def encode(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, codes)``: the sorted labels and each row's index in them (host NumPy)."""
    classes, codes = np.unique(to_numpy(y), return_inverse=True)
    return classes, codes.astype(np.int64, copy=False)


def classes_of(classes: Any) -> np.ndarray:
    """``partial_fit``'s ``classes``, sorted and unique on the host, checked as scikit-learn's
    incremental classifiers check them (a sequence of class labels, not a mix of types)."""
    if array_api_compat.is_array_api_obj(classes):
        classes = to_numpy(classes)
    return np.asarray(unique_labels(classes))


def codes_of(classes: np.ndarray, y: Any) -> Array:
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


def same(a: Any, b: np.ndarray) -> bool:
    return a is not None and a.shape == b.shape and bool(np.all(a == b))


def dtype_name(X: Array) -> str:
    name = str(getattr(X.dtype, "name", X.dtype)).rsplit(".", 1)[-1]
    return name if name in ("float32", "float64") else "float64"


def seed(random_state: Any) -> int | None:
    """SoftmaxXP's seed (a non-negative int, or None) from a scikit-learn random_state."""
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def dense_host(values: Any) -> np.ndarray:
    """A fitted array (scipy.sparse after ``sparsify``, or any backend's) as a host ndarray."""
    if hasattr(values, "toarray") and not array_api_compat.is_array_api_obj(values):
        return np.asarray(values.toarray())
    return np.asarray(to_numpy(values))


def with_weights(model: Any, coef: np.ndarray, intercept: np.ndarray) -> Any:
    """A copy of ``model`` whose weights are LogisticRegression-style ``coef_`` and
    ``intercept_`` (for two classes one row, the log-odds of the second class: the first
    class's logit is then 0, which gives the same probabilities)."""
    copy = object.__new__(type(model))
    copy.__dict__.update(model.__dict__)
    if coef.shape[0] == 1 and model.num_classes == 2:
        coef, intercept = (
            np.concatenate([0 * coef, coef]),
            np.concatenate([0 * intercept, intercept]),
        )
    if coef.shape != (model.num_classes, model.input_dim) or intercept.shape != (
        model.num_classes,
    ):
        raise ValueError(
            f"coef_ has shape {coef.shape} and intercept_ {intercept.shape}; a model of "
            f"{model.input_dim} features and {model.num_classes} classes needs "
            f"({model.num_classes if model.num_classes > 2 else 1}, {model.input_dim}) and "
            f"({model.num_classes if model.num_classes > 2 else 1},)."
        )
    copy.fit_intercept = True  # the user's intercept_ takes effect, as in scikit-learn
    copy.W, copy.b = coef.T, intercept[None, :]
    return copy


class SklearnCallbacks(Callback):
    """scikit-learn's callback protocol (``sklearn.callback``, 1.9+) on our run: every epoch
    (or L-BFGS iteration) is a sub-task of the fit's callback context, begun with the weights it
    starts from and ended with those it reaches, as LogisticRegression's L-BFGS bridge does; a
    callback asking to stop ends the run after that epoch."""

    def __init__(
        self, context: Any, estimator: Any, task: dict[str, Any], model: Any, classes: Any
    ):
        self.context, self.estimator, self.model, self.classes = context, estimator, model, classes
        self.task = task  # estimator, X, y, metadata: what every hook gets
        self.current: Any = None

    def _attributes(self, state: Any) -> dict[str, Any]:
        """What makes a copy of the estimator predict with ``state``'s weights."""
        coef = np.asarray(to_numpy(state.W)).T
        intercept = np.asarray(to_numpy(state.b))[0]
        if coef.shape[0] == 2:
            coef, intercept = coef[1:] - coef[:1], intercept[1:] - intercept[:1]
        model = with_weights(self.model, np.asarray(to_numpy(state.W)).T, to_numpy(state.b)[0])
        return {
            "model_": model,
            "coef_": coef,
            "intercept_": intercept,
            "_fitted": (coef, intercept),
            "classes_": self.classes,
        }

    def _begin(self, state: Any) -> None:
        self.current = self.context.subcontext(task_name="epoch")
        self.current.call_on_fit_task_begin(
            **self.task, reconstruction_attributes=self._attributes(state)
        )

    def on_train_begin(self, state: Any) -> None:
        self._begin(state)

    def on_epoch_end(self, state: Any) -> None:
        stop = self.current.call_on_fit_task_end(
            **self.task, reconstruction_attributes=self._attributes(state)
        )
        if stop:
            assert self.run is not None
            self.run.stop("stopped by a scikit-learn callback")
        self._begin(state)

    def close(self) -> None:
        """End the sub-task begun after the last epoch, which never ran (as scikit-learn does)."""
        if self.current is not None:
            self.current.call_on_fit_task_end(estimator=self.estimator)
            self.current = None
