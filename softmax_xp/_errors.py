"""Runtime faults of training and inference: divergence and device out-of-memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = [
    "DeviceMemoryError",
    "ResumeMismatchError",
    "TrainingDivergedError",
    "is_out_of_memory",
    "out_of_memory_hint",
    "quiet_float_warnings",
]


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite.

    The model keeps the weights (and momentum buffers) of the last finite epoch. ``epoch`` is the
    epoch that diverged, ``batch`` its first batch (1-based) whose loss was not finite, or None when
    only the weights or the epoch's mean overflowed, and ``history`` the History of the completed
    epochs. The message is ``cause``, ``kept`` (what the model keeps) and ``advice``, in that
    order; a caller that saves something else (the CLI) reports ``cause`` and ``advice`` alone.
    """

    def __init__(
        self,
        cause: str,
        *,
        kept: str,
        advice: str,
        epoch: int,
        batch: int | None,
        history: Any,
    ):
        super().__init__(f"{cause} {kept} {advice}")
        self.cause, self.kept, self.advice = cause, kept, advice
        self.epoch = epoch
        self.batch = batch
        self.history = history


class ResumeMismatchError(ValueError):
    """A checkpoint that this run cannot continue: it was written by another solver, with other
    settings, blocks or data, or it has more epochs than the run asks for.

    ``kind`` is one of ``"solver"``, ``"settings"``, ``"blocks"``, ``"data"`` and ``"epochs"``;
    ``differences`` maps each differing setting to ``(in the checkpoint, in this run)``;
    ``reason`` is the message without the checkpoint's path, for callers (the CLI) that name the
    checkpoint their own way.
    """

    def __init__(
        self,
        path: str,
        kind: str,
        reason: str,
        differences: dict[str, tuple[Any, Any]] | None = None,
    ):
        super().__init__(f"resume_from={path!r}: {reason}")
        self.path, self.kind, self.reason = path, kind, reason
        self.differences = dict(differences or {})


class DeviceMemoryError(MemoryError):
    """The accelerator ran out of memory; the message says which size to lower."""


# Errors that mean the device is out of memory: (exception class name, a status name its message
# contains). CUDA's outside CuPy's memory pool (the runtime, the driver, cuBLAS), and XLA's (JAX).
_OOM = (
    ("CUDARuntimeError", "cudaErrorMemoryAllocation"),
    ("CUDADriverError", "CUDA_ERROR_OUT_OF_MEMORY"),
    ("CUBLASError", "CUBLAS_STATUS_ALLOC_FAILED"),
    ("XlaRuntimeError", "RESOURCE_EXHAUSTED"),
    ("JaxRuntimeError", "RESOURCE_EXHAUSTED"),
)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a device out-of-memory error: CuPy's
    ``cupy.cuda.memory.OutOfMemoryError`` or PyTorch's ``torch.OutOfMemoryError``, an older
    PyTorch's "CUDA out of memory", a CUDA runtime, driver or cuBLAS error whose status is an
    allocation failure, or JAX's runtime error ``RESOURCE_EXHAUSTED`` (all recognised by class
    name and message, so no library is imported)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "OutOfMemoryError" in names:
        return True
    text = str(exc)
    if any(name in names and status in text for name, status in _OOM):
        return True
    return isinstance(exc, RuntimeError) and "CUDA out of memory" in text


@contextmanager
def out_of_memory_hint(advice: Callable[[], str]) -> Iterator[None]:
    """Turn a device out-of-memory error raised inside into :class:`DeviceMemoryError` whose
    message is ``advice()`` followed by the original error."""
    try:
        yield
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        original = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"
        raise DeviceMemoryError(f"{advice()} ({original})") from exc


@contextmanager
def quiet_float_warnings() -> Iterator[None]:
    """Silence NumPy's overflow/invalid warnings (NumPy and array-api-strict backends): training
    checks every epoch for a non-finite loss itself and raises :class:`TrainingDivergedError`."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        yield
