"""A fingerprint of a training set, kept in checkpoints so that a resume on other data is refused.

For ``X`` (n x d) and labels ``y``:

    features = [1^T X C, r^T X C]     r_i = 1 + (i mod 251),  C_jk = ((j + 1)(k + 2) mod 7) - 3
    labels   = sum_i y_i (1 + (i mod 65521))                  (an exact integer)

``C`` (d x 4) mixes the columns with signs, ``r`` weighs the rows by position, so other values,
other rows or the same rows in another order give another fingerprint. Computed on the data's
device with two matrix products (no copy of X) and read to the host once per run. Labels compare
exactly; features with a tolerance, as sums differ in their last bits between backends.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from ._backend import Backend, to_numpy

__all__ = [
    "FEATURE_TOLERANCE",
    "combine",
    "data_fingerprint",
    "describe_change",
    "fingerprint_part",
    "is_fingerprint",
    "patterns",
]

FEATURE_TOLERANCE = 1e-3  # relative to the largest feature entry
_PATTERNS = 4


def data_fingerprint(backend: Backend, X: Any, y: Any) -> dict[str, Any]:
    """``{"rows": n, "labels": int, "features": [8 floats]}`` of ``X`` and ``y`` on ``backend``."""
    return combine([fingerprint_part(X, y, 0)])


def fingerprint_part(X: Any, y: Any, offset: int) -> tuple[int, np.ndarray, int]:
    """``(rows, feature sums, label sum)`` of rows ``offset ..`` of a data set: one block of
    it, in the block's own namespace and device. :func:`combine` adds the blocks up."""
    xp = array_namespace(X)
    n, d = X.shape
    rows, columns, label_weights = patterns(offset, n, d)
    where = device_of(X)
    with np.errstate(all="ignore"):  # sums of huge features may overflow: see below
        sums = (xp.asarray(rows, dtype=X.dtype, device=where) @ X) @ xp.asarray(
            columns, dtype=X.dtype, device=where
        )
    # on the host in int64: a 32-bit default integer (JAX) would wrap around for large n
    labels = np.dot(to_numpy(y).astype(np.int64), label_weights)
    largest = float(np.finfo(np.float64).max)  # an overflowed sum still identifies the data
    features = np.nan_to_num(to_numpy(sums).astype(np.float64), posinf=largest, neginf=-largest)
    return int(n), features, int(to_numpy(labels))


def patterns(offset: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The host patterns of rows ``offset .. offset + n`` of ``d`` columns: ``[1, r]`` (2 x n),
    ``C`` (d x 4) and the label weights ``1 + (i mod 65521)`` (n,)."""
    index = offset + np.arange(n)
    rows = np.ones((2, n))
    rows[1] = 1 + index % 251
    k = np.arange(_PATTERNS) + 2
    columns = ((np.arange(d)[:, None] + 1) * k) % 7 - 3
    return rows, columns, 1 + index % 65521


def combine(parts: list[tuple[int, np.ndarray, int]]) -> dict[str, Any]:
    """The fingerprint of the data whose blocks gave ``parts``, in row order."""
    features = sum((part[1] for part in parts), np.zeros((2, _PATTERNS)))
    return {
        "rows": sum(part[0] for part in parts),
        "labels": sum(part[2] for part in parts),
        "features": features.ravel().tolist(),
    }


def is_fingerprint(value: Any) -> bool:
    """Whether ``value`` is a well-formed fingerprint (as read from a checkpoint's header)."""
    return (
        isinstance(value, dict)
        and set(value) == {"rows", "labels", "features"}
        and type(value["rows"]) is int
        and type(value["labels"]) is int
        and isinstance(value["features"], list)
        and len(value["features"]) == 2 * _PATTERNS
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in value["features"]
        )
    )


def describe_change(saved: dict[str, Any], now: dict[str, Any]) -> str | None:
    """None when ``now`` is the data ``saved`` was taken of, else what differs, in words."""
    if saved["rows"] != now["rows"]:
        return f"it had {saved['rows']} rows, this one has {now['rows']}"
    if saved["labels"] != now["labels"]:
        return "the labels differ (or are in another order)"
    scale = max(max(abs(v) for v in saved["features"]), 1e-30)
    if any(
        abs(a - b) > FEATURE_TOLERANCE * scale
        for a, b in zip(saved["features"], now["features"], strict=True)
    ):
        return "the feature values differ (or the rows are in another order)"
    return None
