"""SoftmaxXP: the chapter's softmax linear classifier on any array-API backend.

The model holds the parameters, the backend and the device; training is a run
(:mod:`softmax_xp._training`) over a data source (:mod:`softmax_xp._data`) that commits each
epoch's state back to the model, and predictions are functions of ``(W, b)``
(:mod:`softmax_xp._inference`).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import Any

from . import _data, _random
from ._backend import asarray_on, resolve_backend, to_numpy
from ._errors import out_of_memory_hint
from ._inference import chunk_rows
from ._modelfile import read_checkpoint, read_model, write_model
from ._training.callbacks import Callback, CheckpointWriter, ProgressPrinter, as_callbacks
from ._training.history import History
from ._training.run import Run, Schedule
from ._training.state import RunInfo, TrainState, check_resumable
from ._validation import (
    as_features,
    as_labels,
    check_device_dtype,
    check_hyperparameters,
    check_int,
    check_real,
)
from .functional import loss_and_grads, softmax
from .solvers.lbfgs import DEFAULT_TOL

__all__ = ["Callback", "History", "SoftmaxXP"]

Array = Any
PathLike = str | os.PathLike
SOLVERS = ("sgd", "lbfgs")


def _on_device(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``method`` with the model's device current (see :meth:`Backend.activate`)."""

    @functools.wraps(method)
    def run(self: SoftmaxXP, *args: Any, **kwargs: Any) -> Any:
        with self._backend.activate():
            return method(self, *args, **kwargs)

    return run


class _Predictions:
    """The predictions of a softmax linear model: functions of its ``W`` and ``b`` (see
    :mod:`softmax_xp._inference`), chunked in memory and lazy on Dask. :class:`SoftmaxXP`'s."""

    W: Array
    b: Array
    _backend: Any
    _settings: _data.DataSettings
    _memory_advice: Callable[[str, str], str]

    def _predict_advice(self, where: str, chunk_size: int | None) -> Callable[[], str]:
        def advice() -> str:
            rows = chunk_rows(self._settings, chunk_size)
            smaller = f"chunk_size={max(1, rows // 4)}"
            hint = f"pass a smaller chunk_size (now {rows} rows), e.g. {smaller}"
            return self._memory_advice(where, hint)

        return advice

    def _predictions(self, kind: str, X: Any, chunk_size: int | None, where: str) -> Array:
        with self._backend.activate(), out_of_memory_hint(self._predict_advice(where, chunk_size)):
            return _data.predictions(kind, X, self.W, self.b, self._settings, chunk_size)

    def predict_proba(self, X: Any, *, chunk_size: int | None = None) -> Array:
        """Class probabilities ``softmax(X W + b)``, shape ``(n_samples, num_classes)``.

        ``X`` is processed ``chunk_size`` rows at a time (default: up to 65536 rows, fewer when
        the features and logits of a chunk would exceed 256 MiB). Raises ValueError when the
        logits overflow the model's dtype (features far outside the training range). A Dask
        ``X`` gives a lazy Dask array, computed block by block where the blocks are
        (``chunk_size`` is not used), which raises the same errors when computed.
        """
        return self._predictions("proba", X, chunk_size, "predict_proba")

    def predict_log_proba(self, X: Any, *, chunk_size: int | None = None) -> Array:
        """Log-probabilities ``log_softmax(X W + b)``, exact where probabilities underflow;
        chunked and checked as in :meth:`predict_proba`."""
        return self._predictions("log_proba", X, chunk_size, "predict_log_proba")

    def decision_function(self, X: Any, *, chunk_size: int | None = None) -> Array:
        """The logits ``X W + b``, shape ``(n_samples, num_classes)``; chunked and checked as in
        :meth:`predict_proba`."""
        return self._predictions("logits", X, chunk_size, "decision_function")

    def predict(self, X: Any, *, chunk_size: int | None = None) -> Array:
        """Most probable class of each row of ``X`` (int64, on the model's device); chunked and
        checked as in :meth:`predict_proba` (a Dask ``X`` gives a lazy Dask array)."""
        return self._predictions("labels", X, chunk_size, "predict")

    def score(self, X: Any, y: Any, *, chunk_size: int | None = None) -> float:
        """Accuracy of :meth:`predict` on ``(X, y)``; chunked and checked as in
        :meth:`predict_proba`. With a Dask ``X`` it is one reduction over the blocks (``y`` a
        Dask or in-memory array)."""
        with (
            self._backend.activate(),
            out_of_memory_hint(self._predict_advice("score", chunk_size)),
        ):
            return _data.score(X, y, self.W, self.b, self._settings, chunk_size)


class SoftmaxXP(_Predictions):
    """Softmax linear classifier ``p(y | x) = softmax(x W + b)`` trained by mini-batch SGD.

    The same code runs on NumPy, CuPy, PyTorch and array-api-strict: ``backend="auto"`` picks
    CuPy when a CUDA device answers and NumPy otherwise; an unavailable explicit backend falls back
    to NumPy with a :class:`~softmax_xp.BackendFallbackWarning` (or raises with ``fallback=False``).

    Parameters
    ----------
    input_dim, num_classes
        Number of features ``d >= 1`` and classes ``K >= 2``; ``W`` is ``d x K``, ``b`` is ``1 x K``.
    lr, reg, momentum, lr_decay
        SGD step size (finite, > 0), L2 strength (>= 0; loss term ``0.5 * reg * ||W||^2``),
        heavy-ball momentum (in [0, 1)) and the factor in (0, 1] the step size is multiplied by
        after each epoch (1.0, the chapter's, keeps it fixed).
    backend, device, fallback
        Where the parameters live; see :func:`softmax_xp.backend_info`.
    dtype
        ``"float32"`` or ``"float64"``: the dtype of the parameters and of the data in training.
        A device without float64 (Apple's MPS, array-api-strict's ``"no_float64"``) needs float32.
    seed
        Seeds the initial weights ``0.001 * N(0, 1)`` and the per-epoch shuffles: one seed gives one
        trajectory on every backend.

    Bad arguments raise ValueError (TypeError for a wrong type), as do bad inputs to every method.

    Attributes
    ----------
    W, b
        The weights and the bias, on the model's backend and device; assigning either (any
        backend's array of the right shape) replaces it.
    history_
        The :class:`History` of the current (or last) training run, updated after every epoch.
    epoch_
        The number of epochs the current run has completed; the step size of epoch ``e`` is
        ``lr * lr_decay ** (e - 1)``.
    converged_
        After an L-BFGS run, whether it met its stopping rule (``solver_message_`` says why it
        stopped); None after SGD, which runs all its epochs.
    """

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        lr: float = 0.1,
        reg: float = 1e-4,
        backend: str = "auto",
        dtype: str = "float32",
        seed: int | None = None,
        momentum: float = 0.0,
        device: Any = None,
        fallback: bool = True,
        lr_decay: float = 1.0,
    ):
        hyper = check_hyperparameters(
            input_dim, num_classes, lr, reg, momentum, lr_decay, dtype, seed
        )
        self.input_dim: int = hyper["input_dim"]
        self.num_classes: int = hyper["num_classes"]
        self.lr: float = hyper["lr"]
        self.reg: float = hyper["reg"]
        self.momentum: float = hyper["momentum"]
        self.lr_decay: float = hyper["lr_decay"]
        self.seed: int | None = hyper["seed"]
        self.dtype_name: str = hyper["dtype"]
        self._backend = resolve_backend(backend, device=device, fallback=fallback)
        check_device_dtype(self._backend, self.dtype_name)
        self.dtype = getattr(self.xp, self.dtype_name)
        rng = _random.make_rng(self.seed)
        W0 = _random.initial_weights(rng, (self.input_dim, self.num_classes))
        with self._backend.activate():
            W = self._asarray(W0)
            b = self.xp.zeros((1, self.num_classes), dtype=self.dtype, device=self.device)
        self._state = TrainState(W, b, None, rng)
        self.converged_: bool | None = None
        self.solver_message_ = ""

    # -- backend -------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """Name of the backend actually in use (after any fallback)."""
        return self._backend.name

    @property
    def xp(self) -> Any:
        """The array namespace of the model's backend."""
        return self._backend.xp

    @property
    def device(self) -> Any:
        """The device the parameters live on."""
        return self._backend.device

    # -- parameters and the run's state ----------------------------------------------------------
    @property
    def W(self) -> Array:
        return self._state.W

    @W.setter
    def W(self, value: Any) -> None:
        self._state = self._state.replace(W=self._parameter(value, "W", self.input_dim))

    @property
    def b(self) -> Array:
        return self._state.b

    @b.setter
    def b(self, value: Any) -> None:
        self._state = self._state.replace(b=self._parameter(value, "b", 1))

    def _parameter(self, value: Any, name: str, rows: int) -> Array:
        shape = (rows, self.num_classes)
        with self._backend.activate():
            value = self._asarray(value)
        if tuple(value.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}.")
        return value

    @property
    def history_(self) -> History:
        return self._state.history

    @property
    def epoch_(self) -> int:
        return self._state.epoch

    def _commit(self, state: TrainState) -> None:
        self._state = state  # one store: an interruption never splits an epoch's state

    def __repr__(self) -> str:
        decay = "" if self.lr_decay == 1.0 else f"lr_decay={self.lr_decay}, "
        device = ""
        if self.backend in ("torch", "cupy"):
            where = getattr(self.device, "id", None)  # a cupy.cuda.Device
            device = f", device={str(self.device) if where is None else f'cuda:{where}'!r}"
        return (
            f"SoftmaxXP(input_dim={self.input_dim}, num_classes={self.num_classes}, lr={self.lr}, "
            f"reg={self.reg}, momentum={self.momentum}, {decay}backend={self.backend!r}"
            f"{device}, dtype={self.dtype_name!r}, seed={self.seed})"
        )

    # -- pickling and copying ------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """The model's state with host NumPy arrays and the backend by name (the namespace module
        cannot be pickled); :meth:`__setstate__` moves everything back to that backend."""
        state = self.__dict__.copy()
        device = self.device
        if self.backend == "cupy":
            device = int(device.id)  # a cupy.cuda.Device is pickled as its id
        state["_backend"] = (self.backend, device)
        del state["dtype"]
        state["_state"] = self._state.moved(lambda x: to_numpy(x).copy())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a pickled (or deep-copied) model onto its backend and device; a backend that
        cannot run here raises :class:`~softmax_xp.BackendUnavailableError`."""
        state = dict(state)
        name, device = state.pop("_backend")
        self.__dict__.update(state)
        self._backend = resolve_backend(name, device=device, fallback=False)
        self.dtype = getattr(self.xp, self.dtype_name)
        self._state = self._state.moved(self._asarray)

    def _asarray(self, x: Any, dtype: Any = None) -> Array:
        return asarray_on(self._backend, x, self.dtype if dtype is None else dtype)

    @property
    def _settings(self) -> _data.DataSettings:
        return _data.DataSettings(self._backend, self.dtype_name, self.input_dim, self.num_classes)

    def _memory_advice(self, where: str, advice: str) -> str:
        return f"Out of device memory in {where} on {self.backend} ({self.device}): {advice}."

    # -- the chapter's methods -----------------------------------------------------------------
    @_on_device
    def softmax(self, z: Any) -> Array:
        """Row-wise softmax of logits ``z`` (max subtracted, so it never overflows)."""
        return softmax(self._asarray(z), axis=-1)

    @_on_device
    def compute_loss_and_grads(self, X: Any, y: Any) -> tuple[Array, Array, Array]:
        """``(loss, dW, db)`` of the regularised cross-entropy on ``(X, y)`` at the current weights."""
        with out_of_memory_hint(
            lambda: self._memory_advice("compute_loss_and_grads", "pass fewer rows")
        ):
            X = as_features(X, self._backend, self.dtype, self.input_dim)
            y = as_labels(y, self._backend, X.shape[0], self.num_classes)
            return loss_and_grads(X, y, self.W, self.b, self.reg)

    # -- training ------------------------------------------------------------------------------
    @_on_device
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
        shuffle: str = "global",
        block_rows: int | None = None,
        checkpoint: PathLike | None = None,
        resume_from: PathLike | None = None,
        callback: Callable[[int, History], None] | Callback | list[Any] | None = None,
    ) -> History:
        """Mini-batch SGD over shuffled passes of ``(X, y)``, up to epoch ``epochs``; or, with
        ``solver="lbfgs"``, full-batch L-BFGS for up to ``epochs`` iterations.

        Data is moved to the model's backend once. Within an epoch nothing is read back to the
        host: the loss is read once per epoch. Each call starts a new run from the current weights
        (epoch 1, step size ``lr``) unless ``resume_from`` is given.

        ``X`` (and ``X_val``) may be Dask arrays chunked by rows: training then runs block by
        block where the data is (see :mod:`softmax_xp._data.dask`), on the active
        ``distributed.Client`` if there is one, else on Dask's local scheduler.

        Parameters
        ----------
        verbose
            0 (the default) prints nothing; 1 prints one line per epoch (loss, validation
            accuracy, time) to stdout. ``callback`` is the hook for progress bars.
        solver
            ``"sgd"`` (the chapter's mini-batch SGD with this model's ``lr``, ``momentum`` and
            ``lr_decay``) or ``"lbfgs"``: L-BFGS (scipy, the ``[lbfgs]`` extra) on the whole
            training set, minimising the same objective ``mean cross-entropy + 0.5 * reg *
            ||W||^2`` to its optimum. Loss and gradients are computed on the model's backend;
            each evaluation sends the flat gradient to the host once. For L-BFGS, ``epochs`` is
            the maximum number of iterations, History gets one entry per iteration,
            ``batch_size`` is not used, and ``lr``, ``momentum`` and ``lr_decay`` do not apply.
        tol
            L-BFGS only (``None``: 1e-4): stop when the largest absolute gradient entry is at most
            ``tol``, or when the loss stops decreasing (relative change below 64 machine epsilons
            of the dtype). Fewer than ``epochs`` entries in History then.
        sample_weight
            Optional non-negative weight per row of ``X`` (not all zero). The objective becomes
            the weighted mean ``sum_i w_i l_i / sum_i w_i`` (a weight of 2 equals a duplicated
            row: exactly for L-BFGS's full batch; for SGD in expectation, as the duplicate could
            fall in another mini-batch). SGD normalises the weights to mean 1 over ``X`` once,
            and a batch ``B`` steps along ``1/|B| sum_{i in B} w_i g_i``: an unbiased estimate of the weighted mean's
            gradient, so ``lr`` keeps its meaning. With a Dask ``X`` the weights may be a Dask
            array (rechunked to ``X``'s rows if needed) or an in-memory one; they are checked in
            the same pass over the blocks as ``X``, and give the same weights as in memory.
        shuffle, block_rows
            ``"global"`` (default): each epoch visits all rows in one random order.
            ``"blocks"``: the rows are cut into blocks of ``block_rows`` rows (the last may be
            shorter); each epoch visits the blocks in a random order and the rows of each block
            in a random order, batches restarting at each block. A Dask array is always trained
            this way, its row chunks being the blocks (``block_rows`` rechunks it first), and
            gives the same weights as ``shuffle="blocks"`` in memory with the same blocks.
        epochs
            The total number of epochs of the run, counting those done before a resume: resuming a
            checkpoint of epoch ``k`` trains epochs ``k + 1 .. epochs``, so ``epochs=100`` finishes
            the 100-epoch run (and returns at once if the checkpoint already has 100).
        checkpoint
            A path (``.npz`` is appended if missing). After every epoch the weights, momentum
            buffers, RNG state, epoch number, History and hyperparameters are written there
            atomically: a crash leaves the previous checkpoint or the new one, never half of one.
            A path that cannot be written (read-only, a folder) raises OSError before training.
        resume_from
            A checkpoint written by ``train(checkpoint=...)``. The run continues from it as if it
            had never stopped (the same weights, bit for bit on NumPy); the model must have the
            checkpoint's hyperparameters, and ``batch_size`` and the number of samples must match,
            as must the data itself: the checkpoint keeps a fingerprint of ``X`` and ``y`` (see
            :mod:`softmax_xp._fingerprint`), and other data or another row order is refused with a
            :class:`~softmax_xp.ResumeMismatchError` (a ValueError), as are another solver, other
            settings and a checkpoint with more epochs than ``epochs``. A model file is refused
            with a ModelFileError. The checkpoint also records ``epochs``, the run's length.
            With ``solver="lbfgs"`` the checkpoint is written after every iteration, and
            resuming restarts L-BFGS from the checkpoint's weights (its curvature memory is not
            saved, so the remaining iterations are not those of an uninterrupted run) for the
            iterations left up to ``epochs``.
        callback
            A function called as ``callback(epoch, history)`` after every completed epoch, a
            :class:`~softmax_xp.Callback` (its ``on_train_begin``, ``on_epoch_end`` and
            ``on_train_end`` hooks get the run's state), or a list of those, called in order.
            The checkpoint of an epoch is written before any callback sees it.

        Returns
        -------
        The :class:`History` of every epoch of the run (including those before a resume); the
        same object as ``self.history_``.

        Raises
        ------
        KeyboardInterrupt
            Re-raised as it comes; the model keeps the weights of its last complete epoch,
            ``self.history_`` and ``self.epoch_`` describe the epochs completed, and the checkpoint
            (if any) holds the last of them.
        TrainingDivergedError
            The loss became NaN or infinite; the model keeps its last finite epoch.
        DeviceMemoryError
            The device ran out of memory; the message says what to lower.
        """
        epochs = check_int(epochs, "epochs", 0)
        batch_size = check_int(batch_size, "batch_size", 1)
        verbose = check_int(int(verbose) if isinstance(verbose, bool) else verbose, "verbose", 0)
        _check_paths(checkpoint, resume_from)
        callbacks = as_callbacks(callback)
        tol = _check_solver(solver, tol)
        advice = f"lower batch_size (now {batch_size}) or train on fewer samples"
        with out_of_memory_hint(lambda: self._memory_advice("train", advice)):
            data, val = _data.sources(
                X, y, X_val, y_val, self._settings,
                sample_weight=sample_weight, shuffle=shuffle, block_rows=block_rows,
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
                outcome = run.lbfgs(state, epochs, tol, self.reg)
                self.converged_, self.solver_message_ = outcome.converged, outcome.message
            else:
                self.converged_, self.solver_message_ = None, ""
                run.sgd(state, epochs, self._schedule(), batch_size)
        return self.history_

    fit = train

    @_on_device
    def partial_train(
        self, X: Any, y: Any, *, epochs: int = 1, batch_size: int = 256, sample_weight: Any = None
    ) -> History:
        """``epochs`` more SGD epochs of the current run on ``(X, y)``: the step-size schedule,
        the momentum and History carry on where they are (scikit-learn's ``partial_fit``).
        A Dask ``X`` gets ``epochs`` block-wise passes. No checkpoint, callback or validation."""
        epochs = check_int(epochs, "epochs", 0)
        batch_size = check_int(batch_size, "batch_size", 1)
        with out_of_memory_hint(lambda: self._memory_advice("partial_fit", "pass fewer rows")):
            data, _ = _data.sources(X, y, None, None, self._settings, sample_weight=sample_weight)
            state = self._state.with_velocity(self.momentum, self.xp)
            run = Run(data, None, [], self._commit, self._backend)
            run.sgd(state, state.epoch + epochs, self._schedule(), batch_size)
        return self.history_

    def _schedule(self) -> Schedule:
        return Schedule(self.lr, self.lr_decay, self.momentum, self.reg)

    def _starting_state(self, resume_from: PathLike | None, run: RunInfo) -> TrainState:
        """A fresh run from the current weights, or the state of ``resume_from`` (checked)."""
        if resume_from is None:
            return self._state.restarted(self.momentum, self.xp)
        ckpt = read_checkpoint(resume_from)
        check_resumable(str(resume_from), ckpt, self._hyperparameters(), run)
        return TrainState.from_checkpoint(ckpt, self._asarray)

    # -- files ---------------------------------------------------------------------------------
    def _hyperparameters(self) -> dict[str, Any]:
        return {
            "input_dim": self.input_dim,
            "num_classes": self.num_classes,
            "lr": self.lr,
            "reg": self.reg,
            "momentum": self.momentum,
            "lr_decay": self.lr_decay,
            "dtype": self.dtype_name,
            "seed": self.seed,
        }

    def save(self, path: PathLike) -> os.PathLike:
        """Save the weights and hyperparameters to a .npz file (atomically, no pickle)."""
        W, b = to_numpy(self.W), to_numpy(self.b)
        return write_model(path, self._hyperparameters(), W, b, trained_on=self.backend)

    @classmethod
    def load(cls, path: PathLike, backend: str = "auto", device: Any = None) -> SoftmaxXP:
        """Load a model saved by :meth:`save` (or the weights of a training checkpoint) onto
        ``backend``, whichever backend saved it.

        The file is read without pickle and checked (format version, keys, shapes, dtypes, finite
        values); anything else raises :class:`~softmax_xp.ModelFileError`.
        """
        hyper, W, b = read_model(path)
        model = cls(**hyper, backend=backend, device=device)
        model.W, model.b = W, b
        return model


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
