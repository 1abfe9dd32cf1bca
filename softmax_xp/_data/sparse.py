"""Sparse training rows, validation rows and inference, never densified.

A sparse ``X`` (scipy.sparse, cupyx.scipy.sparse or a torch sparse tensor; see
:mod:`softmax_xp._sparse`) is held as CSR on the model's device. SGD gathers each mini-batch's
rows as CSR and computes ``X_b @ W`` and ``X_b.T @ dz`` as sparse-dense products; L-BFGS's
objective computes ``X @ W`` and ``X.T @ dz`` over the whole matrix; inference computes the
logits of one chunk of rows at a time. The numbers are those of the dense path (the products
sum in another order: float64 weights agree to about 1e-13).
"""

from __future__ import annotations

from typing import Any

from .. import _inference
from .._errors import quiet_float_warnings
from .._sparse import SPARSE_OPS, as_sparse_features, density, row_slice, sparse_fingerprint
from .._validation import as_labels, check_int
from .base import DataSettings
from .memory import InMemoryData, validation_weights

__all__ = ["SparseData", "SparseValidation", "chunk_rows", "predictions", "score"]

Array = Any
_MAX_CHUNK_ROWS = 65536
_LOGIT_BYTES = 64 * 2**20  # a chunk's dense logits (and their softmax) stay under this


def sparse_features_and_labels(
    X: Any, y: Any, settings: DataSettings, names: tuple[str, str] = ("X", "y")
) -> tuple[Any, Array]:
    """Sparse ``X`` checked and held as CSR on the model's device; ``y`` checked and moved."""
    X = as_sparse_features(X, settings.backend, settings.dtype, settings.input_dim, names[0])
    y = as_labels(y, settings.backend, X.shape[0], settings.num_classes, names[1])
    return X, y


class SparseData(InMemoryData):
    """Sparse rows ``(X, y)`` in CSR on the model's device: an in-memory source (global shuffle
    or blocks, sample weights, L-BFGS) whose batches are gathered as CSR."""

    sparse = SPARSE_OPS

    def _load(self, X: Any, y: Any) -> tuple[Any, Array]:
        return sparse_features_and_labels(X, y, self.settings)

    def _block(self, rows: slice) -> Any:
        return row_slice(self.X, rows)

    @property
    def row_width(self) -> int:
        """The mean number of non-zeros per row: the width of a batch's products, for the
        thread rule (:func:`softmax_xp._threads.training_threads`)."""
        return max(1, round(density(self.X) * self.settings.input_dim))

    def fingerprint(self) -> dict[str, Any]:
        return sparse_fingerprint(self.settings.backend, self.X, self.y)


def chunk_rows(settings: DataSettings, chunk_size: int | None) -> int:
    """Rows per inference chunk of a sparse ``X``: ``chunk_size``, or as many as keep a chunk's
    dense logits under 64 MiB (at most 65536; the sparse rows themselves are not copied)."""
    if chunk_size is not None:
        return check_int(chunk_size, "chunk_size", 1)
    itemsize = 4 if settings.dtype_name == "float32" else 8
    return max(1, min(_MAX_CHUNK_ROWS, _LOGIT_BYTES // (2 * settings.num_classes * itemsize)))


class SparseValidation:
    """Sparse validation rows on the model's device, optionally weighted (see
    :class:`~softmax_xp._data.memory.InMemoryValidation`)."""

    def __init__(self, X: Any, y: Any, settings: DataSettings, sample_weight: Any = None):
        self.X, self.y = sparse_features_and_labels(X, y, settings, ("X_val", "y_val"))
        self.n = self.X.shape[0]
        self.weights, self.total = validation_weights(sample_weight, settings, self.n)
        self._rows = chunk_rows(settings, None)

    def evaluate(self, W: Array, b: Array) -> tuple[Array, Array]:
        return _inference.device_evaluation(
            self.X, self.y, W, b, self._rows, row_slice, weights=self.weights
        )


def predictions(
    kind: str, X: Any, W: Array, b: Array, settings: DataSettings, chunk_size: int | None
) -> Array:
    """Output ``kind`` of every row of a sparse ``X``, chunk by chunk (see
    :func:`softmax_xp._inference.outputs`)."""
    xp = settings.backend.xp
    X = as_sparse_features(X, settings.backend, settings.dtype, settings.input_dim)
    finite, parts = [], []
    with quiet_float_warnings():
        for r in _inference.row_slices(X.shape[0], chunk_rows(settings, chunk_size)):
            z = row_slice(X, r) @ W + b
            finite.append(xp.all(xp.isfinite(z)))
            parts.append(_inference.of_logits(kind, z, xp))
    _inference.check_logits(finite, settings.dtype_name, xp)
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def score(
    X: Any, y: Any, W: Array, b: Array, settings: DataSettings, chunk_size: int | None
) -> float:
    """The accuracy of ``(W, b)`` on a sparse ``X`` and labels ``y``, chunk by chunk."""
    xp = settings.backend.xp
    X, y = sparse_features_and_labels(X, y, settings)
    finite, hits = [], []
    with quiet_float_warnings():
        for r in _inference.row_slices(X.shape[0], chunk_rows(settings, chunk_size)):
            z = row_slice(X, r) @ W + b
            finite.append(xp.all(xp.isfinite(z)))
            hits.append(_inference.hits_of(z, y[r], xp))
    _inference.check_logits(finite, settings.dtype_name, xp)
    n: int = X.shape[0]
    return int(xp.sum(xp.stack(hits))) / n
