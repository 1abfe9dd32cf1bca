"""What weights ``(W, b)`` say about rows ``X``: logits, probabilities, labels and hit counts.

Functions of ``(W, b)`` and the data, so every path (the model in memory, the blocks of a Dask
array, the validation set of a run) computes them one way. In memory, ``X`` is moved to the
device a chunk of rows at a time, and results computed from logits that overflowed the model's
dtype are refused with one host read for all chunks (the library never returns NaN silently).
"""

from __future__ import annotations

import functools
from typing import Any

from array_api_compat import array_namespace, is_jax_namespace
from array_api_compat import device as device_of

from ._backend import index_dtype
from ._errors import quiet_float_warnings
from ._validation import (
    as_features,
    as_labels,
    check_finite,
    check_int,
    features_on_host_or_device,
    warn_if_unscaled,
)
from .functional import cross_entropy, log_softmax, softmax

__all__ = [
    "KINDS",
    "block_output",
    "check_logits",
    "chunk_rows",
    "device_evaluation",
    "hits_of",
    "outputs",
    "row_slices",
    "score",
]

Array = Any
KINDS = ("logits", "proba", "log_proba", "labels")
_MAX_CHUNK_ROWS = 65536
_CHUNK_BYTES = 256 * 2**20  # default inference chunk: its features and logits stay under this


def of_logits(kind: str, z: Array, xp: Any) -> Array:
    """The output ``kind`` of logits ``z``: themselves, softmax, log-softmax or argmax."""
    if kind == "proba":
        return softmax(z, axis=-1, xp=xp)
    if kind == "log_proba":
        return log_softmax(z, axis=-1, xp=xp)
    if kind == "labels":
        return xp.argmax(z, axis=1)
    return z


def chunk_rows(settings: Any, chunk_size: int | None) -> int:
    """Rows per chunk: ``chunk_size``, or as many as keep a chunk's features and logits under
    256 MiB (at most 65536)."""
    if chunk_size is not None:
        return check_int(chunk_size, "chunk_size", 1)
    itemsize = 4 if settings.dtype_name == "float32" else 8
    row_bytes: int = (settings.input_dim + 2 * settings.num_classes) * itemsize
    return max(1, min(_MAX_CHUNK_ROWS, _CHUNK_BYTES // row_bytes))


def row_slices(n: int, rows: int) -> list[slice]:
    """``rows``-row slices covering ``range(n)``, none running past ``n`` (array-api-strict
    refuses out-of-bounds stops)."""
    return [slice(lo, min(lo + rows, n)) for lo in range(0, n, rows)]


def check_logits(finite: list[Array], dtype_name: str, xp: Any) -> None:
    """Refuse results computed from overflowed logits (one host read for every chunk)."""
    if bool(xp.all(xp.stack(finite))):
        return
    raise ValueError(
        f"The logits X @ W + b overflowed {dtype_name} for some rows of X: their "
        "features are far larger than those the model was trained on, so the "
        "probabilities would be NaN and the predicted classes arbitrary. Scale X as the "
        "training data was scaled (MNIST pixels lie in [0, 1])"
        + (", or use a float64 model." if dtype_name == "float32" else ".")
    )


def _chunks(X: Any, settings: Any, rows: int) -> list[tuple[slice, Array]]:
    """``X`` checked, then cut into ``rows``-row chunks moved to the device one at a time."""
    X = warn_if_unscaled(features_on_host_or_device(X, settings.input_dim))
    dtype, backend = settings.dtype, settings.backend
    return [
        (r, as_features(X[r, ...], backend, dtype, settings.input_dim))
        for r in row_slices(X.shape[0], rows)
    ]


def outputs(kind: str, X: Any, W: Array, b: Array, settings: Any, rows: int) -> Array:
    """Output ``kind`` (see :data:`KINDS`) of every row of an in-memory ``X``, chunk by chunk."""
    xp = settings.backend.xp
    finite, parts = [], []
    with quiet_float_warnings():
        for _, Xc in _chunks(X, settings, rows):
            ok, out = _chunk(kind, Xc, W, b, None, xp)
            finite.append(ok)
            parts.append(out)
    check_logits(finite, settings.dtype_name, xp)
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def score(X: Any, y: Any, W: Array, b: Array, settings: Any, rows: int) -> float:
    """The fraction of the rows of an in-memory ``(X, y)`` that ``(W, b)`` classify right."""
    xp = settings.backend.xp
    X = features_on_host_or_device(X, settings.input_dim)
    n: int = X.shape[0]
    y = as_labels(y, settings.backend, n, settings.num_classes)
    finite, hits = [], []
    with quiet_float_warnings():
        for r, Xc in _chunks(X, settings, rows):
            ok, count = _chunk("hits", Xc, W, b, y[r], xp)
            finite.append(ok)
            hits.append(count)
    check_logits(finite, settings.dtype_name, xp)
    return int(xp.sum(xp.stack(hits))) / n


def hits_of(z: Array, y: Array, xp: Any) -> Array:
    """How many rows' largest logit is their label's (0-d, the default integer dtype, on the
    device)."""
    count = index_dtype(xp, device_of(z))
    return xp.sum(xp.astype(xp.argmax(z, axis=1) == y, count), dtype=count)


def device_evaluation(
    X: Array,
    y: Array,
    W: Array,
    b: Array,
    rows: int,
    chunk: Any = None,
    weights: Array | None = None,
) -> tuple[Array, Array]:
    """How many rows of ``(X, y)``, already on the device, ``(W, b)`` classify right (0-d, the
    default integer dtype) and their summed cross-entropy ``sum_i -log softmax(z_i)[y_i]`` (0-d,
    ``W``'s dtype), in chunks of ``rows``, with no host read. ``chunk(X, rows)`` cuts a chunk of
    rows (default ``X[rows, ...]``; a sparse ``X`` passes its own). With ``weights`` (one per
    row, on the device, ``W``'s dtype) both are weighted sums: ``sum_i w_i [right_i]`` (0-d,
    ``W``'s dtype) and ``sum_i w_i l_i``."""
    xp = array_namespace(W)
    kind = "evaluation" if weights is None else "weighted_evaluation"
    hits, losses = [], []
    for r in row_slices(X.shape[0], rows):
        Xc = X[r, ...] if chunk is None else chunk(X, r)
        wc = None if weights is None else weights[r]
        count, loss = _chunk(kind, Xc, W, b, y[r], xp, wc)[1]
        hits.append(count)
        losses.append(loss)
    if len(hits) == 1:
        return hits[0], losses[0]
    return xp.sum(xp.stack(hits)), xp.sum(xp.stack(losses))


def _chunk(
    kind: str, Xc: Array, W: Array, b: Array, yc: Array | None, xp: Any, wc: Array | None = None
) -> Any:
    """``(all logits finite, output)`` of one chunk, ``z = Xc W + b``: the output ``kind`` of
    the logits; for ``kind="hits"`` how many of them pick the label ``yc``; for
    ``"evaluation"`` that count and the rows' summed cross-entropy; for
    ``"weighted_evaluation"`` both weighted by ``wc``. On JAX one compiled program per kind
    and chunk shape (eager JAX calls cost several times NumPy's)."""
    if is_jax_namespace(xp):
        return _compiled_chunk()(Xc, W, b, yc, wc, kind=kind, xp=xp)
    return _chunk_eager(Xc, W, b, yc, wc, kind=kind, xp=xp)


def _chunk_eager(
    Xc: Array, W: Array, b: Array, yc: Array | None, wc: Array | None, *, kind: str, xp: Any
) -> Any:
    z = Xc @ W + b
    if kind == "hits":
        out = hits_of(z, yc, xp)
    elif kind == "evaluation":
        out = (hits_of(z, yc, xp), cross_entropy(z, yc, xp=xp) * Xc.shape[0])
    elif kind == "weighted_evaluation":
        out = _weighted_evaluation(z, yc, wc, xp)
    else:
        out = of_logits(kind, z, xp)
    return xp.all(xp.isfinite(z)), out


def _weighted_evaluation(z: Array, y: Array, w: Array, xp: Any) -> tuple[Array, Array]:
    """``(sum_i w_i [argmax z_i == y_i], sum_i w_i (-log softmax(z_i)[y_i]))``, 0-d, ``z``'s
    dtype (a boolean mask, not a gather, as :func:`~softmax_xp.cross_entropy` picks)."""
    right = xp.astype(xp.argmax(z, axis=1) == y, z.dtype)
    logp = log_softmax(z, axis=-1, xp=xp)
    classes = xp.arange(z.shape[1], dtype=y.dtype, device=device_of(z))
    picked = xp.where(y[:, None] == classes, logp, xp.zeros_like(logp))
    return xp.sum(w * right), -xp.sum(w * xp.sum(picked, axis=1))


@functools.cache
def _compiled_chunk() -> Any:
    import jax

    return jax.jit(_chunk_eager, static_argnames=("kind", "xp"))


def block_output(kind: str, Xb: Array, W: Array, b: Array) -> Array:
    """Output ``kind`` of one block of rows in its own namespace (a Dask block on a worker):
    NaN or infinity in the block is refused, as overflowed logits are."""
    xp = array_namespace(Xb)
    check_finite(Xb, xp)
    with quiet_float_warnings():
        z = Xb @ W + b
    check_logits([xp.all(xp.isfinite(z))], str(Xb.dtype).rsplit(".", 1)[-1], xp)
    return of_logits(kind, z, xp)
