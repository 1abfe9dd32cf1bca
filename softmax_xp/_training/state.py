"""TrainState: everything a training run changes, as one value that replaces the last.

A run never edits a state: each completed epoch builds a new :class:`TrainState` and hands it to
the model in one attribute store, so a Ctrl-C at any moment leaves the model at a complete epoch.
The same value is what a checkpoint holds and what a resumed run starts from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import _random
from .._backend import to_numpy
from .._errors import ResumeMismatchError
from .._fingerprint import describe_change
from .._modelfile import Checkpoint
from .history import History

__all__ = ["RunInfo", "TrainState", "check_resumable"]

Array = Any


@dataclass(frozen=True)
class TrainState:
    """Weights ``W`` (d x K) and bias ``b`` (1 x K) on the model's device, the momentum buffers
    (None without momentum), the host generator of the next epoch's shuffle, the number of
    completed epochs and their History."""

    W: Array
    b: Array
    velocity: tuple[Array, Array] | None
    rng: _random.HostGenerator
    epoch: int = 0
    history: History = dataclasses.field(default_factory=History)
    # Arrays shaped like W or b that callbacks keep for a resume (see Callback.checkpoint_state).
    extras: dict[str, Array] = dataclasses.field(default_factory=dict)

    def replace(self, **changes: Any) -> TrainState:
        return dataclasses.replace(self, **changes)

    def restarted(self, momentum: float, xp: Any) -> TrainState:
        """A new run from these weights: epoch 0, empty History, momentum buffers at zero."""
        fresh = self.replace(epoch=0, history=History(), velocity=None, extras={})
        return fresh.with_velocity(momentum, xp)

    def with_velocity(self, momentum: float, xp: Any) -> TrainState:
        """This state, with momentum buffers at zero if the model has momentum and none yet."""
        if momentum > 0 and self.velocity is None:
            return self.replace(velocity=(xp.zeros_like(self.W), xp.zeros_like(self.b)))
        return self

    def moved(self, move: Callable[[Any], Array]) -> TrainState:
        """This state with ``W``, ``b`` and the momentum buffers passed through ``move`` (to the
        host for pickling, or back to a device)."""
        velocity = (
            None if self.velocity is None else (move(self.velocity[0]), move(self.velocity[1]))
        )
        extras = {name: move(value) for name, value in self.extras.items()}
        return self.replace(W=move(self.W), b=move(self.b), velocity=velocity, extras=extras)

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint, asarray: Callable[[Any], Array]) -> TrainState:
        """The state a checkpoint holds, moved to the device by ``asarray``."""
        velocity = None if ckpt.velocity is None else tuple(map(asarray, ckpt.velocity))
        return cls(
            W=asarray(ckpt.W),
            b=asarray(ckpt.b),
            velocity=velocity,
            rng=_random.rng_from_state(ckpt.rng_state),
            epoch=ckpt.epoch,
            history=History(**ckpt.history),
            extras={name: asarray(value) for name, value in ckpt.extras.items()},
        )

    def to_checkpoint(self, hyperparameters: dict[str, Any], run: RunInfo) -> Checkpoint:
        """Every field of this state and of its run, as host arrays, for a checkpoint file."""
        velocity = None
        if self.velocity is not None:
            velocity = (to_numpy(self.velocity[0]), to_numpy(self.velocity[1]))
        checkpoint = Checkpoint(
            hyperparameters=hyperparameters,
            W=to_numpy(self.W),
            b=to_numpy(self.b),
            velocity=velocity,
            epoch=self.epoch,
            history=self.history.to_dict(),
            rng_state=_random.get_state(self.rng),
            batch_size=run.batch_size,
            n_samples=run.n_samples,
            blocks=run.blocks,
            solver=run.solver,
            epochs=run.epochs,
            extras={name: to_numpy(value) for name, value in self.extras.items()},
        )
        checkpoint.data = run.data
        return checkpoint


@dataclass(frozen=True)
class RunInfo:
    """What a run is, beside its state: what a checkpoint records and a resume must match."""

    solver: str
    batch_size: int
    n_samples: int
    epochs: int
    blocks: list[int] | None = None  # the row blocks of shuffle="blocks" or Dask (None: global)
    data: dict[str, Any] | None = None  # the training data's fingerprint (None: not known)


def check_resumable(
    path: str, ckpt: Checkpoint, hyperparameters: dict[str, Any], run: RunInfo
) -> None:
    """Raise :class:`ResumeMismatchError` when ``ckpt`` cannot continue as ``run``: another
    solver, other settings or data size, other blocks, other data, or more epochs than asked."""
    if ckpt.solver != run.solver:
        raise ResumeMismatchError(
            path,
            "solver",
            f"the checkpoint was written by solver={ckpt.solver!r}, this run uses solver="
            f"{run.solver!r}; resume with solver={ckpt.solver!r} (SGD epochs and L-BFGS "
            "iterations do not mix in one run).",
            {"solver": (ckpt.solver, run.solver)},
        )
    ours = {**hyperparameters, "batch_size": run.batch_size, "n_samples": run.n_samples}
    theirs = {**ckpt.hyperparameters, "batch_size": ckpt.batch_size, "n_samples": ckpt.n_samples}
    differ = {
        key: (theirs[key], ours[key]) for key in ours if key != "seed" and ours[key] != theirs[key]
    }
    if differ:
        written = ", ".join(f"{key}={was!r} (here {now!r})" for key, (was, now) in differ.items())
        raise ResumeMismatchError(
            path,
            "settings",
            f"the checkpoint was written with {written}; resume with the same model settings, "
            "batch_size and training data.",
            differ,
        )
    if ckpt.blocks != run.blocks:
        raise ResumeMismatchError(
            path,
            "blocks",
            f"the checkpoint's run visited {_describe_blocks(ckpt.blocks)}, this one "
            f"{_describe_blocks(run.blocks)}; resume with the same shuffle and blocks "
            "(block_rows, or the Dask array's chunks).",
            {"blocks": (ckpt.blocks, run.blocks)},
        )
    change = None
    if ckpt.data is not None and run.data is not None:
        change = describe_change(ckpt.data, run.data)
    if change is not None:
        raise ResumeMismatchError(
            path,
            "data",
            f"the checkpoint's run was trained on other data: {change}; resume with the same "
            "training data, in the same order.",
        )
    if ckpt.epoch > run.epochs:
        raise ResumeMismatchError(
            path,
            "epochs",
            f"the checkpoint has {ckpt.epoch} completed epochs, more than epochs={run.epochs} "
            "(epochs counts every epoch of the run).",
            {"epochs": (ckpt.epoch, run.epochs)},
        )


def _describe_blocks(blocks: list[int] | None) -> str:
    if blocks is None:
        return "all rows in one shuffle (shuffle='global')"
    return f"{len(blocks)} blocks of up to {max(blocks)} rows"
