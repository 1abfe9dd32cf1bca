"""Callbacks: what a training run calls at its start, after every epoch and at its end.

A callback is a :class:`Callback` (override any of its three hooks) or, as before, a function
``callback(epoch, history)`` called after every epoch. The run calls its callbacks in order: the
checkpoint writer first (so that a callback sees the epoch saved), then the progress printer of
``verbose=1``, then the user's. Each hook gets the run's :class:`TrainState` after the event.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from .._atomic import check_writable
from .._io import npz_path
from .._modelfile import write_checkpoint
from .history import History
from .state import RunInfo, TrainState

__all__ = ["Callback", "CheckpointWriter", "FunctionCallback", "ProgressPrinter", "as_callbacks"]


class Callback:
    """Base class of training callbacks; every hook does nothing until overridden.

    ``on_train_begin(state)`` before the first epoch of a run (``state.epoch`` is that of the
    checkpoint when resuming), ``on_epoch_end(state)`` after every completed epoch (or L-BFGS
    iteration), ``on_train_end(state)`` after the last one, when the run ends without an error.
    An exception raised in a hook ends the run; the model keeps its last complete epoch.

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
        path: str | os.PathLike,
        hyperparameters: dict[str, Any],
        run: RunInfo,
        trained_on: str,
    ):
        check_writable(npz_path(path))
        self.path, self.hyperparameters, self.run, self.trained_on = (
            path,
            hyperparameters,
            run,
            trained_on,
        )

    def on_epoch_end(self, state: TrainState) -> None:
        checkpoint = state.to_checkpoint(self.hyperparameters, self.run)
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
