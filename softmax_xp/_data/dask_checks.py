"""A Dask array's layout and values, checked before training, in one pass over its blocks.

Layout checks read no data: features chunked by whole rows, known chunk sizes, labels and
weights chunked like the rows. The validation pass computes one summary per block (finite
features, their largest value when they are integers, whole labels in range, weights finite and
non-negative with their exact sum, the rows the block really has, and its part of the data's
fingerprint) in a single ``dask.compute``; the first bad block is named in the error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import dask
import dask.array as da
import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from .._backend import to_numpy
from .._fingerprint import combine, fingerprint_part
from .._sparse import block_csr, dense_namespace, is_sparse, sparse_fingerprint_part
from .._validation import check_finite, warn_unscaled
from .._weights import (
    check_weight_dtype,
    check_weight_shape,
    check_weight_total,
    exact_sum,
    host_sample_weight,
)
from .base import DataSettings

__all__ = ["Checked", "features_layout", "labels_layout", "validate", "weights_layout"]

Array = Any
_MODEL = "SoftmaxXP"


# -- layout checks (no data read) ----------------------------------------------------------------
def features_layout(X: da.Array, input_dim: int, name: str, *, known: bool) -> da.Array:
    """``X`` as a 2-D Dask array chunked by rows only; ``known`` also requires known chunk sizes."""
    kind = np.dtype(X.dtype).kind
    if kind not in "biuf":
        raise TypeError(f"{name} has dtype {X.dtype}; {_MODEL} needs real numeric features.")
    if X.ndim < 2:
        raise ValueError(
            f"Expected a 2-D Dask array {name} of shape (n_samples, {input_dim}), got a "
            f"{X.ndim}-D array of shape {X.shape}."
        )
    if any(len(c) != 1 for c in X.chunks[1:]):
        raise ValueError(
            f"{name} is chunked along its columns (chunks {X.chunks[1:]}); {_MODEL} works on "
            f"blocks of whole rows. Rechunk it first: {name} = {name}.rechunk({{1: -1}})."
        )
    features = math.prod(X.shape[1:])
    if features != input_dim:
        raise ValueError(
            f"{name} has {features} features (shape {X.shape}), but {_MODEL} is expecting "
            f"{input_dim} features as input."
        )
    if X.ndim > 2:
        X = X.reshape((X.shape[0], input_dim))
    if known and any(math.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            f"{name} has unknown chunk sizes (NaN in {name}.chunks); training needs them. "
            f"Compute them first: {name} = {name}.compute_chunk_sizes()."
        )
    if known and X.shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) in {name}.")
    return X


def labels_layout(y: Any, row_chunks: tuple[int, ...], name: str) -> Array:
    """``y`` as a 1-D Dask array chunked like the rows of ``X`` (rechunked or wrapped if not)."""
    if not isinstance(y, da.Array):
        y = np.asarray(to_numpy(y) if hasattr(y, "__array_namespace__") else y)
    kind = np.dtype(y.dtype).kind
    valid = "class labels must be integers in [0, num_classes)"
    if kind == "b":
        raise TypeError(f"{name} has dtype bool; {valid} (for 0/1 labels pass y.astype(int)).")
    if kind not in "iuf":
        raise TypeError(f"{name} has dtype {y.dtype}; {valid}.")
    if y.ndim != 1:
        hint = ""
        if y.ndim == 2 and y.shape[1] == 1:
            hint = f" Pass {name}.ravel() (or {name}.reshape(-1)) for a column of labels."
        raise ValueError(
            f"{name} should be a 1-D array of shape (n_samples,), got shape {y.shape}.{hint}"
        )
    n = sum(row_chunks)
    if y.shape[0] != n:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: [{n}, {y.shape[0]}]"
        )
    if not isinstance(y, da.Array):
        return da.from_array(y, chunks=(row_chunks,))
    return y if y.chunks[0] == row_chunks else y.rechunk((row_chunks,))


def weights_layout(w: Any, row_chunks: tuple[int, ...]) -> Array | None:
    """``sample_weight`` as a 1-D Dask array chunked like the rows of ``X`` (an in-memory one is
    cut into them, a Dask one rechunked if its chunks differ); None stays None. Its values are
    checked in the validation pass."""
    if w is None:
        return None
    n = sum(row_chunks)
    if not isinstance(w, da.Array):
        return da.from_array(host_sample_weight(w, n), chunks=(row_chunks,))
    check_weight_dtype(w.dtype)
    if w.ndim == 1 and math.isnan(w.shape[0]):
        raise ValueError(
            "sample_weight has unknown chunk sizes (NaN in sample_weight.chunks); compute them "
            "first: sample_weight = sample_weight.compute_chunk_sizes()."
        )
    check_weight_shape(w.shape, n)
    return w if w.chunks[0] == row_chunks else w.rechunk((row_chunks,))


# -- the validation pass (one compute before training) ------------------------------------------
@dataclass(frozen=True)
class _Summary:
    """What one block holds, as far as the checks are concerned."""

    rows: tuple[int, int]  # rows of its features and of its labels
    finite: bool
    nan: bool
    high: int  # largest feature value of integer features, else 0
    labels: tuple[float, float] | None  # (min, max) label; None: a NaN or non-integer label
    fingerprint: tuple[int, np.ndarray, int] | None
    weights: tuple[str | None, Fraction] | None  # (what is wrong or None, exact sum)


def _summary(Xb: Array, yb: Array, wb: Array | None, offset: int | None, dtype: str) -> _Summary:
    """The :class:`_Summary` of one block, its features taken in ``dtype``; its part of the
    fingerprint when its first row's ``offset`` in the data set is given."""
    sparse = is_sparse(Xb)
    if sparse:  # its stored values are what is checked
        Xb = block_csr(Xb, str(Xb.dtype))
        xp, values = dense_namespace(Xb), Xb.data
    else:
        xp = array_namespace(Xb)
        values = Xb
    rows = (Xb.shape[0], yb.shape[0])
    integral = values.shape[0] and xp.isdtype(values.dtype, "integral")
    high = int(to_numpy(xp.max(values))) if integral else 0
    with np.errstate(over="ignore", invalid="ignore"):
        values = xp.astype(values, getattr(xp, dtype), copy=False)
        try:
            if values.shape[0]:
                check_finite(values, xp)
            finite, nan = True, False
        except ValueError:
            finite, nan = False, bool(xp.any(xp.isnan(values)))
    labels = _label_range(yb)
    fingerprint = None
    if offset is not None and finite and labels is not None and rows[0] == rows[1]:
        if sparse:
            fingerprint = sparse_fingerprint_part(Xb, yb, offset)
        else:
            Xb = xp.astype(Xb, getattr(xp, dtype), copy=False)
            fingerprint = fingerprint_part(Xb, xp.asarray(yb, device=device_of(Xb)), offset)
    weights = None if wb is None else _weight_summary(wb, dtype)
    return _Summary(rows, finite, nan, high, labels, fingerprint, weights)


def _label_range(yb: Array) -> tuple[float, float] | None:
    """``(min, max)`` of a block's labels, ``(0, 0)`` when empty; None if one is not whole."""
    yp = array_namespace(yb)
    if yb.shape[0] == 0:
        return 0.0, 0.0
    if yp.isdtype(yb.dtype, "real floating") and not bool(
        yp.all(yp.isfinite(yb) & (yb == yp.floor(yb)))
    ):
        return None
    return float(yp.min(yb)), float(yp.max(yb))


def _weight_summary(wb: Array, dtype: str) -> tuple[str | None, Fraction]:
    """``(what is wrong or None, exact sum)`` of one block's weights as the model uses them (in
    ``dtype``); the error text has a ``{block}`` field for the block's place."""
    w = np.asarray(to_numpy(wb)).astype(np.float64, copy=False)
    if not np.all(np.isfinite(w)):
        return "contains NaN or infinity ({block}); weights must be finite", Fraction(0)
    if np.any(w < 0):
        return "contains negative values ({block}); weights must be >= 0", Fraction(0)
    with np.errstate(over="ignore"):
        used = w.astype(dtype).astype(np.float64)
    if not np.all(np.isfinite(used)):
        too_large = f"contains a value too large for {dtype} ({{block}})"
        return f"{too_large}; scale the weights down (only their ratios matter)", Fraction(0)
    return None, exact_sum(used)


@dataclass(frozen=True)
class Checked:
    """The validation pass's findings: the exact sum of each block's weights (None without
    weights) and the training data's fingerprint."""

    weight_sums: list[Fraction] | None
    fingerprint: dict[str, Any]


def validate(
    pairs: list[tuple[da.Array, da.Array, str, str]],
    settings: DataSettings,
    weights: da.Array | None = None,
) -> Checked:
    """Check every block of every ``(X, y)`` pair (the training data first), and the
    ``weights`` of the first pair's blocks, in one ``dask.compute``."""
    tasks, where = [], []
    for p, (X, y, xname, yname) in enumerate(pairs):
        starts = np.cumsum((0, *X.chunks[0]))
        x_blocks = X.to_delayed().ravel()
        w_blocks = [None] * len(x_blocks)
        if p == 0 and weights is not None:
            w_blocks = list(weights.to_delayed())
        for i, (xb, yb, wb) in enumerate(zip(x_blocks, y.to_delayed(), w_blocks, strict=True)):
            first, last = int(starts[i]), int(starts[i + 1]) - 1
            offset = first if p == 0 else None
            tasks.append(dask.delayed(_summary)(xb, yb, wb, offset, settings.dtype_name))
            where.append((p, xname, yname, X.chunks[0][i], f"block {i}, rows {first}-{last}"))
    summaries = dask.compute(*tasks)
    sums, parts = [], []
    for summary, (p, xname, yname, declared, block) in zip(summaries, where, strict=True):
        _check_block(summary, (xname, yname), declared, block, settings)
        if summary.high > 1:
            warn_unscaled(xname, str(pairs[p][0].dtype), summary.high)
        if p == 0:
            parts.append(summary.fingerprint)
            if summary.weights is not None:
                problem, total = summary.weights
                if problem is not None:
                    raise ValueError(f"sample_weight {problem.format(block=block)}.")
                sums.append(total)
    if weights is not None:
        check_weight_total(sum(sums, Fraction(0)), settings.dtype_name)
    return Checked(sums if weights is not None else None, combine(parts))


def _check_block(
    summary: _Summary, names: tuple[str, str], declared: int, block: str, settings: DataSettings
) -> None:
    """Raise the error for the first thing wrong with a block, naming it."""
    xname, yname = names
    for name, rows in zip(names, summary.rows, strict=True):
        if rows != declared:
            raise ValueError(
                f"{block} of {name} holds {rows} rows, but the Dask array's chunks declare "
                f"{declared}: the function that made it returned another size. Fix it, or "
                f"recompute the sizes: {name} = {name}.compute_chunk_sizes()."
            )
    if summary.nan:
        raise ValueError(f"Input {xname} contains NaN ({block}).")
    if not summary.finite:
        raise ValueError(
            f"Input {xname} contains infinity or a value too large for {settings.dtype_name} "
            f"({block})."
        )
    k = settings.num_classes
    valid = f"class labels must be integers in [0, {k})"
    if summary.labels is None:
        raise ValueError(f"{yname} contains a NaN or non-integer label ({block}); {valid}.")
    low, high = summary.labels
    if low < 0:
        raise ValueError(f"{yname} contains the negative label {low:g} ({block}); {valid}.")
    if high >= k:
        raise ValueError(
            f"{yname} contains the label {high:g} ({block}), but {_MODEL} has "
            f"num_classes={k}; {valid}."
        )
