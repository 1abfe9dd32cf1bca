"""How a Dask array is visited: block order, block tasks, reductions, map_blocks inference.

The only module that imports dask. A Dask ``X`` must be chunked by rows only, with known chunk
sizes; its row chunks are the blocks. Each block is worked on where it lives, in its own array
namespace (NumPy or CuPy chunks); only the parameters travel between tasks: host arrays into
an epoch's first block task, then the arrays each task returns (in its block's namespace).

Training (``solver="sgd"``) runs, each epoch, a chain of block tasks, each running
:func:`softmax_xp.solvers.sgd.sgd_epoch` on one block and handing ``(W, b, velocity)`` to the
next, in the order :func:`softmax_xp._random.block_plan` draws (the same draws as in-memory
``shuffle="blocks"``, so the weights are the same).

With an active ``distributed.Client`` the chain runs on its workers as futures: each block is
loaded (``client.compute`` of its chunk) where the scheduler puts it and the block's task runs
next to it; loading block ``s`` is submitted only once task ``s - PREFETCH - 1`` is done, so at
most ``PREFETCH + 1`` blocks of ``X`` are in the cluster's memory at once, however large ``X``
is, while the next block loads during the current one's SGD. Without a client, Dask's local
scheduler computes one block at a time and the task runs in this process. (A single graph with
all the blocks would let idle workers load every block ahead of the chain.)

Sample weights (a Dask array, rechunked to ``X``'s rows, or an in-memory one cut into them)
travel with their block. The validation pass also sums each block's weights exactly
(:func:`softmax_xp._weights.exact_sum`): SGD divides every weight by their exact mean, as in
memory, so the weights stay the same as ``shuffle="blocks"``'s; L-BFGS divides the summed
block terms by the total weight, and skips blocks whose weights are all 0.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import dask
import dask.array as da
import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as device_of

from . import _random
from ._backend import to_numpy
from ._errors import quiet_float_warnings
from ._validation import check_finite
from ._weights import check_weight_dtype, check_weight_shape, exact_sum, host_sample_weight
from .functional import loss_and_grads, softmax
from .solvers.sgd import sgd_epoch

if TYPE_CHECKING:
    from .model import History, SoftmaxXP, ValHits

__all__ = ["more_epochs", "predict", "predict_proba", "score", "train"]

Array = Any
PREFETCH = 1  # blocks loaded ahead of the one the SGD chain works on
_MODEL = "SoftmaxXP"


# -- layout checks (no data read) ----------------------------------------------------------------
def _features_layout(X: da.Array, input_dim: int, name: str, *, known: bool) -> da.Array:
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


def _labels_layout(y: Any, row_chunks: tuple[int, ...], name: str) -> da.Array:
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
        raise ValueError(
            f"{name} should be a 1-D array of shape (n_samples,), got shape {y.shape}."
        )
    n = sum(row_chunks)
    if y.shape[0] != n:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: [{n}, {y.shape[0]}]"
        )
    if not isinstance(y, da.Array):
        return da.from_array(y, chunks=(row_chunks,))
    return y if y.chunks[0] == row_chunks else y.rechunk((row_chunks,))


def _weights_layout(w: Any, row_chunks: tuple[int, ...]) -> da.Array | None:
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
def _block_summary(Xb: Array, yb: Array, dtype: str) -> tuple[bool, bool, float, float, bool]:
    """``(X finite, X has NaN, min label, max label, labels whole)`` of one block, in ``dtype``."""
    xp = array_namespace(Xb)
    with np.errstate(over="ignore", invalid="ignore"):
        Xb = xp.astype(Xb, getattr(xp, dtype), copy=False)
        try:
            check_finite(Xb, xp)
            finite, nan = True, False
        except ValueError:
            finite, nan = False, bool(xp.any(xp.isnan(Xb)))
    yp = array_namespace(yb)
    if yb.shape[0] == 0:
        return finite, nan, 0.0, 0.0, True
    whole = True
    if yp.isdtype(yb.dtype, "real floating"):
        whole = bool(yp.all(yp.isfinite(yb) & (yb == yp.floor(yb))))
        if not whole:
            return finite, nan, 0.0, 0.0, False
    return finite, nan, float(yp.min(yb)), float(yp.max(yb)), whole


def _weight_summary(wb: Array, dtype: str) -> tuple[str | None, Fraction]:
    """``(what is wrong or None, exact sum)`` of one block's weights as the model uses them (in
    ``dtype``); the error text has a ``{block}`` field for the block's place."""
    w = np.asarray(to_numpy(wb)).astype(np.float64, copy=False)
    if not np.all(np.isfinite(w)):
        return "contains NaN or infinity ({block}); weights must be finite", Fraction(0)
    if np.any(w < 0):
        return "contains negative values ({block}); weights must be >= 0", Fraction(0)
    used = w.astype(dtype).astype(np.float64)
    if not np.all(np.isfinite(used)):
        too_large = f"contains a value too large for {dtype} ({{block}})"
        return f"{too_large}; scale the weights down (only their ratios matter)", Fraction(0)
    return None, exact_sum(used)


def _block_check(
    Xb: Array, yb: Array, wb: Array | None, dtype: str
) -> tuple[tuple[bool, bool, float, float, bool], tuple[str | None, Fraction] | None]:
    """:func:`_block_summary` of ``(Xb, yb)`` and :func:`_weight_summary` of ``wb``, if any."""
    return _block_summary(Xb, yb, dtype), None if wb is None else _weight_summary(wb, dtype)


def _validate(
    model: SoftmaxXP,
    pairs: list[tuple[da.Array, da.Array, str, str]],
    weights: da.Array | None = None,
) -> list[Fraction] | None:
    """Check every block of every ``(X, y)`` pair, and the ``weights`` of the first pair's
    blocks, in one ``dask.compute``: finite features, whole labels in ``[0, num_classes)``,
    weights finite, ``>= 0`` and not all 0. The first bad block is named in the error. Returns
    the exact sum of each block's weights (None without weights)."""
    tasks, where = [], []
    for p, (X, y, xname, yname) in enumerate(pairs):
        starts = np.cumsum((0, *X.chunks[0]))
        x_blocks = X.to_delayed().ravel()
        w_blocks = [None] * len(x_blocks)
        if p == 0 and weights is not None:
            w_blocks = list(weights.to_delayed())
        blocks = zip(x_blocks, y.to_delayed(), w_blocks, strict=True)
        for i, (xb, yb, wb) in enumerate(blocks):
            tasks.append(dask.delayed(_block_check)(xb, yb, wb, model.dtype_name))
            where.append((xname, yname, f"block {i}, rows {starts[i]}-{starts[i + 1] - 1}"))
    summaries = dask.compute(*tasks)
    k = model.num_classes
    valid = f"class labels must be integers in [0, {k})"
    sums = []
    for ((finite, nan, low, high, whole), weight), (xname, yname, block) in zip(
        summaries, where, strict=True
    ):
        if nan:
            raise ValueError(f"Input {xname} contains NaN ({block}).")
        if not finite:
            raise ValueError(
                f"Input {xname} contains infinity or a value too large for {model.dtype_name} "
                f"({block})."
            )
        if not whole:
            raise ValueError(f"{yname} contains a NaN or non-integer label ({block}); {valid}.")
        if low < 0:
            raise ValueError(f"{yname} contains the negative label {low:g} ({block}); {valid}.")
        if high >= k:
            raise ValueError(
                f"{yname} contains the label {high:g} ({block}), but {_MODEL} has "
                f"num_classes={k}; {valid}."
            )
        if weight is not None:
            problem, total = weight
            if problem is not None:
                raise ValueError(f"sample_weight {problem.format(block=block)}.")
            sums.append(total)
    if weights is None:
        return None
    if sum(sums) == 0:
        raise ValueError("sample_weight is all zero; at least one sample needs a positive weight.")
    return sums


# -- worker processes ------------------------------------------------------------------------------
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


# -- one block's work ------------------------------------------------------------------------------
def aligned(x: Array) -> Array:
    """``x``, copied to an aligned C-contiguous array when it is a NumPy array that is not.

    Blocks that arrive by transfer between workers can sit at unaligned offsets of a message
    buffer, where NumPy's ``take`` is many times slower; the copy costs one pass over the block.
    """
    if isinstance(x, np.ndarray) and not (x.flags.aligned and x.flags.c_contiguous):
        return np.require(x, requirements=["A", "C"])
    return x


def _on_block(Xb: Array, yb: Array | None, dtype: str) -> tuple[Any, Array, Array | None]:
    """The block's namespace, its features (aligned, in ``dtype``) and its int64 labels."""
    xp = array_namespace(Xb)
    Xb = xp.astype(aligned(Xb), getattr(xp, dtype), copy=False)
    if yb is not None:
        yb = xp.astype(xp.asarray(yb, device=device_of(Xb)), xp.int64, copy=False)
    return xp, Xb, yb


def _to(xp: Any, like: Array, *arrays: Array | None) -> list[Array | None]:
    """Host (or other) arrays moved to ``like``'s namespace, device and dtype."""
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


def _sgd_block(
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
        return previous[0], xp.zeros((0,), dtype=Xb.dtype, device=device_of(Xb))
    W, b, velocity = previous[0]
    W, b = _to(xp, Xb, W, b)
    if velocity is not None:
        velocity = tuple(_to(xp, Xb, *velocity))
    order = xp.asarray(order, device=device_of(Xb))
    weights = None
    if wb is not None:
        mean = xp.asarray(weight_mean, dtype=Xb.dtype, device=device_of(Xb))
        weights = _block_weights(xp, Xb, wb) / mean
    with quiet_float_warnings():
        W, b, velocity, losses = sgd_epoch(
            Xb, yb, order, W, b, velocity, xp=xp, weights=weights, **settings
        )
    return (W, b, velocity), losses


def _logits(Xb: Array, params: tuple[Array, Array], dtype: str) -> tuple[Any, Array]:
    xp, Xb, _ = _on_block(Xb, None, dtype)
    check_finite(Xb, xp)
    W, b = _to(xp, Xb, *params)
    return xp, Xb @ W + b


def _proba_block(Xb: Array, params: tuple[Array, Array], dtype: str) -> Array:
    xp, z = _logits(Xb, params, dtype)
    return softmax(z, axis=-1, xp=xp)


def _predict_block(Xb: Array, params: tuple[Array, Array], dtype: str) -> Array:
    xp, z = _logits(Xb, params, dtype)
    return xp.argmax(z, axis=1)


# -- training ----------------------------------------------------------------------------------------
def train(
    model: SoftmaxXP,
    X: da.Array,
    y: Any,
    X_val: Any,
    y_val: Any,
    *,
    epochs: int,
    batch_size: int,
    verbose: int,
    block_rows: int | None,
    solver: str,
    tol: float,
    sample_weight: Any,
    checkpoint: Any,
    resume_from: Any,
    callback: Callable[[int, History], None] | None,
) -> History:
    """:meth:`SoftmaxXP.train` on a Dask ``X``: block SGD epoch by epoch (see the module doc),
    or L-BFGS whose every evaluation is one reduction over the blocks."""
    X = _features_layout(X, model.input_dim, "X", known=True)
    if block_rows is not None:
        X = X.rechunk({0: block_rows})
    y = _labels_layout(y, X.chunks[0], "y")
    w = _weights_layout(sample_weight, X.chunks[0])
    pairs = [(X, y, "X", "y")]
    val = None
    if X_val is not None and isinstance(X_val, da.Array):
        X_val = _features_layout(X_val, model.input_dim, "X_val", known=True)
        y_val = _labels_layout(y_val, X_val.chunks[0], "y_val")
        pairs.append((X_val, y_val, "X_val", "y_val"))
        val = (X_val, y_val)
    elif X_val is not None:
        X_val = model._features(X_val, "X_val")
        val = (X_val, model._labels(y_val, X_val.shape[0], "y_val"))
    sums = _validate(model, pairs, w)
    n = X.shape[0]
    model._blocks = None if solver == "lbfgs" else list(X.chunks[0])
    model._solver = solver
    model._start_run(resume_from, epochs, batch_size, n)
    after_epoch = model._after_epoch(checkpoint, batch_size, n, epochs, verbose, callback)
    val_hits = None if val is None else _val_hits(model, val)
    if solver == "lbfgs":
        objective = _objective(model, X, y, w, sums)
        model._lbfgs(X, y, None, None, epochs, tol, after_epoch, objective, val_hits)
        return model.history_
    weights = _sgd_weights(w, sums, n)
    for epoch in range(model.epoch_ + 1, epochs + 1):
        _epoch(model, X, y, val_hits, epoch, batch_size, weights)
        after_epoch()
    return model.history_


def more_epochs(
    model: SoftmaxXP, X: da.Array, y: Any, epochs: int, batch_size: int, sample_weight: Any
) -> None:
    """``epochs`` more block-wise SGD passes of the current run (``partial_fit`` on Dask)."""
    X = _features_layout(X, model.input_dim, "X", known=True)
    y = _labels_layout(y, X.chunks[0], "y")
    w = _weights_layout(sample_weight, X.chunks[0])
    weights = _sgd_weights(w, _validate(model, [(X, y, "X", "y")], w), X.shape[0])
    model._zero_velocity()
    for epoch in range(model.epoch_ + 1, model.epoch_ + epochs + 1):
        _epoch(model, X, y, None, epoch, batch_size, weights)


SgdWeights = tuple[da.Array, float]  # the weights, chunked like X, and their exact mean


def _sgd_weights(w: da.Array | None, sums: list[Fraction] | None, n: int) -> SgdWeights | None:
    """The weights and their exact mean (correctly rounded), which SGD divides them by."""
    return None if w is None or sums is None else (w, float(sum(sums) / n))


def _val_hits(model: SoftmaxXP, val: tuple[Any, Any]) -> ValHits:
    """Validation hits of weights ``(W, b)``: a reduction for Dask data, else in memory."""
    if not isinstance(val[0], da.Array):
        return model._val_hits_of(val)

    def count(W: Array, b: Array) -> Array:
        return model._asarray(_hit_count(model, *val, W, b), model.xp.int64)

    return count, val[0].shape[0]


def _loss_sums(
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
    w = None if wb is None else _block_weights(xp, Xb, wb)
    mass = rows if w is None else xp.sum(w)
    with quiet_float_warnings():
        loss, dW, db = loss_and_grads(Xb, yb, W, b, 0.0, sample_weight=w, xp=xp)
    return to_numpy(loss * mass), to_numpy(dW * mass), to_numpy(db * mass), rows


def _add(parts: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The sum of block terms, in block order."""
    total = parts[0]
    for part in parts[1:]:
        total = tuple(a + b for a, b in zip(total, part, strict=True))
    return total


def _objective(
    model: SoftmaxXP,
    X: da.Array,
    y: da.Array,
    w: da.Array | None = None,
    sums: list[Fraction] | None = None,
) -> Callable[[Array, Array], tuple[Array, Array, Array]]:
    """``objective(W, b) -> (loss, dW, db)`` of the whole data set, each call one reduction:
    ``loss = sum l_i / n + 0.5 reg ||W||^2``, ``dW = X^T (P - Y) / n + reg W``,
    ``db = sum (p_i - y_i) / n``. With weights ``w`` (and their blocks' exact ``sums``), the
    sums are weighted and ``n`` is ``sum w_i``; blocks of weight 0 are not read. Persist ``X``
    first if it fits the cluster's memory, or each evaluation reads it again."""
    x_blocks, y_blocks = X.to_delayed().ravel(), y.to_delayed()
    n, reg = X.shape[0], model.reg
    blocks = [(xb, yb, None) for xb, yb in zip(x_blocks, y_blocks, strict=True)]
    if w is not None and sums is not None:
        n = float(sum(sums))
        blocks = [
            (xb, yb, wb)
            for xb, yb, wb, total in zip(x_blocks, y_blocks, w.to_delayed(), sums, strict=True)
            if total > 0
        ]

    def objective(W: Array, b: Array) -> tuple[Array, Array, Array]:
        params = _params(model, W, b)
        parts = [
            dask.delayed(_loss_sums, pure=False)(xb, yb, params, model.dtype_name, wb)
            for xb, yb, wb in blocks
        ]
        loss, dW, db, _ = dask.compute(dask.delayed(_add)(parts))[0]
        scale = model._asarray(1.0 / n)
        loss = model._asarray(loss) * scale + model._asarray(0.5 * reg) * model.xp.sum(W * W)
        dW = model._asarray(dW) * scale + model._asarray(reg) * W
        return loss, dW, model._asarray(db) * scale

    return objective


def _epoch(
    model: SoftmaxXP,
    X: da.Array,
    y: da.Array,
    val_hits: ValHits | None,
    epoch: int,
    batch_size: int,
    weights: SgdWeights | None = None,
) -> None:
    """One epoch: the chain of block tasks (see :func:`_chain`), then committed."""
    from .model import _batch_sizes

    start = time.perf_counter()
    rng = _random.clone(model._rng)  # advanced only when the epoch is committed
    lr = model._step_size(epoch)
    rows = X.chunks[0]
    visit, orders = _random.block_plan(rng, list(rows))
    settings = dict(
        lr=lr, momentum=model.momentum, reg=model.reg, batch_size=batch_size, dtype=model.dtype_name
    )
    w = None
    if weights is not None:
        w, settings["weight_mean"] = weights
    velocity = None if model._velocity is None else tuple(map(to_numpy, model._velocity))
    start_params = (to_numpy(model.W), to_numpy(model.b), velocity)
    W, b, velocity, parts = _chain(X, y, w, visit, orders, start_params, settings)
    sizes = [s for i in visit for s in _batch_sizes(rows[i], batch_size)]
    W, b = model._asarray(to_numpy(W)), model._asarray(to_numpy(b))
    if velocity is not None:
        velocity = tuple(model._asarray(to_numpy(v)) for v in velocity)
    batch_losses = model._asarray(np.concatenate([to_numpy(p) for p in parts]))
    with quiet_float_warnings():
        model._commit(
            epoch, start, lr, rng, W, b, velocity, batch_losses, model._asarray(sizes), X.shape[0],
            val_hits,
        )  # fmt: skip


def _client() -> Any:
    """The ``distributed.Client`` that ``dask.compute`` would use now, or None."""
    if dask.config.get("scheduler", None) not in (None, "dask.distributed"):
        return None
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _chain(
    X: da.Array,
    y: da.Array,
    w: da.Array | None,
    visit: list[int],
    orders: list[np.ndarray],
    params: Params,
    settings: dict[str, Any],
) -> tuple[Array, Array, tuple[Array, Array] | None, list[Array]]:
    """Run the block tasks in ``visit`` order; ``(W, b, velocity, batch losses per block)``.
    Each block's weights (``w``'s blocks, if any) are loaded with its rows."""
    x_blocks, y_blocks = X.to_delayed().ravel(), y.to_delayed()
    w_blocks = [None] * len(x_blocks) if w is None else list(w.to_delayed())
    blocks = [list(block) for block in zip(x_blocks, y_blocks, w_blocks, strict=True)]
    client = _client()
    result: Any = (params, None)
    if client is None:  # local scheduler: one block in memory at a time
        parts = []
        for i, order in zip(visit, orders, strict=True):
            xb, yb, wb = dask.compute(*blocks[i])
            result = _sgd_block(xb, yb, wb, order, result, **settings)
            parts.append(result[1])
        return (*result[0], parts)
    from distributed import wait

    chain = []
    for step, (i, order) in enumerate(zip(visit, orders, strict=True)):
        if step > PREFETCH:  # load this block once the chain is PREFETCH blocks behind it
            wait(chain[step - PREFETCH - 1])
        xb, yb, wb = client.compute(blocks[i])
        result = client.submit(_sgd_block, xb, yb, wb, order, result, pure=False, **settings)
        chain.append(result)
    results = client.gather(chain)
    return (*results[-1][0], [part for _, part in results])


# -- inference -------------------------------------------------------------------------------------
def _params(model: SoftmaxXP, W: Array = None, b: Array = None) -> Any:
    """The weights as one graph key: sent to each worker once, whatever the number of blocks."""
    W = model.W if W is None else W
    b = model.b if b is None else b
    return dask.delayed((to_numpy(W), to_numpy(b)), traverse=False)


def predict_proba(model: SoftmaxXP, X: da.Array) -> da.Array:
    """Lazy ``softmax(X W + b)`` block by block, chunked like the rows of ``X``."""
    X = _features_layout(X, model.input_dim, "X", known=False)
    params = _params(model)
    return X.map_blocks(
        _proba_block,
        params,
        model.dtype_name,
        chunks=(X.chunks[0], (model.num_classes,)),
        dtype=model.dtype_name,
        meta=X._meta.astype(model.dtype_name),
        name=_key_name("softmax_xp-predict_proba", X, params, model.dtype_name),
    )


def predict(model: SoftmaxXP, X: da.Array) -> da.Array:
    """Lazy most probable class (int64) of each row of ``X``."""
    X = _features_layout(X, model.input_dim, "X", known=False)
    params = _params(model)
    return _classes(model, X, params, name=_key_name("softmax_xp-predict", X, params))


def _key_name(prefix: str, *inputs: Any) -> str:
    """``prefix`` and a hash of ``inputs``: map_blocks uses ``name`` as the output's whole key
    name, so outputs of other data or other weights must not share it."""
    return f"{prefix}-{dask.base.tokenize(*inputs)}"


def _classes(model: SoftmaxXP, X: da.Array, params: Any, name: str | None = None) -> da.Array:
    """Lazy most probable class (int64) of each row of a checked ``X`` under ``params``."""
    return X.map_blocks(
        _predict_block,
        params,
        model.dtype_name,
        chunks=(X.chunks[0],),
        drop_axis=1,
        dtype=np.int64,
        meta=X._meta.astype(np.int64).reshape((0,)),
        name=name,
    )


def _hit_count(model: SoftmaxXP, X: da.Array, y: Any, W: Array = None, b: Array = None) -> int:
    """How many rows of ``(X, y)`` the weights ``(W, b)`` (default: the model's) classify right:
    one reduction."""
    X = _features_layout(X, model.input_dim, "X", known=True)
    y = _labels_layout(y, X.chunks[0], "y")
    labels = _classes(model, X, _params(model, W, b))
    hits = da.sum(labels == y.astype(np.int64))
    return int(hits.compute())


def score(model: SoftmaxXP, X: da.Array, y: Any) -> float:
    """Accuracy of :func:`predict` on ``(X, y)``, computed as one reduction over the blocks."""
    return _hit_count(model, X, y) / X.shape[0]
