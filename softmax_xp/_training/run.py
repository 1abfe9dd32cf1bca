"""The one training loop: SGD epochs or L-BFGS iterations on any data source.

A :class:`Run` gets a data source and its validation rows (:mod:`softmax_xp._data`), the
callbacks, and a ``commit`` function that makes a new :class:`TrainState` the model's (one store).
It never sees the model. Each epoch is computed from the committed state, checked (finite loss
and weights: one host read per epoch, which also reads the validation hits), and committed;
a Ctrl-C or an error in an epoch leaves the model at the last committed one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import _random
from .._backend import Backend, asarray_on, to_numpy
from .._data.base import SgdStep
from .._errors import TrainingDivergedError, quiet_float_warnings
from .._layout import product_layout
from .._threads import EpochThreads, counts_agree, epoch_threads
from ..solvers.lbfgs import minimize_lbfgs
from .callbacks import Callback
from .state import TrainState

__all__ = ["LbfgsOutcome", "Run", "Schedule"]

Array = Any
_HITS_SPLIT = 4096  # hit counts travel as (hits // 4096, hits % 4096): exact in float32 to 2**36


@dataclass(frozen=True)
class Schedule:
    """SGD's settings: step size ``lr * lr_decay ** (epoch - 1)`` in epoch ``epoch`` (1-based),
    heavy-ball ``momentum``, the penalty strength ``reg``, its L1 share ``l1_ratio``, and
    whether the bias is trained (``fit_intercept``)."""

    lr: float
    lr_decay: float
    momentum: float
    reg: float
    l1_ratio: float = 0.0
    fit_intercept: bool = True

    def step_size(self, epoch: int) -> float:
        return self.lr * self.lr_decay ** (epoch - 1)


@dataclass(frozen=True)
class LbfgsOutcome:
    """Whether L-BFGS met its stopping rule, and scipy's reason for stopping."""

    converged: bool
    message: str


class Run:
    """A training run of ``data`` from a starting state; see the module docstring."""

    def __init__(
        self,
        data: Any,
        validation: Any,
        callbacks: list[Callback],
        commit: Callable[[TrainState], None],
        backend: Backend,
    ):
        self.data, self.validation, self.callbacks = data, validation, callbacks
        self.backend, self._commit_state = backend, commit
        self.state: TrainState | None = None
        self.stop_reason: str | None = None  # why a callback ended the run early

    def stop(self, reason: str = "stopped by a callback") -> None:
        """End the run after the current epoch (for callbacks, e.g. EarlyStopping)."""
        self.stop_reason = reason

    def restore(self, W: Array, b: Array) -> None:
        """Make ``(W, b)`` (any backend's arrays) the model's weights, keeping the rest of the
        state (for callbacks: EarlyStopping's best weights)."""
        assert self.state is not None
        dtype = self.state.W.dtype
        W, b = asarray_on(self.backend, W, dtype), asarray_on(self.backend, b, dtype)
        self._store(self.state.replace(W=W, b=b))

    def _begin(self, state: TrainState) -> None:
        self._store(state)
        for callback in self.callbacks:
            callback.run = self
        for callback in self.callbacks:
            callback.on_train_begin(state)

    def _store(self, state: TrainState) -> None:
        self.state = state
        self._commit_state(state)

    def _end_epoch(self, state: TrainState) -> None:
        extras: dict[str, Array] = {}
        for callback in self.callbacks:
            extras.update(callback.checkpoint_state(state))
        state = state.replace(extras=extras)
        self._store(state)
        for callback in self.callbacks:
            callback.on_epoch_end(state)

    def _end(self) -> None:
        assert self.state is not None
        for callback in self.callbacks:
            callback.on_train_end(self.state)

    # -- SGD ---------------------------------------------------------------------------------------
    def sgd(self, state: TrainState, epochs: int, schedule: Schedule, batch_size: int) -> None:
        """SGD epochs ``state.epoch + 1 .. epochs``."""
        self._begin(state)
        threads, layout = self._threads_and_layout(state, schedule, batch_size)
        for epoch in range(state.epoch + 1, epochs + 1):
            with quiet_float_warnings(), threads.epoch() as on_step:
                state = self._sgd_epoch(
                    state, epoch, schedule, batch_size, layout, on_step, threads
                )
            self._end_epoch(state)
            if self.stop_reason is not None:
                break
        self._end()

    def _threads_and_layout(
        self, state: TrainState, schedule: Schedule, batch_size: int
    ) -> tuple[EpochThreads, str]:
        """The run's thread counts and product layout (:mod:`softmax_xp._threads`): "row" for
        sparse rows; thread counts measured only for dense rows in this process (an in-memory
        source without sparse operations; Dask's blocks run elsewhere)."""
        d, k = state.W.shape
        d = getattr(self.data, "row_width", d)  # a sparse row: its mean number of non-zeros
        n = self.data.n
        batch = min(batch_size, n)
        xp = self.backend.xp
        dtype_name = "float64" if state.W.dtype == xp.float64 else "float32"
        sparse_ops = getattr(self.data, "sparse", None)  # in memory: its sparse operations
        dense_here = sparse_ops is None and hasattr(self.data, "sparse")
        layout = product_layout(self.backend, dtype_name, sparse=sparse_ops is not None)
        weighted = getattr(self.data, "weights", None) is not None

        def agree() -> bool:
            return counts_agree(
                self.backend, dtype_name, batch, n % batch if n > batch else 0, d, k,
                momentum=schedule.momentum, l1_ratio=schedule.l1_ratio, layout=layout,
                weighted=weighted,
            )  # fmt: skip

        threads = epoch_threads(self.backend, batch, d, k, agree if dense_here else None)
        return threads, layout

    def _sgd_epoch(
        self,
        state: TrainState,
        epoch: int,
        schedule: Schedule,
        batch_size: int,
        layout: str = "row",
        on_step: Callable[[], None] | None = None,
        threads: EpochThreads | None = None,
    ) -> TrainState:
        """Epoch ``epoch`` from ``state``, checked: the new state, or TrainingDivergedError."""
        start = time.perf_counter()
        rng = _random.clone(state.rng)  # advanced only when the epoch is committed
        lr = schedule.step_size(epoch)
        step = _step(lr, schedule, batch_size, layout, on_step)
        W, b, velocity, losses, sizes = self.data.sgd_epoch(
            state.W, state.b, state.velocity, rng, step
        )
        if threads is not None:
            threads.steps_done()  # the rest of the epoch (validation) on the rule's count
        loss, accuracy, val_loss, finite = self._read_epoch(W, b, velocity, losses, sizes)
        if not (finite and abs(loss) < math.inf):
            raise self._diverged(state, epoch, lr, schedule.lr, losses, weights_finite=finite)
        used = 0 if threads is None else threads.used
        history = state.history.extended(
            loss, accuracy, time.perf_counter() - start, val_loss, threads=used
        )
        return TrainState(W, b, velocity, rng, epoch, history)

    def _read_epoch(
        self,
        W: Array,
        b: Array,
        velocity: tuple[Array, Array] | None,
        losses: Array,
        sizes: Array,
    ) -> tuple[float, float | None, float | None, bool]:
        """One host read: the epoch's mean loss ``sum(losses * sizes) / n``, its validation
        accuracy and mean cross-entropy (None without validation rows), and whether every
        parameter is finite."""
        xp = self.backend.xp
        finite = xp.all(xp.isfinite(W)) & xp.all(xp.isfinite(b))
        for v in velocity or ():
            finite = finite & xp.all(xp.isfinite(v))
        values = [xp.sum(losses * sizes), xp.astype(finite, W.dtype)]
        weighted = self.validation is not None and self.validation.total is not None
        if self.validation is not None:
            hits, val_loss = self.validation.evaluate(W, b)
            if weighted:  # a weighted sum, already in the weights' dtype
                values += [val_loss, hits]
            else:  # hits as two parts, each exact in the weights' dtype
                values += [val_loss, *(xp.astype(part, W.dtype) for part in _split_count(hits))]
        total, ok, *val_parts = to_numpy(xp.stack(values)).tolist()
        accuracy = val_loss = None
        if self.validation is not None:
            if weighted:
                val_sum, right = val_parts
            else:
                val_sum, high, low = val_parts
                right = int(high) * _HITS_SPLIT + int(low)
            accuracy, val_loss = self._validation_scores(right, val_sum)
        return total / self.data.n, accuracy, val_loss, bool(ok)

    def _validation_scores(self, right: float, loss_sum: float) -> tuple[float, float]:
        """The validation accuracy and mean loss of the (weighted) hits and summed loss: over
        the validation rows' count, or their summed weight when they are weighted."""
        assert self.validation is not None
        total = self.validation.total
        denominator = self.validation.n if total is None else total
        return right / denominator, loss_sum / denominator

    def _diverged(
        self,
        state: TrainState,
        epoch: int,
        lr: float,
        base_lr: float,
        losses: Array,
        weights_finite: bool,
    ) -> TrainingDivergedError:
        xp = self.backend.xp
        bad = ~xp.isfinite(losses)
        batch = None
        what = "the summed loss overflowed" if weights_finite else "the weights overflowed"
        if bool(xp.any(bad)):
            index = int(xp.argmax(xp.astype(bad, xp.int32)))
            batch = index + 1
            value = float(losses[index])
            what = f"the loss of batch {batch} of {losses.shape[0]} is {value}"
        kept = f"epoch {epoch - 1}" if epoch > 1 else "the start of the run"
        return TrainingDivergedError(
            f"Training diverged in epoch {epoch}: {what} (step size {lr:g}).",
            kept=f"The model keeps the weights of {kept}.",
            advice=f"Try a smaller lr, e.g. lr={base_lr / 10:g}.",
            epoch=epoch,
            batch=batch,
            history=state.history,
        )

    # -- L-BFGS ------------------------------------------------------------------------------------
    def lbfgs(
        self,
        state: TrainState,
        epochs: int,
        tol: float,
        reg: float,
        l1_ratio: float = 0.0,
        fit_intercept: bool = True,
    ) -> LbfgsOutcome:
        """L-BFGS iterations ``state.epoch + 1 .. epochs`` (fewer once converged); each accepted
        iterate is committed like an SGD epoch, so an interruption keeps the last one. The
        penalty is ``reg * (l1_ratio * ||W||_1 + 0.5 * (1 - l1_ratio) * ||W||^2)``: the data's
        objective carries the L2 part, the solver the L1 part. ``fit_intercept=False``: ``W``
        alone is optimised, ``state.b`` kept."""
        self._begin(state)
        objective = self.data.objective(reg * (1.0 - l1_ratio) if l1_ratio else reg)
        clock = [time.perf_counter()]
        first: list[float] = []

        def watched(W: Array, b: Array) -> tuple[Array, Array, Array]:
            loss, dW, db = objective(W, b)
            if not first:
                first.append(float(to_numpy(loss)))
            return loss, dW, db

        def on_iteration(_: int, W: Array, b: Array, loss: float) -> None:
            assert self.state is not None
            now = self.state
            epoch = now.epoch + 1
            if not math.isfinite(loss):
                raise _lbfgs_diverged(epoch, f"the loss is {loss}", now)
            accuracy = val_loss = None
            if self.validation is not None:
                hits, val_sum = self.validation.evaluate(W, b)
                read = to_numpy(hits)
                right = int(read) if self.validation.total is None else float(read)
                accuracy, val_loss = self._validation_scores(right, float(to_numpy(val_sum)))
            elapsed = time.perf_counter() - clock[0]
            history = now.history.extended(loss, accuracy, elapsed, val_loss)
            self._end_epoch(now.replace(W=W, b=b, epoch=epoch, history=history))
            if self.stop_reason is not None:
                raise _Stopped
            clock[0] = time.perf_counter()

        try:
            with quiet_float_warnings():
                result = minimize_lbfgs(
                    watched,
                    state.W,
                    state.b,
                    max_iter=epochs - state.epoch,
                    to_host=to_numpy,
                    tol=tol,
                    callback=on_iteration,
                    l1=reg * l1_ratio,
                    fit_intercept=fit_intercept,
                )
        except _Stopped:
            self._end()
            return LbfgsOutcome(True, str(self.stop_reason))
        if epochs > state.epoch and result.n_iter == 0 and not result.converged:
            start = first[0] if first else math.nan
            what = f"the loss at the starting weights is {start}"
            if math.isfinite(start):
                what = (
                    f"no step from the starting weights (loss {start:.6g}) has a finite, lower "
                    f"loss (scipy: {result.message})"
                )
            raise _lbfgs_diverged(state.epoch + 1, what, state, start=True)
        self._end()
        return LbfgsOutcome(result.converged, result.message)


class _Stopped(Exception):
    """A callback stopped an L-BFGS run (raised through scipy's loop to end it)."""


def _step(
    lr: float,
    schedule: Schedule,
    batch_size: int,
    layout: str = "row",
    on_step: Callable[[], None] | None = None,
) -> SgdStep:
    return SgdStep(
        lr=lr,
        momentum=schedule.momentum,
        reg=schedule.reg,
        batch_size=batch_size,
        l1_ratio=schedule.l1_ratio,
        fit_intercept=schedule.fit_intercept,
        layout=layout,
        on_step=on_step,
    )


def _lbfgs_diverged(
    epoch: int, what: str, state: TrainState, start: bool = False
) -> TrainingDivergedError:
    return TrainingDivergedError(
        f"L-BFGS {'cannot start' if start else 'diverged'} in iteration {epoch}: {what}.",
        kept=f"The model keeps {'its starting weights' if start else 'the previous iteration'};",
        advice="check the data for huge values (scale the features) and reg for a huge value.",
        epoch=epoch,
        batch=None,
        history=state.history,
    )


def _split_count(count: Array) -> tuple[Array, Array]:
    """``(count // 4096, count % 4096)``: both exact in float32 for counts below 2**36."""
    return count // _HITS_SPLIT, count % _HITS_SPLIT
