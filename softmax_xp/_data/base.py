"""What every source of training rows provides, and the settings the sources are given.

Keras's ``EpochIterator`` draws the line this package keeps: the data owns ``X``, ``y``, the
sample weights, the shuffle and the batching; the run owns the epochs, the callbacks, the
validation and the checkpoints. A source gets settings, never the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Protocol

import numpy as np

from .._backend import Backend

__all__ = ["DataSettings", "Objective", "SgdStep", "TrainingData", "Validation"]

Array = Any
Params = tuple[Array, Array, "tuple[Array, Array] | None"]  # W, b, velocity
Objective = Callable[[Array, Array], tuple[Array, Array, Array]]


@dataclass(frozen=True)
class DataSettings:
    """Where and how a model holds its data: backend, dtype name, and its shape ``d x K``."""

    backend: Backend
    dtype_name: str
    input_dim: int
    num_classes: int

    @property
    def dtype(self) -> Any:
        return getattr(self.backend.xp, self.dtype_name)


@dataclass(frozen=True)
class SgdStep:
    """One SGD epoch's settings: its step size, momentum, penalty strength, batch size, the
    penalty's L1 share (0: L2, 1: L1), whether the bias is trained and the product layout; the
    keywords of :func:`softmax_xp.solvers.sgd.sgd_epoch` (:meth:`keywords`). ``on_step`` is the
    thread chooser's per-step hook (:mod:`softmax_xp._threads`), not among the keywords: only
    sources that run dense rows in this process pass it on."""

    lr: float
    momentum: float
    reg: float
    batch_size: int
    l1_ratio: float = 0.0
    fit_intercept: bool = True
    layout: str = "row"
    on_step: Callable[[], None] | None = None

    def keywords(self) -> dict[str, Any]:
        """The settings as ``sgd_epoch``'s keyword arguments (``on_step`` left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "on_step"}


class TrainingData(Protocol):
    """A source of training rows.

    ``n`` rows, visited in ``blocks`` (row counts; None: one global shuffle); ``fingerprint()``
    identifies the data for checkpoints; ``sgd_epoch`` runs one epoch from ``(W, b, velocity)``,
    drawing its shuffle from ``rng``, and returns the new parameters with the per-batch losses
    and batch sizes, all on the model's device and unread; ``objective(reg)`` is the full-batch
    loss and gradients for L-BFGS.
    """

    n: int

    @property
    def blocks(self) -> list[int] | None: ...

    def fingerprint(self) -> dict[str, Any] | None: ...

    def sgd_epoch(
        self,
        W: Array,
        b: Array,
        velocity: tuple[Array, Array] | None,
        rng: np.random.Generator,
        step: SgdStep,
    ) -> tuple[Array, Array, tuple[Array, Array] | None, Array, Array]: ...

    def objective(self, reg: float) -> Objective: ...


class Validation(Protocol):
    """Held-out rows: ``evaluate(W, b)`` is how many of the ``n`` rows the weights classify
    right (a 0-d integer array) and their summed cross-entropy (0-d, the weights' dtype), both
    on the model's device and not read. Weighted rows (``total``, their summed weight, is not
    None) give both as sums weighted by the rows' weights, in the weights' dtype; the accuracy
    and the mean loss are then these over ``total``, else over ``n``."""

    n: int
    total: float | None

    def evaluate(self, W: Array, b: Array) -> tuple[Array, Array]: ...
