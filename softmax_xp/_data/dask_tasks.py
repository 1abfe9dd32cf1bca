"""The work done on one Dask block, where the block is (a worker, or this process).

Each function gets a block in its own namespace (NumPy or CuPy chunks) and host or device
parameters, and returns what the chain or the reduction needs; none knows the model.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from .._backend import to_numpy
from .._errors import quiet_float_warnings
from .._inference import block_output, check_logits, device_evaluation, of_logits
from .._sparse import SPARSE_OPS, block_csr, dense_namespace, is_sparse, row_slice
from .._validation import check_finite
from ..functional import loss_and_grads
from ..solvers.sgd import sgd_epoch

__all__ = [
    "aligned",
    "class_index",
    "evaluation_block",
    "loss_sums",
    "output_block",
    "sgd_block",
    "weigh_by_class",
]

Array = Any


_malloc_checked = False


def _undo_small_mmap_threshold() -> None:
    """Once per process: when ``MALLOC_TRIM_THRESHOLD_`` is set (distributed's nanny starts
    workers with 65536), glibc also stops adapting its mmap threshold, so every batch's 800 KB
    gather becomes a fresh mmap, page faults and munmap, and an SGD epoch runs ~1.8x slower
    (measured). Raise the mmap threshold to 4 MiB and the trim threshold to 8 MiB: freed memory
    above that still goes back to the system, as distributed intends."""
    global _malloc_checked
    if _malloc_checked:
        return
    _malloc_checked = True
    if not sys.platform.startswith("linux") or "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 4 * 2**20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 8 * 2**20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to undo
        pass


def aligned(x: Array) -> Array:
    """``x``, copied to an aligned C-contiguous array when it is a NumPy array that is not.

    Blocks that arrive by transfer between workers can sit at unaligned offsets of a message
    buffer, where NumPy's ``take`` is many times slower; the copy costs one pass over the block.
    """
    if isinstance(x, np.ndarray) and not (x.flags.aligned and x.flags.c_contiguous):
        return np.require(x, requirements=["A", "C"])
    return x


def _on_block(Xb: Array, yb: Array | None, dtype: str) -> tuple[Any, Array, Array | None]:
    """The block's namespace, its features (aligned, in ``dtype``; a sparse block as CSR, with
    the namespace of its dense arrays) and its int64 labels."""
    if is_sparse(Xb):
        Xb = block_csr(Xb, dtype)
        xp = dense_namespace(Xb)
    else:
        xp = array_namespace(Xb)
        Xb = xp.astype(aligned(Xb), getattr(xp, dtype), copy=False)
    if yb is not None:
        where = device_of(Xb.data if is_sparse(Xb) else Xb)
        yb = xp.astype(xp.asarray(yb, device=where), xp.int64, copy=False)
    return xp, Xb, yb


def _to(xp: Any, like: Array, *arrays: Array | None) -> list[Array]:
    """Host (or other) arrays moved to ``like``'s namespace, device and dtype (a sparse
    ``like``: its stored values')."""
    if is_sparse(like):
        like = like.data
    return [
        None if a is None else xp.asarray(a, dtype=like.dtype, device=device_of(like))
        for a in arrays
    ]


Params = tuple[Array, Array, "tuple[Array, Array] | None"]


def _block_weights(xp: Any, like: Array, wb: Array) -> Array:
    """A block's weights in ``like``'s namespace, device and dtype, by way of float64 as
    in memory (:func:`softmax_xp._weights.as_sample_weight`)."""
    w = xp.asarray(wb, device=device_of(like))
    return xp.astype(xp.astype(w, xp.float64), like.dtype)


def sgd_block(
    Xb: Array,
    yb: Array,
    wb: Array | None,
    order: np.ndarray,
    previous: tuple[Params, Array | None],
    *,
    dtype: str,
    weight_mean: float | None = None,
    **settings: Any,
) -> tuple[Params, Array]:
    """One block of the SGD chain: ``((W, b, velocity), batch_losses)`` after ``sgd_epoch``,
    starting from the parameters of the ``previous`` block's result; the block's weights ``wb``
    (if any) divided by ``weight_mean``, the mean of all of them."""
    _undo_small_mmap_threshold()
    xp, Xb, yb = _on_block(Xb, yb, dtype)
    if Xb.shape[0] == 0:  # an empty chunk: nothing to learn from
        return previous[0], xp.zeros((0,), dtype=getattr(xp, dtype))
    W, b, velocity = previous[0]
    W, b = _to(xp, Xb, W, b)
    if velocity is not None:
        velocity = tuple(_to(xp, Xb, *velocity))
    order = xp.asarray(order, device=device_of(W))
    weights = None
    if wb is not None:
        mean = xp.asarray(weight_mean, dtype=W.dtype, device=device_of(W))
        weights = _block_weights(xp, W, wb) / mean
    ops = SPARSE_OPS if is_sparse(Xb) else None
    with quiet_float_warnings():
        W, b, velocity, losses = sgd_epoch(
            Xb, yb, order, W, b, velocity, xp=xp, weights=weights, sparse=ops, **settings
        )
    return (W, b, velocity), losses


def loss_sums(
    Xb: Array, yb: Array, params: tuple[Array, Array], dtype: str, wb: Array | None = None
) -> tuple[Any, ...]:
    """One block's unnormalised terms: ``(sum_i l_i, X^T (P - Y), sum_i (p_i - y_i), rows)``,
    from :func:`softmax_xp.functional.loss_and_grads` (means, no L2) times the block's rows;
    with weights ``wb`` (not all 0), the first three weighted by ``w_i``."""
    _undo_small_mmap_threshold()
    xp, Xb, yb = _on_block(Xb, yb, dtype)
    W, b = _to(xp, Xb, *params)
    rows = Xb.shape[0]
    if rows == 0:
        return 0.0, 0.0, 0.0, 0
    w = None if wb is None else _block_weights(xp, W, wb)
    mass = rows if w is None else xp.sum(w)
    with quiet_float_warnings():
        loss, dW, db = loss_and_grads(Xb, yb, W, b, 0.0, sample_weight=w, xp=xp)
    return to_numpy(loss * mass), to_numpy(dW * mass), to_numpy(db * mass), rows


def output_block(Xb: Array, params: tuple[Array, Array], dtype: str, kind: str) -> Array:
    """Output ``kind`` (logits, proba, log_proba or labels) of one block of rows, checked as in
    memory (see :func:`softmax_xp._inference.block_output`)."""
    xp, Xb, _ = _on_block(Xb, None, dtype)
    W, b = _to(xp, Xb, *params)
    if not is_sparse(Xb):
        return block_output(kind, Xb, W, b)
    if Xb.nnz:
        check_finite(Xb.data, xp)
    with quiet_float_warnings():
        z = Xb @ W + b
    check_logits([xp.all(xp.isfinite(z))], dtype, xp)
    return of_logits(kind, z, xp)


def evaluation_block(
    Xb: Array, yb: Array, params: tuple[Array, Array], dtype: str
) -> tuple[int, float]:
    """How many rows of one validation block ``(W, b)`` classify right, and their summed
    cross-entropy (unchecked: a run checks its weights itself, and reports a divergence rather
    than overflowed logits)."""
    xp, Xb, yb = _on_block(Xb, yb, dtype)
    if Xb.shape[0] == 0:
        return 0, 0.0
    W, b = _to(xp, Xb, *params)
    with quiet_float_warnings():
        chunk = row_slice if is_sparse(Xb) else None
        hits, loss = device_evaluation(Xb, yb, W, b, Xb.shape[0], chunk)
        return int(to_numpy(hits)), float(to_numpy(loss))


def class_index(yb: Array, k: int) -> Array:
    """A block's labels as class indices for counting and lookups, clipped into ``[0, k)``:
    labels out of range or not whole are reported by the validation pass, not here."""
    y = np.asarray(to_numpy(yb))
    with np.errstate(invalid="ignore"):
        return np.clip(np.nan_to_num(y, nan=0), 0, k - 1).astype(np.int64)


def weigh_by_class(yb: Array, wb: Array | None, weights: np.ndarray) -> Array:
    """``weights[y_i] * w_i`` of one block (float64 on the host; ``wb`` None: 1)."""
    per_row = weights[class_index(yb, weights.shape[0])]
    if wb is None:
        return per_row
    return per_row * np.asarray(to_numpy(wb), dtype=np.float64)
