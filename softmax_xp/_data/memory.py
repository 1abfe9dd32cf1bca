"""Training rows held in memory (any backend): one global shuffle per epoch, or blocks."""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import device as device_of
from array_api_compat import is_jax_namespace

from .. import _random
from .._backend import asarray_on, index_dtype, to_numpy
from .._fingerprint import data_fingerprint
from .._inference import chunk_rows, device_evaluation, row_slices
from .._validation import as_features, as_labels, features_on_host_or_device, warn_if_unscaled
from .._weights import (
    as_sample_weight,
    class_weights,
    exact_mean,
    exact_sum,
    host_sample_weight,
)
from ..functional import loss_and_grads
from ..solvers.sgd import sgd_epoch
from .base import DataSettings, Objective, SgdStep

__all__ = [
    "InMemoryData",
    "InMemoryValidation",
    "batch_sizes",
    "features_and_labels",
    "validation_weights",
]

Array = Any


def features_and_labels(
    X: Any, y: Any, settings: DataSettings, names: tuple[str, str] = ("X", "y")
) -> tuple[Array, Array]:
    """``X`` and ``y`` checked (type, shape, finite features, labels in range; a warning for
    unscaled integer features) and moved to the model's backend."""
    xname, yname = names
    X = warn_if_unscaled(features_on_host_or_device(X, settings.input_dim, xname), xname)
    X = as_features(X, settings.backend, settings.dtype, settings.input_dim, xname)
    return X, as_labels(y, settings.backend, X.shape[0], settings.num_classes, yname)


def batch_sizes(n: int, batch_size: int) -> list[int]:
    """The sizes of the batches of ``n`` rows: ``batch_size`` each, the last one shorter."""
    return [min(batch_size, n - lo) for lo in range(0, n, batch_size)]


class InMemoryData:
    """Rows ``(X, y)`` on the model's device, optionally weighted; ``block_rows`` cuts them into
    blocks visited as a Dask array's chunks are (see :func:`softmax_xp._random.block_plan`).

    A subclass for other kinds of rows (:mod:`.sparse`) overrides :meth:`_load`,
    :meth:`_block`, :meth:`fingerprint` and ``sparse`` (the sparse library's operations that
    :func:`~softmax_xp.solvers.sgd.sgd_epoch` takes; None for dense rows).
    """

    sparse: Any = None

    def __init__(
        self,
        X: Any,
        y: Any,
        settings: DataSettings,
        *,
        sample_weight: Any = None,
        block_rows: int | None = None,
        class_weight: dict[int, float] | str | None = None,
    ):
        self.settings = settings
        self.X, self.y = self._load(X, y)
        self.n = self.X.shape[0]
        if class_weight is not None:
            sample_weight = _times_class_weight(
                sample_weight, to_numpy(self.y), class_weight, settings
            )
        self.weights = as_sample_weight(sample_weight, settings.backend, settings.dtype, self.n)
        self.blocks = None
        if block_rows is not None:
            self.blocks = [s.stop - s.start for s in row_slices(self.n, block_rows)]
        self._sgd_weights: Array | None = None
        self._sizes: dict[int, Array] = {}  # batch sizes of a global-shuffle epoch, per batch_size

    def _load(self, X: Any, y: Any) -> tuple[Array, Array]:
        return features_and_labels(X, y, self.settings)

    def _block(self, rows: slice) -> Array:
        return self.X[rows, ...]

    def fingerprint(self) -> dict[str, Any]:
        return data_fingerprint(self.settings.backend, self.X, self.y)

    def _mean_one_weights(self) -> Array | None:
        """The weights scaled to mean 1, as SGD uses them: an exact mean (one host read, once),
        so that a Dask ``X``'s blocks, whose sums add up in another order, get the same."""
        if self.weights is None or self._sgd_weights is not None:
            return self._sgd_weights
        xp, w = self.settings.backend.xp, self.weights
        mean = xp.asarray(exact_mean(w), dtype=w.dtype, device=device_of(w))
        self._sgd_weights = w / mean
        return self._sgd_weights

    def _global_sizes(self, batch_size: int) -> Array:
        """The batch sizes of a global-shuffle epoch on the device, made once per batch size."""
        if batch_size not in self._sizes:
            sizes = batch_sizes(self.n, batch_size)
            self._sizes[batch_size] = asarray_on(self.settings.backend, sizes, self.settings.dtype)
        return self._sizes[batch_size]

    def sgd_epoch(
        self,
        W: Array,
        b: Array,
        velocity: tuple[Array, Array] | None,
        rng: np.random.Generator,
        step: SgdStep,
    ) -> tuple[Array, Array, tuple[Array, Array] | None, Array, Array]:
        backend, xp = self.settings.backend, self.settings.backend.xp
        weights = self._mean_one_weights()
        on_step = step.on_step if self.sparse is None else None  # dense rows: the thread chooser
        settings = dict(step.keywords(), xp=xp, sparse=self.sparse, on_step=on_step)
        indices = index_dtype(xp, backend.device)
        if self.blocks is None:
            order = asarray_on(backend, _random.permutation(rng, self.n), indices)
            W, b, velocity, losses = sgd_epoch(
                self.X, self.y, order, W, b, velocity, weights=weights, **settings
            )
            return W, b, velocity, losses, self._global_sizes(step.batch_size)
        starts = np.cumsum([0, *self.blocks])
        visit, orders = _random.block_plan(rng, self.blocks)
        parts, sizes = [], []
        for i, order in zip(visit, orders, strict=True):
            rows = slice(int(starts[i]), int(starts[i + 1]))
            w = None if weights is None else weights[rows]
            W, b, velocity, part = sgd_epoch(
                self._block(rows),
                self.y[rows],
                asarray_on(backend, order, indices),
                W, b, velocity, weights=w, **settings,
            )  # fmt: skip
            parts.append(part)
            sizes += batch_sizes(self.blocks[i], step.batch_size)
        losses = parts[0] if len(parts) == 1 else xp.concat(parts)
        return W, b, velocity, losses, asarray_on(backend, sizes, self.settings.dtype)

    def objective(self, reg: float) -> Objective:
        X, y, w, xp = self.X, self.y, self.weights, self.settings.backend.xp
        if is_jax_namespace(xp):
            from ..solvers.sgd_jax import jax_objective

            return jax_objective(loss_and_grads, X, y, w, reg)

        def objective(W: Array, b: Array) -> tuple[Array, Array, Array]:
            return loss_and_grads(X, y, W, b, reg, sample_weight=w, xp=xp)

        return objective


def _times_class_weight(
    sample_weight: Any, y: np.ndarray, class_weight: dict[int, float] | str, settings: DataSettings
) -> Array:
    """Each row's weight times its class's: ``class_weight[y_i] * sample_weight_i`` (float64,
    on the host), as scikit-learn's estimators combine them."""
    counts = np.bincount(y, minlength=settings.num_classes)
    per_row = class_weights(class_weight, counts)[y]
    if sample_weight is None:
        return per_row
    return per_row * host_sample_weight(sample_weight, y.shape[0]).astype(np.float64)


class InMemoryValidation:
    """Validation rows on the model's device, optionally weighted (``sample_weight``, checked
    as training weights are, under the name ``val_sample_weight``)."""

    def __init__(self, X: Any, y: Any, settings: DataSettings, sample_weight: Any = None):
        self.X, self.y = features_and_labels(X, y, settings, ("X_val", "y_val"))
        self.n = self.X.shape[0]
        self.weights, self.total = validation_weights(sample_weight, settings, self.n)
        self._rows = chunk_rows(settings, None)

    def evaluate(self, W: Array, b: Array) -> tuple[Array, Array]:
        return device_evaluation(self.X, self.y, W, b, self._rows, weights=self.weights)


def validation_weights(
    sample_weight: Any, settings: DataSettings, n: int
) -> tuple[Array | None, float | None]:
    """Validation rows' weights on the model's device (checked as ``val_sample_weight``) and
    their exact sum; ``(None, None)`` without weights."""
    weights = as_sample_weight(
        sample_weight, settings.backend, settings.dtype, n, name="val_sample_weight"
    )
    return weights, None if weights is None else float(exact_sum(weights))
