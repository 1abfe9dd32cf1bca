"""SoftmaxXP: the chapter's softmax linear classifier on any array-API backend.

The model holds the parameters, the backend, the device and the files; its training methods
(:mod:`softmax_xp._fitting`) run a run (:mod:`softmax_xp._training`) over a data source
(:mod:`softmax_xp._data`) that commits each epoch's state back to the model, and its
predictions (:mod:`softmax_xp._predictions`) are functions of ``(W, b)``.
"""

from __future__ import annotations

import os
from typing import Any

from . import _data, _random
from ._backend import asarray_on, device_description, resolve_backend, to_numpy
from ._errors import out_of_memory_hint
from ._fitting import Trainable, on_device
from ._modelfile import read_model, write_model
from ._predictions import LinearPredictions
from ._training.callbacks import Callback, EarlyStopping
from ._training.history import History
from ._training.state import TrainState
from ._validation import (
    as_features,
    as_labels,
    check_bool,
    check_device_dtype,
    check_hyperparameters,
    l1_share,
)
from .functional import loss_and_grads, softmax

__all__ = ["Callback", "EarlyStopping", "History", "SoftmaxXP"]

Array = Any
PathLike = str | os.PathLike[str]
INITS = ("random", "zeros")


class _StateField:
    """``model.W``, ``model.b``, ``model.history_``, ``model.epoch_``: fields of the model's
    TrainState. The weights take assignments of any backend's array (or a list) of their shape,
    moved to the model's backend and dtype; History and the epoch count are read-only."""

    def __init__(self, field: str):
        self.field = field

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, model: Any, owner: type | None = None) -> Any:
        return self if model is None else getattr(model._state, self.field)

    def __set__(self, model: Any, value: Any) -> None:
        if self.field not in ("W", "b"):
            raise AttributeError(f"{self.name} is set by training; it cannot be assigned.")
        shape = (model.input_dim if self.field == "W" else 1, model.num_classes)
        with model._backend.activate():
            value = model._asarray(value)
            if tuple(value.shape) != shape:
                raise ValueError(f"{self.name} must have shape {shape}, got {tuple(value.shape)}.")
            if self.field == "b" and not model.fit_intercept and bool(model.xp.any(value != 0)):
                raise ValueError(
                    f"{self.name} must be zero in a model with fit_intercept=False, which has "
                    "no bias; set fit_intercept = True first to give it one."
                )
        model._state = model._state.replace(**{self.field: value})


class SoftmaxXP(Trainable, LinearPredictions):
    """Softmax linear classifier ``p(y | x) = softmax(x W + b)`` trained by mini-batch SGD.

    The same code runs on NumPy, CuPy, PyTorch and array-api-strict: ``backend="auto"`` picks
    CuPy when a CUDA device answers and NumPy otherwise; an unavailable explicit backend falls back
    to NumPy with a :class:`~softmax_xp.BackendFallbackWarning` (or raises with ``fallback=False``).

    Parameters
    ----------
    input_dim, num_classes
        Number of features ``d >= 1`` and classes ``K >= 2``; ``W`` is ``d x K``, ``b`` is ``1 x K``.
    lr, reg, momentum, lr_decay
        SGD step size (finite, > 0), penalty strength (>= 0; with the default L2 penalty the loss
        term is ``0.5 * reg * ||W||^2``), heavy-ball momentum (in [0, 1)) and the factor in
        (0, 1] the step size is multiplied by after each epoch (1.0, the chapter's, keeps it
        fixed).
    penalty, l1_ratio
        ``"l2"`` (default), ``"l1"`` or ``"elasticnet"`` with ``l1_ratio`` in [0, 1] (None: 0.15,
        SGDClassifier's default; None with the other two): the loss term is ``reg * (l1_ratio * ||W||_1 + 0.5 * (1 - l1_ratio) *
        ||W||^2)``, ``l1_ratio`` 0 for ``"l2"`` and 1 for ``"l1"``; the bias is never penalised.
        SGD applies the L1 part as a clip toward zero (the cumulative penalty of Tsuruoka et al.,
        as SGDClassifier), L-BFGS exactly on the split ``W = U - V``, ``U, V >= 0``; both give
        exact zeros.
    backend, device, fallback
        Where the parameters live; see :func:`softmax_xp.backend_info`.
    dtype
        ``"float32"`` or ``"float64"``: the dtype of the parameters and of the data in training.
        A device without float64 (Apple's MPS, array-api-strict's ``"no_float64"``) needs float32.
    seed
        Seeds the initial weights ``0.001 * N(0, 1)`` and the per-epoch shuffles: one seed gives one
        trajectory on every backend.
    init
        ``"random"`` (the chapter's small random start) or ``"zeros"`` (as scikit-learn's linear
        models start; the shuffles are the same either way).
    fit_intercept
        True (default): train the bias ``b``. False: ``p(y | x) = softmax(x W)``; ``b`` stays
        exactly zero in every solver, in files and checkpoints (as LogisticRegression's
        ``fit_intercept=False``). Setting the attribute to False zeroes ``b``.

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

    Examples
    --------
    The chapter's experiment on a tenth of MNIST (it ships with the package):

    >>> from softmax_xp import load_mnist
    >>> (X, y), (X_test, y_test) = load_mnist()
    >>> model = SoftmaxXP(784, 10, backend="numpy", seed=0)
    >>> history = model.train(X[:6000], y[:6000], epochs=3)
    >>> model.score(X_test, y_test) > 0.85
    True
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
        init: str = "random",
        penalty: str = "l2",
        l1_ratio: float | None = None,
        fit_intercept: bool = True,
    ):
        if init not in INITS:
            raise ValueError(f"Unknown init {init!r}; use one of {', '.join(map(repr, INITS))}.")
        hyper = check_hyperparameters(
            input_dim, num_classes, lr, reg, momentum, lr_decay, dtype, seed, penalty, l1_ratio,
            fit_intercept,
        )  # fmt: skip
        self.input_dim: int = hyper["input_dim"]
        self.num_classes: int = hyper["num_classes"]
        self.lr: float = hyper["lr"]
        self.reg: float = hyper["reg"]
        self.momentum: float = hyper["momentum"]
        self.lr_decay: float = hyper["lr_decay"]
        self.seed: int | None = hyper["seed"]
        self.penalty: str = hyper["penalty"]
        self.l1_ratio: float | None = hyper["l1_ratio"]
        self._fit_intercept: bool = hyper["fit_intercept"]
        self.dtype_name: str = hyper["dtype"]
        self._backend = resolve_backend(backend, device=device, fallback=fallback)
        check_device_dtype(self._backend, self.dtype_name)
        self.dtype = getattr(self.xp, self.dtype_name)
        rng = _random.make_rng(self.seed)
        W0 = _random.initial_weights(rng, (self.input_dim, self.num_classes))  # drawn either way
        if init == "zeros":
            W0 = 0.0 * W0
        with self._backend.activate():
            W = self._asarray(W0)
        self._state = TrainState(W, self._zero_bias(), None, rng)
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

    @property
    def fit_intercept(self) -> bool:
        """Whether training fits the bias ``b``; setting it to False zeroes ``b``."""
        return self._fit_intercept

    @fit_intercept.setter
    def fit_intercept(self, value: bool) -> None:
        self._fit_intercept = check_bool(value, "fit_intercept")
        if not self._fit_intercept:
            self._state = self._state.replace(b=self._zero_bias())

    def _zero_bias(self) -> Array:
        with self._backend.activate():
            return self.xp.zeros((1, self.num_classes), dtype=self.dtype, device=self.device)

    # -- parameters and the run's state: see _StateField ---------------------------------------
    W = _StateField("W")
    b = _StateField("b")
    history_ = _StateField("history")
    epoch_ = _StateField("epoch")

    def _commit(self, state: TrainState) -> None:
        self._state = state  # one store: an interruption never splits an epoch's state

    def __repr__(self) -> str:
        decay = "" if self.lr_decay == 1.0 else f"lr_decay={self.lr_decay}, "
        if self.penalty != "l2":
            ratio = f", l1_ratio={self.l1_ratio}" if self.penalty == "elasticnet" else ""
            decay += f"penalty={self.penalty!r}{ratio}, "
        if not self.fit_intercept:
            decay += "fit_intercept=False, "
        device = ""
        if self.backend == "jax":
            device = f", device={device_description(self.device)!r}"
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
        # a cupy.cuda.Device as its id, a jax.Device as "gpu:1": neither pickles
        state["_backend"] = (self.backend, device_description(self.device))
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
    @on_device
    def softmax(self, z: Any) -> Array:
        """Row-wise softmax of logits ``z`` (max subtracted, so it never overflows).

        Examples
        --------
        >>> SoftmaxXP(2, 3, backend="numpy").softmax([[0.0, 0.0, 0.0], [1000.0, 0.0, 0.0]])
        array([[0.33333334, 0.33333334, 0.33333334],
               [1.        , 0.        , 0.        ]], dtype=float32)
        """
        return softmax(self._asarray(z), axis=-1)

    @on_device
    def compute_loss_and_grads(self, X: Any, y: Any) -> tuple[Array, Array, Array]:
        """``(loss, dW, db)`` of the regularised cross-entropy on ``(X, y)`` at the current weights
        (with an L1 part, ``dW`` holds its subgradient ``reg * l1_ratio * sign(W)``).

        Examples
        --------
        >>> model = SoftmaxXP(2, 3, reg=0.0, backend="numpy", dtype="float64", seed=0)
        >>> loss, dW, db = model.compute_loss_and_grads([[1.0, 2.0]], [2])
        >>> round(float(loss), 2), dW.shape, db.shape  # about log(3) at the small start
        (1.1, (2, 3), (1, 3))
        """
        with out_of_memory_hint(
            lambda: self._memory_advice("compute_loss_and_grads", "pass fewer rows")
        ):
            X = as_features(X, self._backend, self.dtype, self.input_dim)
            y = as_labels(y, self._backend, X.shape[0], self.num_classes)
            return loss_and_grads(X, y, self.W, self.b, self.reg, l1_ratio=self._l1_share())

    def _l1_share(self) -> float:
        """The penalty's L1 share: 0 for ``"l2"``, 1 for ``"l1"``, else ``l1_ratio``."""
        return l1_share(self.penalty, self.l1_ratio)

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
            "penalty": self.penalty,
            "l1_ratio": self.l1_ratio,
            "fit_intercept": self.fit_intercept,
        }

    def save(self, path: PathLike) -> os.PathLike[str]:
        """Save the weights and hyperparameters to a .npz file (atomically, no pickle).

        Examples
        --------
        >>> path = SoftmaxXP(4, 3, backend="numpy", seed=0).save("model.npz")
        >>> SoftmaxXP.load(path, backend="numpy").input_dim
        4
        """
        W, b = to_numpy(self.W), to_numpy(self.b)
        return write_model(path, self._hyperparameters(), W, b, trained_on=self.backend)

    @classmethod
    def load(cls, path: PathLike, backend: str = "auto", device: Any = None) -> SoftmaxXP:
        """Load a model saved by :meth:`save` (or the weights of a training checkpoint) onto
        ``backend``, whichever backend saved it.

        The file is read without pickle and checked (format version, keys, shapes, dtypes, finite
        values); anything else raises :class:`~softmax_xp.ModelFileError`.

        Examples
        --------
        >>> model = SoftmaxXP(4, 3, backend="numpy", seed=0)
        >>> twin = SoftmaxXP.load(model.save("model.npz"), backend="numpy")
        >>> bool((twin.W == model.W).all())
        True
        """
        hyper, W, b = read_model(path)
        model = cls(**hyper, backend=backend, device=device)
        model.W, model.b = W, b
        return model
