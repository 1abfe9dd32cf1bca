"""Training rows in a Dask array: its row chunks are the blocks, visited where they live.

The only place besides :mod:`.dask_checks` and :mod:`.dask_tasks` that imports dask. A Dask
``X`` must be chunked by rows only, with known chunk sizes. Each block is worked on in its own
array namespace (NumPy or CuPy chunks); only the parameters travel between tasks: host arrays
into an epoch's first block task, then the arrays each task returns.

An SGD epoch is a chain of block tasks, each running :func:`softmax_xp.solvers.sgd.sgd_epoch` on
one block and handing ``(W, b, velocity)`` to the next, in the order
:func:`softmax_xp._random.block_plan` draws (the same draws as in-memory ``shuffle="blocks"``,
so the weights are the same).

With an active ``distributed.Client`` the chain runs on its workers as futures: each block is
loaded (``client.compute`` of its chunk) where the scheduler puts it and the block's task runs
next to it; loading block ``s`` is submitted only once task ``s - PREFETCH - 1`` is done, so at
most ``PREFETCH + 1`` blocks of ``X`` are in the cluster's memory at once, however large ``X``
is, while the next block loads during the current one's SGD. Without a client, Dask's local
scheduler loads one block at a time and its task runs in this process, under the same thread
rule as an in-memory epoch, so it gives the in-memory weights bit for bit.

Sample weights (a Dask array, rechunked to ``X``'s rows, or an in-memory one cut into them)
travel with their block. The validation pass also sums each block's weights exactly: SGD
divides every weight by their exact mean, as in memory; L-BFGS divides the summed block terms by
the total weight, and skips blocks whose weights are all 0.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import dask
import dask.array as da
import numpy as np

from .. import _random
from .._backend import asarray_on, index_dtype, to_numpy
from .._inference import KINDS
from .._sparse import dense_namespace, is_sparse
from .._weights import class_weights
from .base import DataSettings, Objective, Params, SgdStep
from .dask_checks import features_layout, labels_layout, validate, weights_layout
from .dask_tasks import (
    aligned,
    class_index,
    evaluation_block,
    loss_sums,
    output_block,
    sgd_block,
    weigh_by_class,
)
from .memory import InMemoryValidation, batch_sizes
from .sparse import SparseValidation

__all__ = ["PREFETCH", "DaskData", "DaskValidation", "aligned", "predictions", "score", "sources"]

Array = Any
PREFETCH = 1  # blocks loaded ahead of the one the SGD chain works on
# The model's method of each output, which names the output's graph keys.
_METHODS = {
    "logits": "decision_function",
    "proba": "predict_proba",
    "log_proba": "predict_log_proba",
    "labels": "predict",
}


def sources(
    X: da.Array,
    y: Any,
    X_val: Any,
    y_val: Any,
    settings: DataSettings,
    *,
    sample_weight: Any = None,
    block_rows: int | None = None,
    class_weight: dict[int, float] | str | None = None,
    val_sample_weight: Any = None,
) -> tuple[DaskData, DaskValidation | InMemoryValidation | SparseValidation | None]:
    """The training source of a Dask ``X`` and the validation of ``X_val`` (Dask or in memory),
    both checked in one pass over their blocks. ``class_weight="balanced"`` first counts the
    classes in one pass over ``y`` (the labels only). ``val_sample_weight`` is for an
    in-memory ``X_val`` only (not supported with a Dask ``X_val`` yet)."""
    X = features_layout(X, settings.input_dim, "X", known=True)
    if block_rows is not None:
        X = X.rechunk({0: block_rows})
    y = labels_layout(y, X.chunks[0], "y")
    w = weights_layout(sample_weight, X.chunks[0])
    if class_weight is not None:
        w = _times_class_weight(w, y, class_weight, settings.num_classes)
    pairs = [(X, y, "X", "y")]
    val: DaskValidation | InMemoryValidation | SparseValidation | None = None
    if isinstance(X_val, da.Array):
        if val_sample_weight is not None:
            raise NotImplementedError(
                "val_sample_weight is not supported with a Dask X_val yet; compute X_val and "
                "y_val into memory (they are held-out rows, usually small), or leave the "
                "validation unweighted."
            )
        X_val = features_layout(X_val, settings.input_dim, "X_val", known=True)
        y_val = labels_layout(y_val, X_val.chunks[0], "y_val")
        pairs.append((X_val, y_val, "X_val", "y_val"))
        val = DaskValidation(X_val, y_val, settings)
    elif is_sparse(X_val):
        val = SparseValidation(X_val, y_val, settings, val_sample_weight)
    elif X_val is not None:
        val = InMemoryValidation(X_val, y_val, settings, val_sample_weight)
    checked = validate(pairs, settings, w)
    return DaskData(X, y, w, checked.weight_sums, checked.fingerprint, settings), val


class DaskData:
    """Checked Dask rows ``(X, y)`` and weights ``w`` chunked like them (see :func:`sources`)."""

    def __init__(
        self,
        X: da.Array,
        y: da.Array,
        w: da.Array | None,
        weight_sums: list[Fraction] | None,
        fingerprint: dict[str, Any],
        settings: DataSettings,
    ):
        self.X, self.y, self.w, self.settings = X, y, w, settings
        self.n = X.shape[0]
        self.blocks = list(X.chunks[0])
        self._sums, self._fingerprint = weight_sums, fingerprint

    def fingerprint(self) -> dict[str, Any]:
        return self._fingerprint

    def _blocks(self) -> list[list[Any]]:
        """``[X block, y block, weights block or None]`` of every block, as delayed values."""
        x_blocks, y_blocks = self.X.to_delayed().ravel(), self.y.to_delayed()
        w_blocks = [None] * len(x_blocks) if self.w is None else list(self.w.to_delayed())
        return [list(block) for block in zip(x_blocks, y_blocks, w_blocks, strict=True)]

    def sgd_epoch(
        self,
        W: Array,
        b: Array,
        velocity: tuple[Array, Array] | None,
        rng: np.random.Generator,
        step: SgdStep,
    ) -> tuple[Array, Array, tuple[Array, Array] | None, Array, Array]:
        visit, orders = _random.block_plan(rng, self.blocks)
        settings: dict[str, Any] = dict(step.keywords(), dtype=self.settings.dtype_name)
        if self._sums is not None:  # SGD's weights have mean 1 (exact, as in memory)
            settings["weight_mean"] = float(sum(self._sums) / self.n)
        host_velocity = None if velocity is None else (to_numpy(velocity[0]), to_numpy(velocity[1]))
        start = (to_numpy(W), to_numpy(b), host_velocity)
        W, b, velocity, parts = _chain(self._blocks(), visit, orders, start, settings)
        on_device = self._on_device
        if velocity is not None:
            velocity = (on_device(velocity[0]), on_device(velocity[1]))
        losses = on_device(np.concatenate([to_numpy(p) for p in parts]))
        sizes = [s for i in visit for s in batch_sizes(self.blocks[i], step.batch_size)]
        return on_device(W), on_device(b), velocity, losses, on_device(sizes)

    def _on_device(self, x: Any) -> Array:
        return asarray_on(self.settings.backend, to_numpy(x), self.settings.dtype)

    def objective(self, reg: float) -> Objective:
        """``objective(W, b) -> (loss, dW, db)`` of the whole data set, each call one reduction:
        ``loss = sum l_i / n + 0.5 reg ||W||^2``, ``dW = X^T (P - Y) / n + reg W``,
        ``db = sum (p_i - y_i) / n``. With weights, the sums are weighted and ``n`` is
        ``sum w_i``; blocks of weight 0 are not read. Persist ``X`` first if it fits the
        cluster's memory, or each evaluation reads it again."""
        blocks, n = self._blocks(), float(self.n)
        if self._sums is not None:
            n = float(sum(self._sums))
            blocks = [block for block, total in zip(blocks, self._sums, strict=True) if total > 0]
        on_device, xp, dtype = self._on_device, self.settings.backend.xp, self.settings.dtype_name

        def objective(W: Array, b: Array) -> tuple[Array, Array, Array]:
            params = _params(W, b)
            parts = [
                dask.delayed(loss_sums, pure=False)(xb, yb, params, dtype, wb)
                for xb, yb, wb in blocks
            ]
            loss, dW, db, _ = dask.compute(dask.delayed(_add)(parts))[0]
            scale = on_device(1.0 / n)
            loss = on_device(loss) * scale + on_device(0.5 * reg) * xp.sum(W * W)
            return loss, on_device(dW) * scale + on_device(reg) * W, on_device(db) * scale

        return objective


class DaskValidation:
    """Validation rows in a Dask array: each count is one reduction over its blocks."""

    total: float | None = None  # unweighted (see Validation)

    def __init__(self, X: da.Array, y: da.Array, settings: DataSettings):
        self.X, self.y, self.settings = X, y, settings
        self.n = X.shape[0]

    def evaluate(self, W: Array, b: Array) -> tuple[Array, Array]:
        params, dtype = _params(W, b), self.settings.dtype_name
        parts = dask.compute(
            *[
                dask.delayed(evaluation_block)(xb, yb, params, dtype)
                for xb, yb in zip(self.X.to_delayed().ravel(), self.y.to_delayed(), strict=True)
            ]
        )
        backend = self.settings.backend
        count = index_dtype(backend.xp, backend.device)
        hits = asarray_on(backend, sum(part[0] for part in parts), count)
        return hits, asarray_on(backend, sum(part[1] for part in parts), self.settings.dtype)


def _times_class_weight(
    w: da.Array | None, y: da.Array, class_weight: dict[int, float] | str, k: int
) -> Array:
    """Each row's weight times its class's, block by block, as in memory."""
    counts = np.zeros(k, dtype=np.int64)
    if isinstance(class_weight, str):  # "balanced": count the classes first
        counts = da.bincount(
            da.map_blocks(class_index, y, k, dtype=np.int64), minlength=k
        ).compute()
    weights = class_weights(class_weight, counts)
    if w is None:
        return da.map_blocks(weigh_by_class, y, None, weights, dtype=np.float64)
    return da.map_blocks(weigh_by_class, y, w, weights, dtype=np.float64)


def _add(parts: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The sum of block terms, in block order."""
    total = parts[0]
    for part in parts[1:]:
        total = tuple(a + b for a, b in zip(total, part, strict=True))
    return total


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
    blocks: list[list[Any]],
    visit: list[int],
    orders: list[np.ndarray],
    params: Params,
    settings: dict[str, Any],
) -> tuple[Array, Array, tuple[Array, Array] | None, list[Array]]:
    """Run the block tasks in ``visit`` order; ``(W, b, velocity, batch losses per block)``.
    Each block's weights (if any) are loaded with its rows."""
    client = _client()
    result: Any = (params, None)
    if client is None:  # local scheduler: one block in memory at a time, its task here
        parts = []
        for i, order in zip(visit, orders, strict=True):
            xb, yb, wb = dask.compute(*blocks[i])
            result = sgd_block(xb, yb, wb, order, result, **settings)
            parts.append(result[1])
        return (*result[0], parts)
    from distributed import wait

    chain: list[Any] = []
    for step, (i, order) in enumerate(zip(visit, orders, strict=True)):
        if step > PREFETCH:  # load this block once the chain is PREFETCH blocks behind it
            wait(chain[step - PREFETCH - 1])
        xb, yb, wb = client.compute(blocks[i])
        result = client.submit(sgd_block, xb, yb, wb, order, result, pure=False, **settings)
        chain.append(result)
    results = client.gather(chain)
    return (*results[-1][0], [part for _, part in results])


# -- inference -------------------------------------------------------------------------------------
def _params(W: Array, b: Array) -> Any:
    """The weights as one graph key: sent to each worker once, whatever the number of blocks."""
    return dask.delayed((to_numpy(W), to_numpy(b)), traverse=False)


def predictions(kind: str, X: da.Array, W: Array, b: Array, settings: DataSettings) -> Array:
    """Lazy output ``kind`` (see :data:`softmax_xp._inference.KINDS`) of ``X`` block by block,
    chunked like its rows; a block holding NaN or infinity, or whose logits overflow, raises
    when it is computed."""
    if kind not in KINDS:
        raise ValueError(f"Unknown output {kind!r}; use one of {KINDS}.")
    X = features_layout(X, settings.input_dim, "X", known=False)
    params, dtype = _params(W, b), settings.dtype_name
    name = f"softmax_xp-{_METHODS[kind]}-{dask.base.tokenize(X, params, dtype)}"
    if kind == "labels":
        return da.map_blocks(
            output_block, X, params, dtype, kind,
            chunks=(X.chunks[0],), drop_axis=1, dtype=np.int64,
            meta=_dense_meta(X, np.int64).reshape((0,)), name=name,
        )  # fmt: skip
    return da.map_blocks(
        output_block, X, params, dtype, kind,
        chunks=(X.chunks[0], (settings.num_classes,)), dtype=dtype,
        meta=_dense_meta(X, dtype), name=name,
    )  # fmt: skip


def _dense_meta(X: da.Array, dtype: Any) -> Array:
    """An empty 2-D array of ``dtype`` in the library of ``X``'s chunks (the dense one of sparse
    chunks), as Dask's ``meta`` of an output."""
    if not is_sparse(X._meta):
        return X._meta.astype(dtype)
    xp = dense_namespace(X._meta)
    return xp.empty((0, 0), dtype=getattr(xp, np.dtype(dtype).name))


def score(X: da.Array, y: Any, W: Array, b: Array, settings: DataSettings) -> float:
    """Accuracy of ``(W, b)`` on ``(X, y)``, computed as one reduction over the blocks."""
    X = features_layout(X, settings.input_dim, "X", known=True)
    y = labels_layout(y, X.chunks[0], "y")
    labels = predictions("labels", X, W, b, settings)
    n: int = X.shape[0]
    return int(da.sum(labels == y.astype(np.int64)).compute()) / n
