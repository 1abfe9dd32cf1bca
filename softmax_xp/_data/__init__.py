"""Where rows come from: the one place that asks what kind of input it was given.

:func:`sources` turns the user's training (and validation) input into a
:class:`~softmax_xp._data.base.TrainingData` source: in-memory arrays of any backend
(:mod:`.memory`), sparse matrices (:mod:`.sparse`, CSR on the model's device) or a Dask
array (:mod:`.dask`, imported only for Dask input; its chunks may be dense or scipy.sparse).
:func:`predictions` and :func:`score` do the same for inference.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import is_dask_array

from .. import _inference
from .._sparse import is_sparse
from .._validation import check_int
from . import sparse
from .base import DataSettings, SgdStep, TrainingData, Validation
from .memory import InMemoryData, InMemoryValidation
from .sparse import SparseData, SparseValidation

__all__ = [
    "DataSettings",
    "SgdStep",
    "TrainingData",
    "Validation",
    "is_lazy",
    "predictions",
    "score",
    "sources",
]

Array = Any
SHUFFLES = ("global", "blocks")


def is_lazy(X: Any) -> bool:
    """Whether ``X`` is a lazy (Dask) array, whose results are lazy too."""
    return is_dask_array(X)


def sources(
    X: Any,
    y: Any,
    X_val: Any,
    y_val: Any,
    settings: DataSettings,
    *,
    sample_weight: Any = None,
    shuffle: str = "global",
    block_rows: int | None = None,
    class_weight: dict[int, float] | str | None = None,
    val_sample_weight: Any = None,
) -> tuple[TrainingData, Validation | None]:
    """The training rows and the validation rows (None without ``X_val``; weighted by
    ``val_sample_weight``, checked as ``sample_weight`` is), checked.

    ``shuffle="global"`` visits all rows in one random order per epoch; ``"blocks"`` visits
    blocks of ``block_rows`` rows, as a Dask array's chunks (which are its blocks in any case,
    rechunked to ``block_rows`` if given) are visited. ``class_weight`` (checked by
    :func:`softmax_xp._weights.check_class_weight`) multiplies each row's sample weight by its
    class's weight.
    """
    if (X_val is None) != (y_val is None):
        raise ValueError("X_val and y_val must be given together.")
    if val_sample_weight is not None and X_val is None:
        raise ValueError("val_sample_weight weighs the rows of X_val; pass X_val and y_val too.")
    block_rows = _check_shuffle(shuffle, block_rows, lazy=is_dask_array(X))
    if is_dask_array(X):
        from .dask import sources as dask_sources

        return dask_sources(
            X, y, X_val, y_val, settings,
            sample_weight=sample_weight, block_rows=block_rows, class_weight=class_weight,
            val_sample_weight=val_sample_weight,
        )  # fmt: skip
    source = SparseData if is_sparse(X) else InMemoryData
    data = source(
        X, y, settings,
        sample_weight=sample_weight, block_rows=block_rows, class_weight=class_weight,
    )  # fmt: skip
    return data, _validation(X_val, y_val, settings, val_sample_weight)


def _validation(
    X_val: Any, y_val: Any, settings: DataSettings, sample_weight: Any
) -> Validation | None:
    """In-memory validation rows, dense or sparse (whatever the training rows are)."""
    if X_val is None:
        return None
    if is_sparse(X_val):
        return SparseValidation(X_val, y_val, settings, sample_weight)
    return InMemoryValidation(X_val, y_val, settings, sample_weight)


def _check_shuffle(shuffle: Any, block_rows: int | None, lazy: bool) -> int | None:
    """``block_rows`` checked: None for ``shuffle="global"`` (and for Dask chunks as they are)."""
    if shuffle not in SHUFFLES:
        raise ValueError(f"Unknown shuffle {shuffle!r}; use 'global' or 'blocks'.")
    if block_rows is not None:
        block_rows = check_int(block_rows, "block_rows", 1)
        if shuffle == "global" and not lazy:
            raise ValueError("block_rows is used with shuffle='blocks'; pass both, or neither.")
    elif shuffle == "blocks" and not lazy:
        raise ValueError("shuffle='blocks' needs block_rows, the number of rows per block.")
    return block_rows


def predictions(
    kind: str, X: Any, W: Array, b: Array, settings: DataSettings, chunk_size: int | None
) -> Array:
    """Output ``kind`` (logits, proba, log_proba or labels) of every row of ``X``: in memory,
    chunk by chunk; for a Dask ``X``, a lazy Dask array (``chunk_size`` is not used)."""
    if is_dask_array(X):
        from .dask import predictions as lazy_predictions

        return lazy_predictions(kind, X, W, b, settings)
    if is_sparse(X):
        return sparse.predictions(kind, X, W, b, settings, chunk_size)
    rows = _inference.chunk_rows(settings, chunk_size)
    return _inference.outputs(kind, X, W, b, settings, rows)


def score(
    X: Any, y: Any, W: Array, b: Array, settings: DataSettings, chunk_size: int | None
) -> float:
    """The accuracy of ``(W, b)`` on ``(X, y)``; for a Dask ``X``, one reduction."""
    if is_dask_array(X):
        from .dask import score as lazy_score

        return lazy_score(X, y, W, b, settings)
    if is_sparse(X):
        return sparse.score(X, y, W, b, settings, chunk_size)
    rows = _inference.chunk_rows(settings, chunk_size)
    return _inference.score(X, y, W, b, settings, rows)
