"""Training a softmax linear model: :class:`~softmax_xp.SoftmaxXP`'s ``train`` and
``partial_train``, which check their arguments and run a run (:mod:`softmax_xp._training`)
over a data source (:mod:`softmax_xp._data`)."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import _data
from ._backend import Backend
from ._errors import out_of_memory_hint
from ._modelfile import read_checkpoint
from ._training.callbacks import Callback, CheckpointWriter, ProgressPrinter, as_callbacks
from ._training.history import History
from ._training.run import Run, Schedule
from ._training.state import RunInfo, TrainState, check_resumable
from ._validation import check_int, check_real
from ._weights import check_class_weight
from .solvers.lbfgs import DEFAULT_TOL

__all__ = ["SOLVERS", "Trainable", "on_device"]

PathLike = str | os.PathLike[str]
SOLVERS = ("sgd", "lbfgs")


def on_device(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``method`` with the model's device current (see :meth:`Backend.activate`)."""

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._backend.activate():
            return method(self, *args, **kwargs)

    return run


class Trainable:
    """The training methods of a softmax linear model (:class:`~softmax_xp.SoftmaxXP`'s); they
    build a run and give it the model's ``_commit``, so every epoch's state is stored whole."""

    lr: float
    lr_decay: float
    momentum: float
    reg: float
    fit_intercept: bool
    num_classes: int
    converged_: bool | None
    solver_message_: str
    _state: TrainState
    _backend: Backend
    xp: Any
    history_: History
    _commit: Callable[[TrainState], None]
    _hyperparameters: Callable[[], dict[str, Any]]
    _memory_advice: Callable[[str, str], str]
    _asarray: Callable[..., Any]
    _l1_share: Callable[[], float]
    if TYPE_CHECKING:  # properties of SoftmaxXP

        @property
        def _settings(self) -> _data.DataSettings: ...
        @property
        def backend(self) -> str: ...

    @on_device
    def train(
        self,
        X: Any,
        y: Any,
        X_val: Any = None,
        y_val: Any = None,
        epochs: int = 100,
        batch_size: int = 256,
        verbose: int = 0,
        *,
        solver: str = "sgd",
        tol: float | None = None,
        sample_weight: Any = None,
        val_sample_weight: Any = None,
        shuffle: str = "global",
        block_rows: int | None = None,
        checkpoint: PathLike | None = None,
        resume_from: PathLike | None = None,
        callback: Callable[[int, History], None] | Callback | list[Any] | None = None,
        class_weight: dict[int, float] | str | None = None,
    ) -> History:
        """Mini-batch SGD over shuffled passes of ``(X, y)`` up to epoch ``epochs``; or, with
        ``solver="lbfgs"``, full-batch L-BFGS for up to ``epochs`` iterations.

        Each call starts a new run from the current weights (epoch 1, step size ``lr``) unless
        ``resume_from`` is given. Data moves to the model's backend once; an epoch reads the
        device once (its loss, finiteness and validation hits). ``X`` (and ``X_val``) may be
        Dask arrays chunked by rows: their chunks are trained block by block where they are,
        on the active ``distributed.Client`` if any, as ``shuffle="blocks"`` trains in memory.

        Parameters
        ----------
        epochs
            The run's total: resuming a checkpoint of epoch ``k`` trains ``k + 1 .. epochs``.
        verbose
            1 prints one line per epoch (loss, validation accuracy, time); 0 prints nothing.
        solver, tol
            ``"sgd"`` (the chapter's, with ``lr``, ``momentum`` and ``lr_decay``) or ``"lbfgs"``
            (scipy, the ``[lbfgs]`` extra): the same objective, mean cross-entropy plus the
            penalty (see ``penalty``), to its optimum, loss and gradients on the model's
            backend, one History entry per iteration. L-BFGS stops when ``max |gradient| <= tol`` (default 1e-4) or
            the loss stops decreasing; ``tol`` is refused with SGD, which runs every epoch.
        sample_weight
            A weight ``>= 0`` per row: the objective is ``sum_i w_i l_i / sum_i w_i``. SGD scales
            the weights to mean 1 once, so a batch ``B`` steps along ``1/|B| sum_B w_i g_i``
            (unbiased; ``lr`` keeps its meaning). Dask weights are rechunked to ``X``'s rows.
        val_sample_weight
            A weight ``>= 0`` per row of ``X_val`` (checked as ``sample_weight`` is; Keras
            passes these as ``validation_data=(X_val, y_val, w_val)``): the validation accuracy
            is ``sum_i w_i [predicted_i == y_i] / sum_i w_i`` and ``val_loss`` the weighted mean
            cross-entropy, so that a row of weight ``k`` counts as ``k`` copies of it. None
            (default): every row counts once. Weighted sums are in the model's dtype. Not
            supported with a Dask ``X_val`` yet (an in-memory ``X_val`` with a Dask ``X`` is).
        class_weight
            ``{class: weight}`` (classes not in it weigh 1) or ``"balanced"`` (scikit-learn's
            ``n_samples / (n_classes_present * count)``): exactly ``sample_weight`` multiplied
            by each row's class weight.
        shuffle, block_rows
            ``"global"``: each epoch visits all rows in one random order. ``"blocks"``: blocks
            of ``block_rows`` rows in a random order, each block's rows in a random order.
        checkpoint
            A path written atomically after every epoch with everything a resume needs.
        resume_from
            A checkpoint to continue exactly (bit for bit on NumPy). A checkpoint of another
            solver, other hyperparameters, ``batch_size``, blocks or data (a fingerprint of ``X``
            and ``y`` is kept), or with more epochs than ``epochs``, raises
            :class:`~softmax_xp.ResumeMismatchError`. L-BFGS restarts from the checkpoint's
            weights without its curvature memory.
        callback
            A function ``callback(epoch, history)`` called after every epoch, a
            :class:`~softmax_xp.Callback`, or a list of those, called in order after the
            epoch's checkpoint is written.

        Returns
        -------
        History
            Every epoch of the run, including those before a resume (``self.history_``).

        Raises
        ------
        KeyboardInterrupt
            As it comes; the model and the checkpoint keep the last complete epoch.
        TrainingDivergedError
            The loss became NaN or infinite; the model keeps its last finite epoch.
        DeviceMemoryError
            The device ran out of memory; the message says what to lower.

        Examples
        --------
        >>> from softmax_xp import SoftmaxXP
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(200, 4))
        >>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
        >>> model = SoftmaxXP(4, 2, lr=0.5, backend="numpy", seed=0)
        >>> history = model.train(X[:150], y[:150], X[150:], y[150:], epochs=5, batch_size=32)
        >>> len(history), history.loss[-1] < history.loss[0], history.val_accuracy[-1] > 0.9
        (5, True, True)
        """
        epochs = check_int(epochs, "epochs", 0)
        batch_size = check_int(batch_size, "batch_size", 1)
        verbose = check_int(int(verbose) if isinstance(verbose, bool) else verbose, "verbose", 0)
        _check_paths(checkpoint, resume_from)
        callbacks = as_callbacks(callback)
        tol = _check_solver(solver, tol)
        class_weight = check_class_weight(class_weight, self.num_classes)
        advice = f"lower batch_size (now {batch_size}) or train on fewer samples"
        with out_of_memory_hint(lambda: self._memory_advice("train", advice)):
            data, val = _data.sources(
                X, y, X_val, y_val, self._settings,
                sample_weight=sample_weight, shuffle=shuffle, block_rows=block_rows,
                class_weight=class_weight, val_sample_weight=val_sample_weight,
            )  # fmt: skip
            known = checkpoint is not None or resume_from is not None
            run_info = RunInfo(
                solver=solver,
                batch_size=batch_size,
                n_samples=data.n,
                epochs=epochs,
                blocks=data.blocks if solver == "sgd" else None,
                data=data.fingerprint() if known else None,
            )
            state = self._starting_state(resume_from, run_info)
            if checkpoint is not None:
                hyper = self._hyperparameters()
                writer = CheckpointWriter(checkpoint, hyper, run_info, self.backend)
                callbacks.insert(0, writer)
            if verbose:
                callbacks.insert(1 if checkpoint is not None else 0, ProgressPrinter(epochs))
            run = Run(data, val, callbacks, self._commit, self._backend)
            if solver == "lbfgs":
                outcome = run.lbfgs(
                    state, epochs, tol, self.reg, self._l1_share(), self.fit_intercept
                )
                self.converged_, self.solver_message_ = outcome.converged, outcome.message
            else:
                self.converged_, self.solver_message_ = None, ""
                run.sgd(state, epochs, self._schedule(), batch_size)
        return self.history_

    fit = train

    @on_device
    def partial_train(
        self,
        X: Any,
        y: Any,
        *,
        epochs: int = 1,
        batch_size: int = 256,
        sample_weight: Any = None,
        class_weight: dict[int, float] | None = None,
    ) -> History:
        """``epochs`` more SGD epochs of the current run on ``(X, y)``: the step-size schedule,
        the momentum and History carry on where they are (scikit-learn's ``partial_fit``).
        A Dask ``X`` gets ``epochs`` block-wise passes. No checkpoint, callback or validation.

        Examples
        --------
        >>> from softmax_xp import SoftmaxXP
        >>> model = SoftmaxXP(2, 2, backend="numpy", seed=0)
        >>> for part in ([[0.0, 1.0], [1.0, 0.0]], [[0.0, 2.0], [2.0, 0.0]]):
        ...     history = model.partial_train(part, [0, 1])
        >>> model.epoch_, len(history)
        (2, 2)
        """
        epochs = check_int(epochs, "epochs", 0)
        batch_size = check_int(batch_size, "batch_size", 1)
        with out_of_memory_hint(lambda: self._memory_advice("partial_fit", "pass fewer rows")):
            if isinstance(class_weight, str):
                raise ValueError(
                    "class_weight='balanced' counts the classes of the whole training set, "
                    "which one partial_train call does not see: compute the weights once, e.g. "
                    "with sklearn.utils.class_weight.compute_class_weight, and pass a dict."
                )
            class_weights = check_class_weight(class_weight, self.num_classes)
            data, _ = _data.sources(
                X, y, None, None, self._settings,
                sample_weight=sample_weight, class_weight=class_weights,
            )  # fmt: skip
            state = self._state.with_velocity(self.momentum, self.xp)
            run = Run(data, None, [], self._commit, self._backend)
            run.sgd(state, state.epoch + epochs, self._schedule(), batch_size)
        return self.history_

    def _schedule(self) -> Schedule:
        return Schedule(
            self.lr, self.lr_decay, self.momentum, self.reg, self._l1_share(), self.fit_intercept
        )

    def _starting_state(self, resume_from: PathLike | None, run: RunInfo) -> TrainState:
        """A fresh run from the current weights, or the state of ``resume_from`` (checked)."""
        if resume_from is None:
            return self._state.restarted(self.momentum, self.xp)
        ckpt = read_checkpoint(resume_from)
        check_resumable(str(resume_from), ckpt, self._hyperparameters(), run)
        return TrainState.from_checkpoint(ckpt, self._asarray)


def _check_solver(solver: Any, tol: Any) -> float:
    """The L-BFGS tolerance (its default for ``tol=None``); ValueError for an unknown solver or
    a ``tol`` given to SGD, which has no stopping rule."""
    if solver not in SOLVERS:
        raise ValueError(f"Unknown solver {solver!r}; use one of {', '.join(map(repr, SOLVERS))}.")
    if tol is None:
        return DEFAULT_TOL
    if solver == "sgd":
        raise ValueError(
            "tol is the stopping rule of solver='lbfgs'; SGD runs all its epochs. "
            "Pass tol only with solver='lbfgs'."
        )
    return check_real(tol, "tol", 0.0, math.inf, closed="left")


def _check_paths(checkpoint: Any, resume_from: Any) -> None:
    """Refuse a ``checkpoint`` or ``resume_from`` that is not a path before the first epoch."""
    for name, path in (("checkpoint", checkpoint), ("resume_from", resume_from)):
        if path is not None and not isinstance(path, str | os.PathLike):
            raise TypeError(
                f"{name} must be a file path (a str or pathlib.Path), got {path!r} "
                f"({type(path).__name__})."
            )
