"""SoftmaxXP: the chapter's softmax linear classifier on any array-API backend."""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from array_api_compat import device as device_of
from array_api_compat import is_dask_array

from . import _random
from ._atomic import check_writable
from ._backend import asarray_on, resolve_backend, to_numpy
from ._errors import (
    ResumeMismatchError,
    TrainingDivergedError,
    out_of_memory_hint,
    quiet_float_warnings,
)
from ._fingerprint import data_fingerprint, describe_change
from ._io import npz_path
from ._modelfile import Checkpoint, read_checkpoint, read_model, write_checkpoint, write_model
from ._threads import training_threads
from ._validation import (
    as_features,
    as_labels,
    check_device_dtype,
    check_hyperparameters,
    check_int,
    check_real,
    features_on_host_or_device,
    warn_if_unscaled,
)
from ._weights import as_sample_weight, exact_mean
from .functional import loss_and_grads, softmax
from .solvers.lbfgs import DEFAULT_TOL, minimize_lbfgs
from .solvers.sgd import sgd_epoch

__all__ = ["History", "SoftmaxXP"]

Array = Any
PathLike = str | os.PathLike
_MAX_CHUNK_ROWS = 65536
_CHUNK_BYTES = 256 * 2**20  # default inference chunk: its features and logits stay under this
SOLVERS = ("sgd", "lbfgs")
# Validation hits of weights (W, b) as a 0-d int64 device array, and the number of rows.
ValHits = tuple[Callable[[Array, Array], Array], int]
_HITS_SPLIT = 4096  # hit counts travel as (hits // 4096, hits % 4096): exact in float32 to 2**36


def _on_device(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``method`` with the model's device current (see :meth:`Backend.activate`)."""

    @functools.wraps(method)
    def run(self: SoftmaxXP, *args: Any, **kwargs: Any) -> Any:
        with self._backend.activate():
            return method(self, *args, **kwargs)

    return run


@dataclass
class History:
    """Per-epoch training record: mean training loss, validation accuracy and wall time (s)."""

    loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        if not isinstance(key, str):
            raise TypeError(
                f"History is indexed by name, not by {type(key).__name__}: "
                "history['loss'][-1] (or history.loss[-1]) is the loss of the last epoch; the "
                "names are 'loss', 'val_accuracy' and 'epoch_time'."
            )
        if key not in self.keys():
            raise KeyError(f"{key!r}; History has 'loss', 'val_accuracy' and 'epoch_time'")
        return getattr(self, key)

    def __len__(self) -> int:
        """The number of epochs (or L-BFGS iterations) recorded."""
        return len(self.loss)

    def keys(self) -> list[str]:
        """The names, as a dict of lists has them: ``dict(history)`` works."""
        return [f.name for f in fields(self)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def items(self) -> list[tuple[str, list[float]]]:
        return [(key, getattr(self, key)) for key in self.keys()]

    def to_dict(self) -> dict[str, list[float]]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def extended(self, loss: float, val_accuracy: float | None, epoch_time: float) -> History:
        """A new History with one more epoch (this one is left as it is)."""
        accuracy = self.val_accuracy if val_accuracy is None else [*self.val_accuracy, val_accuracy]
        return History([*self.loss, loss], accuracy, [*self.epoch_time, epoch_time])


class SoftmaxXP:
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
    history_
        The :class:`History` of the current (or last) training run, updated after every epoch.
    epoch_
        The number of epochs the current run has completed; the step size of epoch ``e`` is
        ``lr * lr_decay ** (e - 1)``.
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
        self._rng = _random.make_rng(self.seed)
        W0 = _random.initial_weights(self._rng, (self.input_dim, self.num_classes))
        with self._backend.activate():
            self.W = self._asarray(W0)
            self.b = self.xp.zeros((1, self.num_classes), dtype=self.dtype, device=self.device)
        self._velocity: tuple[Array, Array] | None = None
        self._blocks: list[int] | None = None  # the row blocks of the run (None: global shuffle)
        self._solver = "sgd"  # the solver of the run, written into its checkpoints
        self.history_ = History()
        self.epoch_ = 0
        self._lbfgs_status: tuple[bool, str] | None = None  # (converged, scipy's message)

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
        for key in ("W", "b"):
            state[key] = to_numpy(state[key]).copy()
        if self._velocity is not None:
            state["_velocity"] = tuple(to_numpy(v).copy() for v in self._velocity)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a pickled (or deep-copied) model onto its backend and device; a backend that
        cannot run here raises :class:`~softmax_xp.BackendUnavailableError`."""
        state = dict(state)
        name, device = state.pop("_backend")
        self.__dict__.update(state)
        self._backend = resolve_backend(name, device=device, fallback=False)
        self.dtype = getattr(self.xp, self.dtype_name)
        self.W, self.b = self._asarray(state["W"]), self._asarray(state["b"])
        if self._velocity is not None:
            self._velocity = tuple(self._asarray(v) for v in self._velocity)

    def _asarray(self, x: Any, dtype: Any = None) -> Array:
        return asarray_on(self._backend, x, self.dtype if dtype is None else dtype)

    def _features(self, X: Any, name: str = "X") -> Array:
        return as_features(X, self._backend, self.dtype, self.input_dim, name)

    def _labels(self, y: Any, n: int, name: str = "y") -> Array:
        return as_labels(y, self._backend, n, self.num_classes, name)

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
            X = self._features(X)
            return loss_and_grads(X, self._labels(y, X.shape[0]), self.W, self.b, self.reg)

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
        callback: Callable[[int, History], None] | None = None,
    ) -> History:
        """Mini-batch SGD over shuffled passes of ``(X, y)``, up to epoch ``epochs``; or, with
        ``solver="lbfgs"``, full-batch L-BFGS for up to ``epochs`` iterations.

        Data is moved to the model's backend once. Within an epoch nothing is read back to the
        host: the loss is read once per epoch. Each call starts a new run from the current weights
        (epoch 1, step size ``lr``) unless ``resume_from`` is given.

        ``X`` (and ``X_val``) may be Dask arrays chunked by rows: training then runs block by
        block where the data is (see :mod:`softmax_xp._dask`), on the active
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
            fall in another mini-batch). SGD normalises the weights to mean 1 over ``X`` once, and a batch ``B`` steps
            along ``1/|B| sum_{i in B} w_i g_i``: an unbiased estimate of the weighted mean's
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
            ValueError (checkpoints of Dask runs have none). A model file is refused with a
            ModelFileError. With ``solver="lbfgs"`` the checkpoint is written after every iteration, and resuming restarts L-BFGS from the
            checkpoint's weights (its curvature memory is not saved, so the remaining iterations
            are not those of an uninterrupted run) for the iterations left up to ``epochs``.
        callback
            Called as ``callback(epoch, history)`` after every completed epoch (and its
            checkpoint), e.g. to drive a progress bar.

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
        _check_run_files(checkpoint, resume_from, callback)
        if (X_val is None) != (y_val is None):
            raise ValueError("X_val and y_val must be given together.")
        tol = _check_solver(solver, tol)
        block_rows = _check_shuffle(shuffle, block_rows, dask=is_dask_array(X))
        if is_dask_array(X):
            from . import _dask

            return _dask.train(
                self, X, y, X_val, y_val, epochs=epochs, batch_size=batch_size,
                verbose=verbose, block_rows=block_rows, solver=solver, tol=tol,
                sample_weight=sample_weight, checkpoint=checkpoint,
                resume_from=resume_from, callback=callback,
            )  # fmt: skip
        advice = f"lower batch_size (now {batch_size}) or train on fewer samples"
        with out_of_memory_hint(lambda: self._memory_advice("train", advice)):
            X = self._features(warn_if_unscaled(features_on_host_or_device(X, self.input_dim)))
            n = X.shape[0]
            y = self._labels(y, n)
            val = None
            if X_val is not None:
                X_val = features_on_host_or_device(X_val, self.input_dim, "X_val")
                X_val = self._features(warn_if_unscaled(X_val, "X_val"), "X_val")
                val = (X_val, self._labels(y_val, X_val.shape[0], "y_val"))
            weights = as_sample_weight(sample_weight, self._backend, self.dtype, n)
            self._blocks, self._solver = None, solver
            if block_rows is not None and solver == "sgd":
                self._blocks = [s.stop - s.start for s in _row_slices(n, block_rows)]
            data = None  # the data's fingerprint, where a checkpoint is written or resumed
            if checkpoint is not None or resume_from is not None:
                data = data_fingerprint(self._backend, X, y)
            self._start_run(resume_from, epochs, batch_size, n, data)
            after = self._after_epoch(checkpoint, batch_size, n, epochs, verbose, callback)
            if solver == "lbfgs":
                self._lbfgs(X, y, val, weights, epochs, tol, after)
                return self.history_
            sizes = self._asarray(_batch_sizes(n, batch_size))
            weights = _mean_one(weights, self.xp)
            shape = (min(batch_size, n), self.input_dim, self.num_classes)
            for epoch in range(self.epoch_ + 1, epochs + 1):
                with quiet_float_warnings(), training_threads(self._backend, *shape):
                    self._epoch(X, y, val, sizes, epoch, batch_size, weights, block_rows)
                after()
        return self.history_

    fit = train

    def _after_epoch(
        self,
        checkpoint: PathLike | None,
        batch_size: int,
        n: int,
        epochs: int,
        verbose: int,
        callback: Callable[[int, History], None] | None,
    ) -> Callable[[], None]:
        """What follows every committed SGD epoch or L-BFGS iteration: checkpoint, report,
        callback. A checkpoint that cannot be written fails here, before any training."""
        if checkpoint is not None:
            check_writable(npz_path(checkpoint))

        def after() -> None:
            if checkpoint is not None:
                self._write_checkpoint(checkpoint, batch_size, n, epochs)
            if verbose:
                self._report(epochs)
            if callback is not None:
                callback(self.epoch_, self.history_)

        return after

    def _lbfgs(
        self,
        X: Array,
        y: Array,
        val: tuple[Array, Array] | None,
        weights: Array | None,
        epochs: int,
        tol: float,
        after_epoch: Callable[[], None],
        objective: Callable[[Array, Array], tuple[Array, Array, Array]] | None = None,
        val_hits: ValHits | None = None,
    ) -> None:
        """L-BFGS iterations ``epoch_ + 1 .. epochs`` (fewer once converged); each accepted
        iterate is committed like an SGD epoch, so an interruption keeps the last one.

        ``objective`` and ``val_hits`` replace the in-memory loss on ``(X, y)`` and the hit
        count on ``val`` (the Dask path passes its reductions)."""
        xp, reg = self.xp, self.reg
        clock = [time.perf_counter()]
        if val_hits is None and val is not None:
            val_hits = self._val_hits_of(val)

        def in_memory(W: Array, b: Array) -> tuple[Array, Array, Array]:
            return loss_and_grads(X, y, W, b, reg, sample_weight=weights, xp=xp)

        objective = objective or in_memory

        def on_iteration(_: int, W: Array, b: Array, loss: float) -> None:
            epoch = self.epoch_ + 1
            if not math.isfinite(loss):
                raise TrainingDivergedError(
                    f"L-BFGS diverged in iteration {epoch}: the loss is {loss}.",
                    kept="The model keeps the weights of the previous iteration;",
                    advice="check the data for huge values.",
                    epoch=epoch,
                    batch=None,
                    history=self.history_,
                )
            accuracy = None if val_hits is None else _accuracy(val_hits, W, b)
            history = self.history_.extended(loss, accuracy, time.perf_counter() - clock[0])
            self.W, self.b, self.epoch_, self.history_ = W, b, epoch, history
            after_epoch()
            clock[0] = time.perf_counter()

        with quiet_float_warnings():
            result = minimize_lbfgs(
                objective,
                self.W,
                self.b,
                max_iter=epochs - self.epoch_,
                to_host=to_numpy,
                tol=tol,
                callback=on_iteration,
            )
        self._lbfgs_status = (result.converged, result.message)

    @_on_device
    def _more_sgd_epochs(
        self, X: Any, y: Any, *, epochs: int = 1, batch_size: int = 256, sample_weight: Any = None
    ) -> None:
        """``epochs`` more SGD epochs of the current run on ``(X, y)``: the step-size schedule,
        the momentum and History continue where they are (scikit-learn's ``partial_fit``).
        A Dask ``X`` gets ``epochs`` block-wise passes."""
        if is_dask_array(X):
            from . import _dask

            return _dask.more_epochs(self, X, y, epochs, batch_size, sample_weight)
        with out_of_memory_hint(lambda: self._memory_advice("partial_fit", "pass fewer rows")):
            X = self._features(X)
            n = X.shape[0]
            y = self._labels(y, n)
            weights = as_sample_weight(sample_weight, self._backend, self.dtype, n)
            self._zero_velocity()
            sizes = self._asarray(_batch_sizes(n, batch_size))
            weights = _mean_one(weights, self.xp)
            shape = (min(batch_size, n), self.input_dim, self.num_classes)
            for epoch in range(self.epoch_ + 1, self.epoch_ + epochs + 1):
                with quiet_float_warnings(), training_threads(self._backend, *shape):
                    self._epoch(X, y, None, sizes, epoch, batch_size, weights)

    def _zero_velocity(self) -> None:
        """Start the momentum buffers at zero, when the model has momentum and none yet."""
        if self.momentum > 0 and self._velocity is None:
            self._velocity = (self.xp.zeros_like(self.W), self.xp.zeros_like(self.b))

    def _start_run(
        self,
        resume_from: PathLike | None,
        epochs: int,
        batch_size: int,
        n: int,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Set up a fresh run, or restore the state of ``resume_from``; ``data`` is the training
        data's fingerprint (written into checkpoints, checked on resume; None: not known)."""
        self._data_fingerprint = data
        if resume_from is None:
            self._zero_velocity()
            self.history_, self.epoch_ = History(), 0
            return
        ckpt = read_checkpoint(resume_from)
        self._check_resumable(resume_from, ckpt, epochs, batch_size, n)
        velocity = None if ckpt.velocity is None else tuple(map(self._asarray, ckpt.velocity))
        W, b, rng = (
            self._asarray(ckpt.W),
            self._asarray(ckpt.b),
            _random.rng_from_state(ckpt.rng_state),
        )
        self.W, self.b, self._velocity, self._rng = W, b, velocity, rng
        self.history_, self.epoch_ = History(**ckpt.history), ckpt.epoch

    def _check_resumable(
        self, path: PathLike, ckpt: Checkpoint, epochs: int, batch_size: int, n: int
    ) -> None:
        where = str(path)
        if ckpt.solver != self._solver:
            raise ResumeMismatchError(
                where,
                "solver",
                f"the checkpoint was written by solver={ckpt.solver!r}, this run uses solver="
                f"{self._solver!r}; resume with solver={ckpt.solver!r} (SGD epochs and L-BFGS "
                "iterations do not mix in one run).",
                {"solver": (ckpt.solver, self._solver)},
            )
        ours = {**self._hyperparameters(), "batch_size": batch_size, "n_samples": n}
        theirs = {
            **ckpt.hyperparameters,
            "batch_size": ckpt.batch_size,
            "n_samples": ckpt.n_samples,
        }
        differ = {
            key: (theirs[key], ours[key])
            for key in ours
            if key != "seed" and ours[key] != theirs[key]
        }
        if differ:
            written = ", ".join(
                f"{key}={was!r} (here {now!r})" for key, (was, now) in differ.items()
            )
            raise ResumeMismatchError(
                where,
                "settings",
                f"the checkpoint was written with {written}; resume with the same model "
                "settings, batch_size and training data.",
                differ,
            )
        if ckpt.blocks != self._blocks:
            raise ResumeMismatchError(
                where,
                "blocks",
                f"the checkpoint's run visited {_describe_blocks(ckpt.blocks)}, this one "
                f"{_describe_blocks(self._blocks)}; resume with the same shuffle and blocks "
                "(block_rows, or the Dask array's chunks).",
                {"blocks": (ckpt.blocks, self._blocks)},
            )
        ours_data = self._data_fingerprint
        change = None if None in (ckpt.data, ours_data) else describe_change(ckpt.data, ours_data)
        if change is not None:
            raise ResumeMismatchError(
                where,
                "data",
                f"the checkpoint's run was trained on other data: {change}; resume with the "
                "same training data, in the same order.",
            )
        if ckpt.epoch > epochs:
            raise ResumeMismatchError(
                where,
                "epochs",
                f"the checkpoint has {ckpt.epoch} completed epochs, more than epochs={epochs} "
                "(epochs counts every epoch of the run).",
                {"epochs": (ckpt.epoch, epochs)},
            )

    def _epoch(
        self,
        X: Array,
        y: Array,
        val: tuple[Array, Array] | None,
        sizes: Array,
        epoch: int,
        batch_size: int,
        weights: Array | None = None,
        block_rows: int | None = None,
    ) -> None:
        """Train epoch ``epoch`` and commit it, or raise leaving the model as it was."""
        xp = self.xp
        start = time.perf_counter()
        rng = _random.clone(self._rng)  # advanced only when the epoch is committed
        lr = self._step_size(epoch)
        settings = dict(lr=lr, momentum=self.momentum, reg=self.reg, batch_size=batch_size, xp=xp)
        if block_rows is None:
            order = asarray_on(self._backend, _random.permutation(rng, X.shape[0]), xp.int64)
            W, b, velocity, batch_losses = sgd_epoch(
                X, y, order, self.W, self.b, self._velocity, weights=weights, **settings
            )
        else:
            W, b, velocity, batch_losses, sizes = self._blocks_epoch(
                X, y, weights, rng, block_rows, settings
            )
        val_hits = None if val is None else self._val_hits_of(val)
        self._commit(
            epoch, start, lr, rng, W, b, velocity, batch_losses, sizes, X.shape[0], val_hits
        )

    def _step_size(self, epoch: int) -> float:
        """SGD's step size in epoch ``epoch`` (1-based): ``lr * lr_decay ** (epoch - 1)``."""
        return self.lr * self.lr_decay ** (epoch - 1)

    def _blocks_epoch(
        self,
        X: Array,
        y: Array,
        weights: Array | None,
        rng: Any,
        block_rows: int,
        settings: dict[str, Any],
    ) -> tuple[Array, Array, tuple[Array, Array] | None, Array, Array]:
        """One ``shuffle="blocks"`` epoch: :func:`sgd_epoch` on each block of ``block_rows`` rows,
        in the order of :func:`softmax_xp._random.block_plan`; also returns the batch sizes."""
        xp, n = self.xp, X.shape[0]
        bounds = _row_slices(n, block_rows)
        visit, orders = _random.block_plan(rng, [s.stop - s.start for s in bounds])
        W, b, velocity, losses, sizes = self.W, self.b, self._velocity, [], []
        for i, order in zip(visit, orders, strict=True):
            rows = bounds[i]
            order = asarray_on(self._backend, order, xp.int64)
            w = None if weights is None else weights[rows]
            W, b, velocity, part = sgd_epoch(
                X[rows, ...], y[rows], order, W, b, velocity, weights=w, **settings
            )
            losses.append(part)
            sizes += _batch_sizes(rows.stop - rows.start, settings["batch_size"])
        return W, b, velocity, self._concat(losses), self._asarray(sizes)

    def _commit(
        self,
        epoch: int,
        start: float,
        lr: float,
        rng: Any,
        W: Array,
        b: Array,
        velocity: tuple[Array, Array] | None,
        batch_losses: Array,
        sizes: Array,
        n: int,
        val_hits: ValHits | None,
    ) -> None:
        """Check the epoch's result (finite loss and weights), then make it the model's state.

        The epoch's loss is ``sum(batch_losses * sizes) / n``, the mean over its ``n`` rows."""
        xp = self.xp
        # One host read: the summed loss, whether every parameter is finite, and the validation
        # hits (as two parts, each exact in the weights' dtype).
        finite = xp.all(xp.isfinite(W)) & xp.all(xp.isfinite(b))
        for v in velocity or ():
            finite = finite & xp.all(xp.isfinite(v))
        values = [xp.sum(batch_losses * sizes), xp.astype(finite, W.dtype)]
        if val_hits is not None:
            values += [xp.astype(part, W.dtype) for part in _split_count(val_hits[0](W, b))]
        total, ok, *hit_parts = to_numpy(xp.stack(values)).tolist()
        loss = total / n
        if not (ok and abs(loss) < float("inf")):
            raise self._diverged(epoch, lr, batch_losses, weights_finite=bool(ok))
        accuracy = None
        if val_hits is not None:
            high, low = (int(part) for part in hit_parts)
            accuracy = (high * _HITS_SPLIT + low) / val_hits[1]
        history = self.history_.extended(loss, accuracy, time.perf_counter() - start)
        # Commit with plain attribute stores only, so a Ctrl-C cannot split the epoch's state.
        self.W, self.b, self._velocity, self._rng = W, b, velocity, rng
        self.epoch_, self.history_ = epoch, history

    def _diverged(
        self, epoch: int, lr: float, batch_losses: Array, weights_finite: bool
    ) -> TrainingDivergedError:
        xp = self.xp
        bad = ~xp.isfinite(batch_losses)
        batch = None
        what = "the summed loss overflowed" if weights_finite else "the weights overflowed"
        if bool(xp.any(bad)):
            index = int(xp.argmax(xp.astype(bad, xp.int32)))
            batch = index + 1
            value = float(batch_losses[index])
            what = f"the loss of batch {batch} of {batch_losses.shape[0]} is {value}"
        kept = f"epoch {epoch - 1}" if epoch > 1 else "the start of the run"
        return TrainingDivergedError(
            f"Training diverged in epoch {epoch}: {what} (step size {lr:g}).",
            kept=f"The model keeps the weights of {kept}.",
            advice=f"Try a smaller lr, e.g. lr={self.lr / 10:g}.",
            epoch=epoch,
            batch=batch,
            history=self.history_,
        )

    def _write_checkpoint(self, path: PathLike, batch_size: int, n: int, epochs: int) -> None:
        velocity = None if self._velocity is None else tuple(map(to_numpy, self._velocity))
        state = Checkpoint(
            hyperparameters=self._hyperparameters(),
            W=to_numpy(self.W),
            b=to_numpy(self.b),
            velocity=velocity,
            epoch=self.epoch_,
            history=self.history_.to_dict(),
            rng_state=_random.get_state(self._rng),
            batch_size=batch_size,
            n_samples=n,
            solver=self._solver,
            epochs=epochs,
        )
        data = getattr(self, "_data_fingerprint", None)  # None in a model pickled before it
        write_checkpoint(path, state, trained_on=self.backend, blocks=self._blocks, data=data)

    def _report(self, epochs: int) -> None:
        history = self.history_
        line = f"epoch {self.epoch_:>{len(str(epochs))}}/{epochs}  loss {history.loss[-1]:.4f}"
        if history.val_accuracy:
            line += f"  val_acc {history.val_accuracy[-1]:.4f}"
        print(f"{line}  {history.epoch_time[-1]:.3f}s", flush=True)

    def _memory_advice(self, where: str, advice: str) -> str:
        return f"Out of device memory in {where} on {self.backend} ({self.device}): {advice}."

    # -- inference -----------------------------------------------------------------------------
    def _logits(self, X: Array, W: Array | None = None, b: Array | None = None) -> Array:
        return X @ (self.W if W is None else W) + (self.b if b is None else b)

    def _chunk_rows(self, chunk_size: int | None) -> int:
        if chunk_size is not None:
            return check_int(chunk_size, "chunk_size", 1)
        row_bytes = (self.input_dim + 2 * self.num_classes) * (
            4 if self.dtype_name == "float32" else 8
        )
        return max(1, min(_MAX_CHUNK_ROWS, _CHUNK_BYTES // row_bytes))

    def _chunks(self, X: Any, rows: int) -> Iterator[Array]:
        """``X`` checked, then moved to the device ``rows`` rows at a time."""
        X = warn_if_unscaled(features_on_host_or_device(X, self.input_dim))
        for rows_ in _row_slices(X.shape[0], rows):
            yield self._features(X[rows_, ...])

    def _concat(self, parts: list[Array]) -> Array:
        return parts[0] if len(parts) == 1 else self.xp.concat(parts, axis=0)

    def _predict_advice(self, where: str, rows: int) -> str:
        return self._memory_advice(
            where,
            f"pass a smaller chunk_size (now {rows} rows), e.g. chunk_size={max(1, rows // 4)}",
        )

    @_on_device
    def predict_proba(self, X: Any, *, chunk_size: int | None = None) -> Array:
        """Class probabilities ``softmax(X W + b)``, shape ``(n_samples, num_classes)``.

        ``X`` is processed ``chunk_size`` rows at a time (default: up to 65536 rows, fewer when
        the features and logits of a chunk would exceed 256 MiB). Raises ValueError when the
        logits overflow the model's dtype (features far outside the training range). A Dask
        ``X`` gives a lazy Dask array, computed block by block where the blocks are
        (``chunk_size`` is not used).
        """
        if is_dask_array(X):
            from . import _dask

            return _dask.predict_proba(self, X)
        return self._per_chunk(
            "predict_proba", X, chunk_size, lambda z: softmax(z, axis=-1, xp=self.xp)
        )

    @_on_device
    def predict(self, X: Any, *, chunk_size: int | None = None) -> Array:
        """Most probable class of each row of ``X`` (int64, on the model's device); chunked and
        checked as in :meth:`predict_proba` (a Dask ``X`` gives a lazy Dask array)."""
        if is_dask_array(X):
            from . import _dask

            return _dask.predict(self, X)
        return self._per_chunk("predict", X, chunk_size, lambda z: self.xp.argmax(z, axis=1))

    def _per_chunk(
        self, where: str, X: Any, chunk_size: int | None, of_logits: Callable[[Array], Array]
    ) -> Array:
        """``of_logits`` of each chunk's logits, concatenated; refused if any logits overflowed
        (see :meth:`_check_logits`)."""
        rows = self._chunk_rows(chunk_size)
        with out_of_memory_hint(lambda: self._predict_advice(where, rows)):
            finite: list[Array] = []
            with quiet_float_warnings():
                parts = [of_logits(self._finite_logits(Xc, finite)) for Xc in self._chunks(X, rows)]
            self._check_logits(finite)
            return self._concat(parts)

    @_on_device
    def score(self, X: Any, y: Any, *, chunk_size: int | None = None) -> float:
        """Accuracy of :meth:`predict` on ``(X, y)``; chunked and checked as in
        :meth:`predict_proba`.

        With a Dask ``X`` it is one reduction over the blocks (``y`` a Dask or in-memory array)."""
        if is_dask_array(X):
            from . import _dask

            return _dask.score(self, X, y)
        rows = self._chunk_rows(chunk_size)
        with out_of_memory_hint(lambda: self._predict_advice("score", rows)):
            X = features_on_host_or_device(X, self.input_dim)
            n = X.shape[0]
            y = self._labels(y, n)
            finite: list[Array] = []
            with quiet_float_warnings():
                hits = [
                    self._hits(Xc, y[rows_], finite=finite)
                    for rows_, Xc in zip(_row_slices(n, rows), self._chunks(X, rows), strict=True)
                ]
            self._check_logits(finite)
            return int(self.xp.sum(self.xp.stack(hits))) / n

    def _finite_logits(self, X: Array, finite: list[Array]) -> Array:
        """The logits of ``X``; appends whether they are all finite (a 0-d device bool, read
        once for all chunks by :meth:`_check_logits`) to ``finite``."""
        z = self._logits(X)
        finite.append(self.xp.all(self.xp.isfinite(z)))
        return z

    def _check_logits(self, finite: list[Array]) -> None:
        """Refuse results computed from overflowed logits (one host read for every chunk)."""
        if bool(self.xp.all(self.xp.stack(finite))):
            return
        raise ValueError(
            f"The logits X @ W + b overflowed {self.dtype_name} for some rows of X: their "
            "features are far larger than those the model was trained on, so the "
            "probabilities would be NaN and the predicted classes arbitrary. Scale X as the "
            "training data was scaled (MNIST pixels lie in [0, 1])"
            + (", or use a float64 model." if self.dtype_name == "float32" else ".")
        )

    def _hits(
        self,
        X: Array,
        y: Array,
        W: Array | None = None,
        b: Array | None = None,
        finite: list[Array] | None = None,
    ) -> Array:
        """How many rows of ``X`` are classified as ``y`` (a 0-d int64 device array); with
        ``finite``, whether the logits were finite is appended to it."""
        z = self._logits(X, W, b) if finite is None else self._finite_logits(X, finite)
        hits = self.xp.argmax(z, axis=1) == y
        return self.xp.sum(self.xp.astype(hits, self.xp.int64))

    def _val_hits_of(self, val: tuple[Array, Array]) -> ValHits:
        """The hit count of weights ``(W, b)`` on ``val`` (on the device), and its rows."""
        return (lambda W, b: self._val_hits(*val, W, b)), val[0].shape[0]

    def _val_hits(self, X: Array, y: Array, W: Array, b: Array) -> Array:
        """How many rows of ``(X, y)``, already on the device, are right (0-d int64 device array);
        in chunks, no host read."""
        n, rows = X.shape[0], self._chunk_rows(None)
        hits = [self._hits(X[r, ...], y[r], W, b) for r in _row_slices(n, rows)]
        return hits[0] if len(hits) == 1 else self.xp.sum(self.xp.stack(hits))

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
        with model._backend.activate():
            model.W, model.b = model._asarray(W), model._asarray(b)
        return model


def _mean_one(weights: Array | None, xp: Any) -> Array | None:
    """Sample weights scaled to mean 1, as SGD uses them (see train's ``sample_weight``). The
    mean is exact (one host read), so a Dask ``X``'s blocks, whose sums add up in another order,
    get the same weights."""
    if weights is None:
        return None
    return weights / xp.asarray(exact_mean(weights), dtype=weights.dtype, device=device_of(weights))


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


def _check_run_files(checkpoint: Any, resume_from: Any, callback: Any) -> None:
    """Refuse a ``checkpoint`` or ``resume_from`` that is not a path, and a ``callback`` that
    cannot be called, before the first epoch rather than after it."""
    for name, path in (("checkpoint", checkpoint), ("resume_from", resume_from)):
        if path is not None and not isinstance(path, str | os.PathLike):
            raise TypeError(
                f"{name} must be a file path (a str or pathlib.Path), got {path!r} "
                f"({type(path).__name__})."
            )
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback must be a function called as callback(epoch, history), got {callback!r} "
            f"({type(callback).__name__})."
        )


def _check_shuffle(shuffle: Any, block_rows: Any, dask: bool) -> int | None:
    """``block_rows`` checked: None for ``shuffle="global"`` (and for Dask chunks as they are)."""
    if shuffle not in ("global", "blocks"):
        raise ValueError(f"Unknown shuffle {shuffle!r}; use 'global' or 'blocks'.")
    if block_rows is not None:
        block_rows = check_int(block_rows, "block_rows", 1)
        if shuffle == "global" and not dask:
            raise ValueError("block_rows is used with shuffle='blocks'; pass both, or neither.")
    elif shuffle == "blocks" and not dask:
        raise ValueError("shuffle='blocks' needs block_rows, the number of rows per block.")
    return block_rows


def _describe_blocks(blocks: list[int] | None) -> str:
    if blocks is None:
        return "all rows in one shuffle (shuffle='global')"
    return f"{len(blocks)} blocks of up to {max(blocks)} rows"


def _row_slices(n: int, rows: int) -> list[slice]:
    """``rows``-row slices covering ``range(n)``, none running past ``n`` (array-api-strict
    refuses out-of-bounds stops)."""
    return [slice(lo, min(lo + rows, n)) for lo in range(0, n, rows)]


def _accuracy(val_hits: ValHits, W: Array, b: Array) -> float:
    """Validation accuracy of ``(W, b)`` (one host read)."""
    count, n = val_hits
    return int(count(W, b)) / n


def _split_count(count: Array) -> tuple[Array, Array]:
    """``(count // 4096, count % 4096)``: both exact in float32 for counts below 2**36."""
    return count // _HITS_SPLIT, count % _HITS_SPLIT


def _batch_sizes(n: int, batch_size: int) -> list[int]:
    return [min(batch_size, n - lo) for lo in range(0, n, batch_size)]
