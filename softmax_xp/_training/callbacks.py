"""Callbacks: what a training run calls at its start, after every epoch and at its end.

A callback is a :class:`Callback` (override any of its three hooks) or, as before, a function
``callback(epoch, history)`` called after every epoch. The run calls its callbacks in order: the
checkpoint writer first (so that a callback sees the epoch saved), then the progress printer of
``verbose=1``, then the user's. Each hook gets the run's :class:`TrainState` after the event.
:class:`EarlyStopping` is the callback that ends a run when a monitored value stops improving.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .._atomic import check_writable
from .._io import npz_path
from .._modelfile import write_checkpoint
from .._validation import check_int, check_real
from .history import History
from .state import RunInfo, TrainState

__all__ = [
    "Callback",
    "CheckpointWriter",
    "EarlyStopping",
    "FunctionCallback",
    "ProgressPrinter",
    "RunControl",
    "as_callbacks",
]


class RunControl(Protocol):
    """What a callback may ask of the run it is in (:class:`softmax_xp._training.run.Run`)."""

    def stop(self, reason: str = ...) -> None: ...

    def restore(self, W: Any, b: Any) -> None: ...


class Callback:
    """Base class of training callbacks; every hook does nothing until overridden.

    ``on_train_begin(state)`` before the first epoch of a run (``state.epoch`` is that of the
    checkpoint when resuming), ``on_epoch_end(state)`` after every completed epoch (or L-BFGS
    iteration), ``on_train_end(state)`` after the last one, when the run ends without an error.
    An exception raised in a hook ends the run; the model keeps its last complete epoch.

    During a run, ``self.run`` is the run: ``self.run.stop()`` ends it after the current epoch,
    ``self.run.restore(W, b)`` makes other weights the model's (as Keras callbacks use their
    ``model``). A callback that must continue exactly after a resume returns the arrays it needs
    from ``checkpoint_state(state)`` (called after every epoch, before the checkpoint is
    written) and finds them again in ``state.extras`` in ``on_train_begin``.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp import Callback, SoftmaxXP
    >>> class Epochs(Callback):
    ...     def on_epoch_end(self, state):
    ...         print("epoch", state.epoch, "of the run; History has", len(state.history))
    >>> X, y = np.eye(4), np.array([0, 1, 0, 1])
    >>> _ = SoftmaxXP(4, 2, backend="numpy", seed=0).train(X, y, epochs=2, callback=Epochs())
    epoch 1 of the run; History has 1
    epoch 2 of the run; History has 2
    """

    run: RunControl | None = None

    def checkpoint_state(self, state: TrainState) -> dict[str, Any]:
        """Arrays shaped like ``W`` or ``b`` to keep in the checkpoint of ``state``'s epoch,
        by names unique to this callback; none by default.

        Examples
        --------
        >>> Callback().checkpoint_state(state=None)
        {}
        """
        return {}

    def on_train_begin(self, state: TrainState) -> None:
        """Called once, before the run's first epoch.

        Examples
        --------
        >>> Callback().on_train_begin(state=None)  # does nothing until overridden
        """

    def on_epoch_end(self, state: TrainState) -> None:
        """Called after every completed epoch, with the new state.

        Examples
        --------
        >>> Callback().on_epoch_end(state=None)  # does nothing until overridden
        """

    def on_train_end(self, state: TrainState) -> None:
        """Called once, after the run's last epoch.

        Examples
        --------
        >>> Callback().on_train_end(state=None)  # does nothing until overridden
        """


class FunctionCallback(Callback):
    """A function ``callback(epoch, history)``, called after every epoch."""

    def __init__(self, function: Callable[[int, History], None]):
        self.function = function

    def on_epoch_end(self, state: TrainState) -> None:
        self.function(state.epoch, state.history)


class CheckpointWriter(Callback):
    """Writes the state, the model's hyperparameters and the run's settings to ``path`` after
    every epoch, atomically. A path that cannot be written fails when the writer is made."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        hyperparameters: dict[str, Any],
        run: RunInfo,
        trained_on: str,
    ):
        check_writable(npz_path(path))
        self.path, self.hyperparameters, self.trained_on = path, hyperparameters, trained_on
        self.info = run

    def on_epoch_end(self, state: TrainState) -> None:
        checkpoint = state.to_checkpoint(self.hyperparameters, self.info)
        write_checkpoint(
            self.path,
            checkpoint,
            trained_on=self.trained_on,
            blocks=checkpoint.blocks,
            data=checkpoint.data,
        )


class ProgressPrinter(Callback):
    """One line per epoch on stdout: loss, validation accuracy (if any) and time."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_epoch_end(self, state: TrainState) -> None:
        history = state.history
        line = f"epoch {state.epoch:>{len(str(self.epochs))}}/{self.epochs}"
        line += f"  loss {history.loss[-1]:.4f}"
        if history.val_accuracy:
            line += f"  val_acc {history.val_accuracy[-1]:.4f}"
        print(f"{line}  {history.epoch_time[-1]:.3f}s", flush=True)


MONITORS = ("val_loss", "val_accuracy", "loss")


class EarlyStopping(Callback):
    """End training when ``monitor`` has not improved for ``patience`` epochs, as Keras's
    ``EarlyStopping`` does, and (``restore_best``) give the model the weights of the best epoch.

    An epoch improves on the best so far when its value is lower by more than ``min_delta``
    (higher, for ``"val_accuracy"``). ``"val_loss"`` (the mean validation cross-entropy) and
    ``"val_accuracy"`` need validation data (``X_val``, ``y_val``). The counters are rebuilt from
    the History and the best weights are kept in checkpoints, so a resumed run stops where an
    uninterrupted one would. After the run, ``stopped_epoch`` is the epoch it stopped after
    (None if it ran all its epochs) and ``best_epoch`` the best one; History and ``epoch_``
    still count every epoch run.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp import EarlyStopping, SoftmaxXP
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 5))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> stop = EarlyStopping(monitor="val_accuracy", patience=2)
    >>> model = SoftmaxXP(5, 2, lr=0.5, backend="numpy", seed=0)
    >>> history = model.train(X[:200], y[:200], X[200:], y[200:], epochs=50, callback=stop)
    >>> stop.stopped_epoch == len(history) < 50, stop.best_epoch == stop.stopped_epoch - 2
    (True, True)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best: bool = True,
    ):
        if monitor not in MONITORS:
            raise ValueError(
                f"Unknown monitor {monitor!r}; use one of {', '.join(map(repr, MONITORS))}."
            )
        self.monitor = monitor
        self.patience = check_int(patience, "patience", 0)
        self.min_delta = check_real(min_delta, "min_delta", 0.0, float("inf"), closed="left")
        self.restore_best = bool(restore_best)
        self._sign = -1.0 if monitor == "val_accuracy" else 1.0  # compare sign * value: lower
        self._reset()

    def _reset(self) -> None:
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.wait = 0
        self._seen = 0
        self._best_weights: tuple[Any, Any] | None = None

    @property
    def _key(self) -> str:
        return f"early_stopping.{self.monitor}"

    def _observe(self, epoch: int, value: float) -> bool:
        """Count epoch ``epoch``'s value; whether it is the new best."""
        self._seen = epoch
        if self.best is None or self._sign * value < self._sign * self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return True
        self.wait += 1
        return False

    def _update(self, state: TrainState) -> None:
        if state.epoch <= self._seen:
            return
        values = state.history[self.monitor]
        if not values:
            raise ValueError(
                f"EarlyStopping(monitor={self.monitor!r}) needs validation data: pass X_val "
                "and y_val to train, or monitor 'loss'."
            )
        if self._observe(state.epoch, values[-1]):
            self._best_weights = (state.W, state.b)

    def on_train_begin(self, state: TrainState) -> None:
        self._reset()  # on a resume: replay the History, take the best weights kept
        for epoch, value in enumerate(state.history[self.monitor], start=1):
            self._observe(epoch, value)
        if self.best_epoch == state.epoch:
            self._best_weights = (state.W, state.b)
        elif f"{self._key}.W" in state.extras:
            self._best_weights = (state.extras[f"{self._key}.W"], state.extras[f"{self._key}.b"])

    def checkpoint_state(self, state: TrainState) -> dict[str, Any]:
        self._update(state)
        if not self.restore_best or self._best_weights is None:
            return {}
        return {f"{self._key}.W": self._best_weights[0], f"{self._key}.b": self._best_weights[1]}

    def on_epoch_end(self, state: TrainState) -> None:
        self._update(state)
        if self.wait and self.wait >= self.patience:
            self.stopped_epoch = state.epoch
            assert self.run is not None
            self.run.stop(
                f"early stopping: {self.monitor} has not improved for {self.wait} epoch(s) "
                f"(best {self.best:.6g} in epoch {self.best_epoch})"
            )

    def on_train_end(self, state: TrainState) -> None:
        if self.restore_best and self._best_weights is not None and self.best_epoch != state.epoch:
            assert self.run is not None
            self.run.restore(*self._best_weights)


def as_callbacks(callback: Any) -> list[Callback]:
    """``train``'s ``callback`` as a list: None, a :class:`Callback`, a function
    ``callback(epoch, history)``, or a list of those. TypeError for anything else."""
    if callback is None:
        return []
    items = list(callback) if isinstance(callback, Sequence) else [callback]
    callbacks = []
    for item in items:
        if isinstance(item, Callback):
            callbacks.append(item)
        elif callable(item) and not isinstance(item, type):
            callbacks.append(FunctionCallback(item))
        else:
            raise TypeError(
                "callback must be a function called as callback(epoch, history), a "
                f"softmax_xp.Callback, or a list of those; got {item!r} ({type(item).__name__})."
            )
    return callbacks
