"""Classification metrics for label arrays of any array-API backend.

The namespace and device are inferred from the inputs, so the counting runs where the labels
live (NumPy, CuPy, PyTorch, array-api-strict). Only the final numbers cross to the host.

With the confusion matrix ``C`` (rows = true class, columns = predicted class)::

    tp_k = C[k, k]    support_k = sum_j C[k, j]    predicted_k = sum_i C[i, k]
    precision_k = tp_k / predicted_k
    recall_k    = tp_k / support_k
    f1_k        = 2 p r / (p + r) = 2 tp_k / (support_k + predicted_k)

A ratio whose denominator is 0 is defined as 0.0 (scikit-learn's ``zero_division=0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, overload

import array_api_compat
import numpy as np  # only to turn lists / host data into arrays at the boundary

from softmax_xp._backend import index_dtype, to_numpy
from softmax_xp.functional import one_hot

__all__ = [
    "Averages",
    "ClassificationScores",
    "accuracy",
    "classification_report",
    "confusion_matrix",
    "precision_recall_f1",
]

Array = Any

REPORT_OUTPUTS = ("text", "markdown", "dict")
_HEADERS = ("precision", "recall", "f1-score", "support")
_SUMMARY_ROWS = ("accuracy", "macro avg", "weighted avg")
# Rows per confusion-matrix chunk: bounds memory (chunk x K one-hot) and keeps every partial
# count below 2**24, where float32 still counts exactly.
_CHUNK_ELEMENTS = 2**22
_MAX_CHUNK_ROWS = 2**24


class Averages(NamedTuple):
    """Precision, recall and F1 averaged over classes (0-d arrays).

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp.metrics import precision_recall_f1
    >>> macro = precision_recall_f1(np.array([0, 1, 1]), np.array([0, 1, 0]), 2).macro
    >>> [round(float(value), 4) for value in macro]  # precision, recall, f1
    [0.75, 0.75, 0.6667]
    """

    precision: Array
    recall: Array
    f1: Array


@dataclass(frozen=True)
class ClassificationScores:
    """Per-class scores, shape (K,), on the labels' device, plus their averages.

    ``macro`` is the plain mean over classes; ``weighted`` weights class k by ``support_k / n``.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp.metrics import precision_recall_f1
    >>> scores = precision_recall_f1(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
    >>> scores.support, scores.f1.round(4)
    (array([1, 2]), array([0.6667, 0.6667]))
    """

    precision: Array
    recall: Array
    f1: Array
    support: Array  # the default integer dtype (int64; int32 on 32-bit JAX)
    macro: Averages
    weighted: Averages


# --------------------------------------------------------------------------- input handling


def _is_device_array(x: Any) -> bool:
    """True for an array of a non-NumPy array-API library (its data may live off the host)."""
    return array_api_compat.is_array_api_obj(x) and not array_api_compat.is_numpy_array(x)


def _host_labels(data: Any, name: str) -> np.ndarray:
    """A list / tuple / NumPy array of labels as a NumPy array (an empty one as int64)."""
    host = np.asarray(data)
    if host.size == 0 and not np.issubdtype(host.dtype, np.integer):
        host = host.astype(np.int64)
    if not np.issubdtype(host.dtype, np.integer):
        raise TypeError(
            f"{name} must hold integer class labels, got dtype {host.dtype}.{_fix(name, host.dtype)}"
        )
    return host


def _fix(name: str, dtype: Any) -> str:
    """How to turn labels of ``dtype`` into class numbers, as a sentence (or "")."""
    text = str(dtype)
    if "float" in text:
        return f" For whole-number floats pass {name}.astype(int)."
    if "bool" in text:
        return f" For 0/1 labels pass {name}.astype(int)."
    if text.startswith(("<U", ">U", "|S", "<S", "str", "object", "|O")):
        return (
            " Encode other labels as class numbers first: classes, codes = np.unique(labels, "
            "return_inverse=True) (SoftmaxClassifier does this for you)."
        )
    return ""


def _label_arrays(y_true: Any, y_pred: Any) -> tuple[Any, Array, Array]:
    """``(xp, y_true, y_pred)`` as 1-D arrays of one namespace and device, in its default integer
    dtype (int64; int32 on JAX without its 64-bit mode).

    Lists and NumPy arrays follow a device array when the other input is one; two host inputs
    become NumPy arrays.
    """
    if _is_device_array(y_true) and not _is_device_array(y_pred):
        y_pred = _like(_host_labels(y_pred, "y_pred"), y_true)
    elif _is_device_array(y_pred) and not _is_device_array(y_true):
        y_true = _like(_host_labels(y_true, "y_true"), y_pred)
    elif not _is_device_array(y_true):
        y_true, y_pred = _host_labels(y_true, "y_true"), _host_labels(y_pred, "y_pred")
    elif not _same_place(y_true, y_pred):  # labels of two libraries or devices: y_true follows
        y_true = _like(_host_labels(to_numpy(y_true), "y_true"), y_pred)
    xp = array_api_compat.array_namespace(y_true, y_pred)
    y_true, y_pred = _as_counts(xp, y_true, "y_true"), _as_counts(xp, y_pred, "y_pred")
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"[{y_true.shape[0]}, {y_pred.shape[0]}]"
        )
    return xp, y_true, y_pred


def _same_place(a: Array, b: Array) -> bool:
    """Whether two device arrays are of one namespace and on one device."""
    name = array_api_compat.array_namespace
    return name(a) is name(b) and array_api_compat.device(a) == array_api_compat.device(b)


def _like(host: np.ndarray, ref: Array) -> Array:
    """Copy host labels into the namespace and onto the device of ``ref``."""
    xp = array_api_compat.array_namespace(ref)
    device = array_api_compat.device(ref)
    return xp.asarray(host, dtype=index_dtype(xp, device), device=device)


def _as_counts(xp: Any, y: Array, name: str) -> Array:
    if y.ndim != 1:
        hint = f" Pass {name}.ravel()." if y.ndim == 2 and y.shape[1] == 1 else ""
        raise ValueError(
            f"{name} must be 1-D (one label per sample), got shape {tuple(y.shape)}.{hint}"
        )
    if not xp.isdtype(y.dtype, "integral"):
        raise TypeError(
            f"{name} must hold integer class labels, got dtype {y.dtype}.{_fix(name, y.dtype)}"
        )
    dtype = index_dtype(xp, array_api_compat.device(y))
    return y if y.dtype == dtype else xp.astype(y, dtype)


def _check_range(xp: Any, y_true: Array, y_pred: Array, num_classes: int) -> None:
    """Raise ValueError unless every label lies in [0, num_classes). One host sync."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise TypeError(f"num_classes must be an int, got {type(num_classes).__name__}.")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}.")
    if y_true.shape[0] == 0:
        return
    bounds = to_numpy(xp.stack([xp.min(y_true), xp.max(y_true), xp.min(y_pred), xp.max(y_pred)]))
    for name, lo, hi in (("y_true", bounds[0], bounds[1]), ("y_pred", bounds[2], bounds[3])):
        bad = lo if lo < 0 else hi if hi >= num_classes else None
        if bad is not None:
            raise ValueError(
                f"{name} contains label {int(bad)}, but labels must lie in "
                f"[0, {num_classes}) for num_classes={num_classes}."
            )


def _float_dtype(xp: Any, device: Any) -> Any:
    """float64 where the device has it (everywhere we test), else float32."""
    try:
        dtypes = xp.__array_namespace_info__().dtypes(device=device, kind="real floating")
    except (AttributeError, TypeError):
        return xp.float64
    return xp.float64 if "float64" in dtypes else xp.float32


# --------------------------------------------------------------------------- metrics


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of correct predictions, ``mean(y_true == y_pred)``, as a Python float.

    Examples
    --------
    >>> from softmax_xp.metrics import accuracy
    >>> accuracy([0, 1, 2, 2], [0, 1, 1, 2])
    0.75
    """
    xp, y_true, y_pred = _label_arrays(y_true, y_pred)
    n: int = y_true.shape[0]
    if n == 0:
        raise ValueError("accuracy is undefined for empty inputs.")
    correct = xp.sum(xp.astype(y_true == y_pred, y_true.dtype), dtype=y_true.dtype)
    return int(to_numpy(correct)) / n


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> Array:
    """Counts ``C[i, j]`` = #samples of true class i predicted as j; (K, K), the namespace's
    default integer dtype (int64; int32 on JAX without its 64-bit mode).

    ``C = onehot(y_true).T @ onehot(y_pred)``, computed in float chunks of fewer than 2**24 rows
    (exact in float32 and float64) and accumulated in integers, on the labels' device.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp.metrics import confusion_matrix
    >>> confusion_matrix(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), num_classes=3)
    array([[1, 0, 0],
           [0, 1, 0],
           [0, 1, 1]])
    """
    xp, y_true, y_pred = _label_arrays(y_true, y_pred)
    _check_range(xp, y_true, y_pred, num_classes)
    device = array_api_compat.device(y_true)
    dtype = _float_dtype(xp, device)
    cm = xp.zeros((num_classes, num_classes), dtype=y_true.dtype, device=device)
    n = y_true.shape[0]
    chunk = max(1, min(_MAX_CHUNK_ROWS, _CHUNK_ELEMENTS // num_classes))
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        t = one_hot(y_true[start:stop], num_classes, dtype=dtype, xp=xp)
        p = one_hot(y_pred[start:stop], num_classes, dtype=dtype, xp=xp)
        cm = cm + xp.astype(xp.matmul(t.T, p), cm.dtype)
    return cm


def _safe_div(xp: Any, num: Array, den: Array) -> Array:
    """``num / den`` where ``den > 0``, else 0.0 (no division-by-zero warning)."""
    ok = den > 0
    one = xp.ones_like(den, dtype=den.dtype, device=array_api_compat.device(den))
    zero = xp.zeros_like(den, dtype=den.dtype, device=array_api_compat.device(den))
    return xp.where(ok, num / xp.where(ok, den, one), zero)


def _scores_from_cm(cm: Array) -> ClassificationScores:
    """Per-class precision / recall / F1 / support and their averages from a confusion matrix."""
    xp = array_api_compat.array_namespace(cm)
    device = array_api_compat.device(cm)
    dtype = _float_dtype(xp, device)
    k = cm.shape[0]
    c = xp.astype(cm, dtype)
    tp = xp.sum(c * xp.eye(k, dtype=dtype, device=device), axis=1)
    support = xp.sum(c, axis=1)
    predicted = xp.sum(c, axis=0)
    precision = _safe_div(xp, tp, predicted)
    recall = _safe_div(xp, tp, support)
    f1 = _safe_div(xp, 2 * tp, support + predicted)
    total = xp.sum(support)

    def weighted(v: Array) -> Array:
        return _safe_div(xp, xp.sum(v * support), total)

    return ClassificationScores(
        precision=precision,
        recall=recall,
        f1=f1,
        support=xp.sum(cm, axis=1, dtype=cm.dtype),
        macro=Averages(xp.mean(precision), xp.mean(recall), xp.mean(f1)),
        weighted=Averages(weighted(precision), weighted(recall), weighted(f1)),
    )


def precision_recall_f1(y_true: Any, y_pred: Any, num_classes: int) -> ClassificationScores:
    """Per-class precision, recall, F1 and support, with macro and weighted averages.

    ``precision_k = tp_k / predicted_k``, ``recall_k = tp_k / support_k``,
    ``f1_k = 2 tp_k / (support_k + predicted_k)``; 0/0 is 0.0. Arrays stay on the labels' device.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp.metrics import precision_recall_f1
    >>> scores = precision_recall_f1(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), 3)
    >>> scores.precision, scores.recall
    (array([1. , 0.5, 1. ]), array([1. , 1. , 0.5]))
    >>> round(float(scores.macro.f1), 4)
    0.7778
    """
    return _scores_from_cm(confusion_matrix(y_true, y_pred, num_classes))


# --------------------------------------------------------------------------- report


@overload
def classification_report(
    y_true: Any,
    y_pred: Any,
    num_classes: int,
    target_names: list[str] | tuple[str, ...] | None = None,
    digits: int = 4,
    output: Literal["text", "markdown"] = "text",
) -> str: ...
@overload
def classification_report(
    y_true: Any,
    y_pred: Any,
    num_classes: int,
    target_names: list[str] | tuple[str, ...] | None = None,
    digits: int = 4,
    *,
    output: Literal["dict"],
) -> dict[str, Any]: ...
@overload
def classification_report(
    y_true: Any,
    y_pred: Any,
    num_classes: int,
    target_names: list[str] | tuple[str, ...] | None = None,
    digits: int = 4,
    output: str = "text",
) -> str | dict[str, Any]: ...
def classification_report(
    y_true: Any,
    y_pred: Any,
    num_classes: int,
    target_names: list[str] | tuple[str, ...] | None = None,
    digits: int = 4,
    output: str = "text",
) -> str | dict[str, Any]:
    """Precision, recall, F1 and support per class, then accuracy, macro and weighted averages.

    ``output="text"`` gives an aligned table (scikit-learn's layout), ``"markdown"`` a Markdown
    table with the same rows, ``"dict"`` a JSON-serialisable dict of Python floats and ints.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp.metrics import classification_report
    >>> y_true, y_pred = np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])
    >>> print(classification_report(y_true, y_pred, 3, digits=2))
                  precision    recall  f1-score   support
    <BLANKLINE>
               0       1.00      1.00      1.00         1
               1       0.50      1.00      0.67         1
               2       1.00      0.50      0.67         2
    <BLANKLINE>
        accuracy                           0.75         4
       macro avg       0.83      0.83      0.78         4
    weighted avg       0.88      0.75      0.75         4
    <BLANKLINE>
    >>> classification_report(y_true, y_pred, 3, output="dict")["2"]["recall"]
    0.5
    """
    if output not in REPORT_OUTPUTS:
        raise ValueError(
            f"Unknown output {output!r}; valid outputs are: {', '.join(REPORT_OUTPUTS)}."
        )
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative int, got {digits!r}.")
    names = _target_names(target_names, num_classes)
    cm = to_numpy(confusion_matrix(y_true, y_pred, num_classes))  # the one K x K host copy
    total = sum(int(count) for count in cm.ravel())
    if total == 0:
        raise ValueError("classification_report is undefined for empty inputs.")
    correct = sum(int(cm[k, k]) for k in range(num_classes))
    report = _report_dict(_scores_from_cm(cm), names, correct / total, total)
    if output == "dict":
        return report
    rows = _report_rows(report, names, digits)
    return _render_text(rows) if output == "text" else _render_markdown(rows)


def _target_names(target_names: Any, num_classes: int) -> list[str]:
    if target_names is None:
        return [str(k) for k in range(num_classes)]
    names = [str(name) for name in target_names]
    if len(names) != num_classes:
        raise ValueError(f"target_names has {len(names)} entries, but num_classes={num_classes}.")
    clash = sorted(set(names) & set(_SUMMARY_ROWS))
    if clash or len(set(names)) != len(names):
        raise ValueError(
            f"target_names must be unique and not one of {list(_SUMMARY_ROWS)}; got {names}."
        )
    return names


def _report_dict(
    scores: ClassificationScores, names: list[str], acc: float, total: int
) -> dict[str, Any]:
    """The report as plain Python numbers (``scores`` holds NumPy arrays here)."""

    def entry(p: Any, r: Any, f: Any, s: int) -> dict[str, Any]:
        return {"precision": float(p), "recall": float(r), "f1-score": float(f), "support": s}

    report: dict[str, Any] = {
        name: entry(scores.precision[k], scores.recall[k], scores.f1[k], int(scores.support[k]))
        for k, name in enumerate(names)
    }
    report["accuracy"] = acc
    report["macro avg"] = entry(*scores.macro, total)
    report["weighted avg"] = entry(*scores.weighted, total)
    return report


def _report_rows(report: dict[str, Any], names: list[str], digits: int) -> list[list[str]]:
    """Rows of formatted cells: per-class rows, a blank separator (``[]``), summary rows."""

    def cells(name: str, entry: dict[str, Any]) -> list[str]:
        values = [f"{entry[key]:.{digits}f}" for key in _HEADERS[:3]]
        return [name, *values, str(entry["support"])]

    rows = [cells(name, report[name]) for name in names]
    rows.append([])
    total = report["macro avg"]["support"]
    rows.append(["accuracy", "", "", f"{report['accuracy']:.{digits}f}", str(total)])
    rows += [cells(name, report[name]) for name in _SUMMARY_ROWS[1:]]
    return rows


def _render_text(rows: list[list[str]]) -> str:
    """Right-aligned columns: the name column, then four columns at least 9 wide."""
    filled = [row for row in rows if row]
    name_width = max(len(row[0]) for row in filled)
    col_width = max(9, *(len(cell) for row in filled for cell in row[1:]))

    def line(cells: list[str]) -> str:
        return cells[0].rjust(name_width) + " " + "".join(c.rjust(col_width + 1) for c in cells[1:])

    lines = [line(["", *_HEADERS]), ""]
    lines += [line(row) if row else "" for row in rows]
    return "\n".join(lines) + "\n"


def _render_markdown(rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table; numbers right-aligned."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", r"\|") for c in cells) + " |"

    lines = [line(["class", *_HEADERS]), "|:--" + "|--:" * len(_HEADERS) + "|"]
    lines += [line(row) for row in rows if row]
    return "\n".join(lines) + "\n"
