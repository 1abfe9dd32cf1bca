"""What model files and checkpoints hold, and the checks made when one is read.

A model file holds ``W``, ``b`` and the hyperparameters. A checkpoint holds the same (so it loads as
a model) plus the momentum buffers ``vW``/``vb``, the RNG state, the number of completed epochs,
the History, the batch size and the number of training samples: everything a resumed run needs to
continue exactly where the interrupted one stopped. Arrays are host NumPy arrays here.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _random
from ._fingerprint import is_fingerprint
from ._io import ModelFileError, read_npz, write_npz_atomic
from ._validation import check_hyperparameters

__all__ = [
    "HYPERPARAMETERS",
    "Checkpoint",
    "read_checkpoint",
    "read_model",
    "write_checkpoint",
    "write_model",
]

HYPERPARAMETERS = ("input_dim", "num_classes", "lr", "reg", "momentum", "lr_decay", "dtype", "seed")
# Hyperparameters added later, with the value a file written before them means.
OPTIONAL_HYPERPARAMETERS = {"penalty": "l2", "l1_ratio": None, "fit_intercept": True}
_HISTORY_KEYS = ("loss", "val_accuracy", "epoch_time", "val_loss", "threads")
_OPTIONAL_HISTORY = ("val_loss",)  # absent from checkpoints written before it


@dataclass
class Checkpoint:
    """The state of a training run after ``epoch`` complete epochs."""

    hyperparameters: dict[str, Any]
    W: np.ndarray
    b: np.ndarray
    velocity: tuple[np.ndarray, np.ndarray] | None
    epoch: int
    history: dict[str, list[Any]]  # History's fields: floats, and ints for "threads"
    rng_state: dict[str, Any]
    batch_size: int
    n_samples: int
    blocks: list[int] | None = None  # the row blocks of a shuffle="blocks" (or Dask) run
    solver: str = "sgd"  # the solver that wrote it (absent in older checkpoints: "sgd")
    data: dict[str, Any] | None = None  # the training data's fingerprint (see _fingerprint)
    epochs: int | None = None  # the number of epochs the run was asked for (None: older files)
    # Arrays shaped like W or b that callbacks keep across a resume (EarlyStopping's best).
    extras: dict[str, np.ndarray] = field(default_factory=dict)


def write_model(
    path: str | os.PathLike[str],
    hyperparameters: dict[str, Any],
    W: np.ndarray,
    b: np.ndarray,
    **extra: Any,
) -> Path:
    """Write a model file atomically; ``extra`` goes into the header."""
    header = {"kind": "model", **extra, **hyperparameters}
    return write_npz_atomic(path, {"W": W, "b": b}, header)


def write_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint, **extra: Any) -> Path:
    """Write a checkpoint atomically (temporary file, fsync, rename); ``extra`` goes into the header."""
    arrays = {"W": checkpoint.W, "b": checkpoint.b}
    if checkpoint.velocity is not None:
        arrays["vW"], arrays["vb"] = checkpoint.velocity
    for name, value in checkpoint.extras.items():
        arrays[f"extra.{name}"] = value
    header = {
        "kind": "checkpoint",
        **extra,
        **checkpoint.hyperparameters,
        "epoch": checkpoint.epoch,
        "history": checkpoint.history,
        "rng_state": checkpoint.rng_state,
        "batch_size": checkpoint.batch_size,
        "n_samples": checkpoint.n_samples,
        "solver": checkpoint.solver,
    }
    if checkpoint.epochs is not None:
        header["epochs"] = checkpoint.epochs
    if checkpoint.extras:
        header["extras"] = {
            name: "W" if value.shape == checkpoint.W.shape else "b"
            for name, value in checkpoint.extras.items()
        }
    return write_npz_atomic(path, arrays, header)


def read_model(path: str | os.PathLike[str]) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """``(hyperparameters, W, b)`` of a model file or a checkpoint, all checked."""
    arrays, header = read_npz(path, lambda header: _data_bytes(path, header))
    return _parse_model(path, arrays, header)


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """A checkpoint written by :func:`write_checkpoint`, all checked."""
    arrays, header = read_npz(path, lambda header: _data_bytes(path, header), what="checkpoint")
    if header.get("kind") == "model":
        raise ModelFileError(
            f"{path}: is a model file, not a checkpoint: it has no momentum or RNG state to resume "
            "from. Load it with SoftmaxXP.load() and call train() to start a new run from its "
            "weights."
        )
    if header.get("kind") != "checkpoint":
        raise ModelFileError(
            f"{path}: is not a softmax_xp checkpoint (kind {header.get('kind')!r})."
        )
    hyper, W, b = _parse_model(path, arrays, header)
    velocity = None
    if hyper["momentum"] > 0:
        velocity = (
            _array(path, arrays, "vW", W.shape, W.dtype),
            _array(path, arrays, "vb", b.shape, b.dtype),
        )
    epoch: Any = header.get("epoch")
    batch_size: Any
    n_samples: Any
    batch_size, n_samples = header.get("batch_size"), header.get("n_samples")
    for name, value, low in (
        ("epoch", epoch, 0),
        ("batch_size", batch_size, 1),
        ("n_samples", n_samples, 1),
    ):
        if type(value) is not int or value < low:
            raise ModelFileError(f"{path}: {name} is {value!r}, not an integer >= {low}.")
    try:
        rng_state: Any = header.get("rng_state")
        _random.rng_from_state(rng_state)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}.") from None
    history = _history(path, header.get("history"), epoch)
    blocks = header.get("blocks")
    if blocks is not None and (
        not isinstance(blocks, list)
        or not all(type(v) is int and v >= 0 for v in blocks)
        or sum(blocks) != n_samples
    ):
        raise ModelFileError(f"{path}: blocks is not a list of row counts adding up to n_samples.")
    solver = header.get("solver", "sgd")  # checkpoints before the field were all SGD's
    if solver not in ("sgd", "lbfgs"):
        raise ModelFileError(f"{path}: solver is {solver!r}, not 'sgd' or 'lbfgs'.")
    data = header.get("data")  # absent in older checkpoints and in Dask runs': not checked
    if data is not None and not (is_fingerprint(data) and data["rows"] == n_samples):
        raise ModelFileError(f"{path}: the training data's fingerprint (data) is malformed.")
    epochs = header.get("epochs")  # absent in checkpoints written before the field
    if epochs is not None and (type(epochs) is not int or epochs < epoch):
        raise ModelFileError(f"{path}: epochs is {epochs!r}, not an integer >= epoch ({epoch}).")
    checkpoint = Checkpoint(
        hyper, W, b, velocity, epoch, history, rng_state, batch_size, n_samples, blocks, solver
    )
    checkpoint.data, checkpoint.epochs = data, epochs
    checkpoint.extras = {
        name: _array(path, arrays, f"extra.{name}", (W if like == "W" else b).shape, W.dtype)
        for name, like in _extras(path, header).items()
    }
    return checkpoint


def _extras(path: str | os.PathLike[str], header: dict[str, Any]) -> dict[str, str]:
    """The header's ``extras``: each extra array's name and whether it is shaped like W or b."""
    extras = header.get("extras", {})
    if not isinstance(extras, dict) or not all(
        isinstance(name, str) and like in ("W", "b") for name, like in extras.items()
    ):
        raise ModelFileError(f"{path}: extras is not a map of array names to 'W' or 'b'.")
    return extras


def _data_bytes(path: str | os.PathLike[str], header: dict[str, Any]) -> dict[str, int]:
    """The data bytes of each array the header's shapes call for (vW and vb are a checkpoint's
    momentum buffers); nothing else in the file is read."""
    hyper = _hyperparameters(path, header)
    d, k, itemsize = hyper["input_dim"], hyper["num_classes"], np.dtype(hyper["dtype"]).itemsize
    sizes = {"W": d * k * itemsize, "b": k * itemsize}
    extras = {f"extra.{name}": sizes[like] for name, like in _extras(path, header).items()}
    return {**sizes, "vW": sizes["W"], "vb": sizes["b"], **extras}


def _hyperparameters(path: str | os.PathLike[str], header: dict[str, Any]) -> dict[str, Any]:
    """The header's kind and hyperparameters, checked."""
    if header.get("kind") not in ("model", "checkpoint"):
        raise ModelFileError(f"{path}: is not a softmax_xp model (kind {header.get('kind')!r}).")
    missing = [key for key in HYPERPARAMETERS if key not in header]
    if missing:
        raise ModelFileError(f"{path}: the header has no {', '.join(map(repr, missing))} entry.")
    try:
        optional = {key: header.get(key, value) for key, value in OPTIONAL_HYPERPARAMETERS.items()}
        hyper = check_hyperparameters(**{key: header[key] for key in HYPERPARAMETERS}, **optional)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: invalid hyperparameters in the header: {exc}") from None
    return hyper


def _parse_model(
    path: str | os.PathLike[str], arrays: dict[str, np.ndarray], header: dict[str, Any]
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    hyper = _hyperparameters(path, header)
    d, k, dtype = hyper["input_dim"], hyper["num_classes"], np.dtype(hyper["dtype"])
    W = _array(path, arrays, "W", (d, k), dtype)
    b = _array(path, arrays, "b", (1, k), dtype)
    if not hyper["fit_intercept"] and b.any():
        raise ModelFileError(f"{path}: b is not zero in a model with fit_intercept=False.")
    return hyper, W, b


def _array(
    path: str | os.PathLike[str],
    arrays: dict[str, np.ndarray],
    key: str,
    shape: tuple[int, ...],
    dtype: np.dtype,
) -> np.ndarray:
    """``arrays[key]``, checked to exist and to have ``shape``, ``dtype`` and finite values."""
    if key not in arrays:
        raise ModelFileError(f"{path}: the file has no {key!r} entry.")
    a = arrays[key]
    if a.shape != shape or a.dtype != dtype:
        raise ModelFileError(
            f"{path}: {key} is {a.dtype} of shape {a.shape}; expected {dtype} of shape {shape}."
        )
    if not np.isfinite(a).all():
        raise ModelFileError(f"{path}: {key} contains NaN or infinity.")
    return a


def _history(path: str | os.PathLike[str], history: Any, epoch: int) -> dict[str, list[Any]]:
    """The checkpoint's History: lists of finite numbers, one per epoch (val_accuracy may be empty)."""
    if isinstance(history, dict):
        # absent from files written before them: val_loss empty, threads 0 ("not recorded")
        history = {**{key: [] for key in _OPTIONAL_HISTORY}, "threads": [0] * epoch, **history}
    if not isinstance(history, dict) or set(history) != set(_HISTORY_KEYS):
        raise ModelFileError(f"{path}: the History in the header is malformed.")
    for key in _HISTORY_KEYS:
        values = history[key]
        sizes = (epoch, 0) if key.startswith("val_") else (epoch,)
        if (
            not isinstance(values, list)
            or len(values) not in sizes
            or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in values
            )
        ):
            raise ModelFileError(
                f"{path}: the History entry {key!r} does not hold one number per epoch ({epoch})."
            )
    out = {key: [float(v) for v in history[key]] for key in _HISTORY_KEYS}
    if not all(v >= 0 and v == int(v) for v in out["threads"]):
        raise ModelFileError(f"{path}: the History entry 'threads' holds a negative or fraction.")
    return {**out, "threads": [int(v) for v in out["threads"]]}
