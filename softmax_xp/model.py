"""SoftmaxXP: the chapter's softmax linear classifier on any array-API backend."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from . import _random
from ._backend import asarray_on, resolve_backend, to_numpy
from ._io import ModelFileError, read_npz, write_npz_atomic
from ._sgd import sgd_epoch
from .functional import loss_and_grads, softmax

__all__ = ["History", "SoftmaxXP"]

Array = Any
_DTYPES = ("float32", "float64")


@dataclass
class History:
    """Per-epoch training record: mean training loss, validation accuracy and wall time (s)."""

    loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    epoch_time: list[float] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        if key not in ("loss", "val_accuracy", "epoch_time"):
            raise KeyError(f"{key!r}; History has 'loss', 'val_accuracy' and 'epoch_time'")
        return getattr(self, key)

    def __len__(self) -> int:
        return len(self.loss)

    def to_dict(self) -> dict[str, list[float]]:
        return {"loss": self.loss, "val_accuracy": self.val_accuracy, "epoch_time": self.epoch_time}


class SoftmaxXP:
    """Softmax linear classifier ``p(y | x) = softmax(x W + b)`` trained by mini-batch SGD.

    The same code runs on NumPy, CuPy, PyTorch and array-api-strict: ``backend="auto"`` picks
    CuPy when a CUDA device answers and NumPy otherwise; an unavailable explicit backend falls back
    to NumPy with a :class:`~softmax_xp.BackendFallbackWarning` (or raises with ``fallback=False``).

    Parameters
    ----------
    input_dim, num_classes
        Number of features ``d`` and classes ``K``; ``W`` is ``d x K``, ``b`` is ``1 x K``.
    lr, reg, momentum, lr_decay
        SGD step size, L2 strength (loss term ``0.5 * reg * ||W||^2``), heavy-ball momentum, and the
        factor the step size is multiplied by after each epoch (1.0, the chapter's, keeps it fixed).
    backend, device, fallback
        Where the parameters live; see :func:`softmax_xp.backend_info`.
    dtype
        ``"float32"`` or ``"float64"``: the dtype of the parameters and of the data in training.
    seed
        Seeds the initial weights ``0.001 * N(0, 1)`` and the per-epoch shuffles: one seed gives one
        trajectory on every backend.
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
        if dtype not in _DTYPES:
            raise ValueError(f"Unknown dtype {dtype!r}; use one of {', '.join(_DTYPES)}.")
        self.input_dim = int(input_dim)
        self.num_classes = int(num_classes)
        self.lr = float(lr)
        self.reg = float(reg)
        self.momentum = float(momentum)
        self.lr_decay = float(lr_decay)
        self.seed = seed
        self.dtype_name = dtype
        self._backend = resolve_backend(backend, device=device, fallback=fallback)
        self.dtype = getattr(self.xp, dtype)
        self._rng = _random.make_rng(seed)
        W0 = _random.initial_weights(self._rng, (self.input_dim, self.num_classes))
        self.W = self._asarray(W0)
        self.b = self.xp.zeros((1, self.num_classes), dtype=self.dtype, device=self.device)
        self._velocity: tuple[Array, Array] | None = None

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
        return (
            f"SoftmaxXP(input_dim={self.input_dim}, num_classes={self.num_classes}, lr={self.lr}, "
            f"reg={self.reg}, momentum={self.momentum}, backend={self.backend!r}, "
            f"dtype={self.dtype_name!r})"
        )

    def _asarray(self, x: Any, dtype: Any = None) -> Array:
        return asarray_on(self._backend, x, self.dtype if dtype is None else dtype)

    def _features(self, X: Any) -> Array:
        X = self._asarray(X)
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise ValueError(
                f"X has shape {tuple(X.shape)}, but SoftmaxXP is expecting "
                f"{self.input_dim} features as input (shape (n_samples, {self.input_dim}))."
            )
        return X

    def _labels(self, y: Any, n: int) -> Array:
        y = self._asarray(y, dtype=self.xp.int64)
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(
                "Found input variables with inconsistent numbers of samples: "
                f"[{n}, {y.shape[0] if y.ndim else 0}]"
            )
        return y

    # -- the chapter's methods -----------------------------------------------------------------
    def softmax(self, z: Any) -> Array:
        """Row-wise softmax of logits ``z`` (max subtracted, so it never overflows)."""
        return softmax(self._asarray(z), axis=-1)

    def compute_loss_and_grads(self, X: Any, y: Any) -> tuple[Array, Array, Array]:
        """``(loss, dW, db)`` of the regularised cross-entropy on ``(X, y)`` at the current weights."""
        X = self._features(X)
        return loss_and_grads(X, self._labels(y, X.shape[0]), self.W, self.b, self.reg)

    def train(
        self,
        X: Any,
        y: Any,
        X_val: Any = None,
        y_val: Any = None,
        epochs: int = 100,
        batch_size: int = 256,
        verbose: int = 1,
    ) -> History:
        """Mini-batch SGD over ``epochs`` shuffled passes of ``(X, y)``.

        Data is moved to the model's backend once. Within an epoch nothing is read back to the
        host: the running loss stays on the device and is read once per epoch.
        """
        xp = self.xp
        X = self._features(X)
        y = self._labels(y, X.shape[0])
        validate = X_val is not None
        if validate:
            X_val = self._features(X_val)
            y_val = self._labels(y_val, X_val.shape[0])
        n = X.shape[0]
        if self.momentum > 0 and self._velocity is None:
            self._velocity = (xp.zeros_like(self.W), xp.zeros_like(self.b))
        sizes = xp.asarray(_batch_sizes(n, batch_size), dtype=self.dtype, device=self.device)
        history = History()
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            order = asarray_on(self._backend, _random.permutation(self._rng, n), xp.int64)
            self.W, self.b, self._velocity, batch_losses = sgd_epoch(
                X,
                y,
                order,
                self.W,
                self.b,
                self._velocity,
                lr=self.lr * self.lr_decay ** (epoch - 1),
                momentum=self.momentum,
                reg=self.reg,
                batch_size=batch_size,
                xp=xp,
            )
            history.loss.append(float(xp.sum(batch_losses * sizes)) / n)
            if validate:
                history.val_accuracy.append(self._accuracy(X_val, y_val))
            history.epoch_time.append(time.perf_counter() - start)
            if verbose:
                self._report(epoch, epochs, history)
        return history

    fit = train

    def _report(self, epoch: int, epochs: int, history: History) -> None:
        line = f"epoch {epoch:>{len(str(epochs))}}/{epochs}  loss {history.loss[-1]:.4f}"
        if history.val_accuracy:
            line += f"  val_acc {history.val_accuracy[-1]:.4f}"
        print(f"{line}  {history.epoch_time[-1]:.3f}s", flush=True)

    # -- inference -----------------------------------------------------------------------------
    def _logits(self, X: Array) -> Array:
        return X @ self.W + self.b

    def predict_proba(self, X: Any) -> Array:
        """Class probabilities ``softmax(X W + b)``, shape ``(n_samples, num_classes)``."""
        return softmax(self._logits(self._features(X)), axis=-1, xp=self.xp)

    def predict(self, X: Any) -> Array:
        """Most probable class of each row of ``X`` (int64, on the model's device)."""
        return self.xp.argmax(self._logits(self._features(X)), axis=1)

    def _accuracy(self, X: Array, y: Array) -> float:
        hits = self.xp.argmax(self._logits(X), axis=1) == y
        return int(self.xp.sum(self.xp.astype(hits, self.xp.int64))) / X.shape[0]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy of :meth:`predict` on ``(X, y)``."""
        X = self._features(X)
        return self._accuracy(X, self._labels(y, X.shape[0]))

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

    def save(self, path: str | os.PathLike) -> os.PathLike:
        """Save the weights and hyperparameters to a .npz file (atomically, no pickle)."""
        arrays = {"W": to_numpy(self.W), "b": to_numpy(self.b)}
        header = {"kind": "model", "trained_on": self.backend, **self._hyperparameters()}
        return write_npz_atomic(path, arrays, header)

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str = "auto", device: Any = None) -> SoftmaxXP:
        """Load a model saved by :meth:`save` onto ``backend`` (any backend, whichever saved it)."""
        arrays, header = read_npz(path)
        try:
            hyper = {key: header[key] for key in cls._header_keys()}
            W, b = arrays["W"], arrays["b"]
        except KeyError as exc:
            raise ModelFileError(f"{path}: the model file has no {exc.args[0]!r} entry.") from None
        d, k = int(hyper["input_dim"]), int(hyper["num_classes"])
        if W.shape != (d, k) or b.shape != (1, k):
            raise ModelFileError(
                f"{path}: W has shape {W.shape} and b {b.shape}; expected {(d, k)} and {(1, k)}."
            )
        if W.dtype.kind != "f" or b.dtype.kind != "f":
            raise ModelFileError(f"{path}: W and b must be floating-point arrays.")
        if not (_all_finite(W) and _all_finite(b)):
            raise ModelFileError(f"{path}: the weights contain NaN or infinity.")
        model = cls(**hyper, backend=backend, device=device)
        model.W, model.b = model._asarray(W), model._asarray(b)
        return model

    @staticmethod
    def _header_keys() -> tuple[str, ...]:
        return ("input_dim", "num_classes", "lr", "reg", "momentum", "lr_decay", "dtype", "seed")


def _batch_sizes(n: int, batch_size: int) -> list[int]:
    return [min(batch_size, n - lo) for lo in range(0, n, batch_size)]


def _all_finite(a: Any) -> bool:
    return bool(a.size == 0 or (abs(a) < float("inf")).all())
