"""Backend names -> (array namespace, device); availability probes, CPU fallback, to_numpy.

This is the one module of the library that knows backends by name. Everything else receives
an array namespace ``xp`` and a ``device`` and stays backend-agnostic.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendFallbackWarning",
    "BackendUnavailableError",
    "asarray_on",
    "backend_info",
    "backend_name",
    "resolve_backend",
    "to_numpy",
]

BACKENDS = ("auto", "numpy", "cupy", "torch", "array_api_strict")
ENV_VAR = "SOFTMAX_XP_BACKEND"

_INSTALL_HINT = {
    "cupy": 'install CuPy for your CUDA version: pip install "softmax-xp[cuda12]" '
    '(or "softmax-xp[cuda13]") on a machine with an NVIDIA GPU',
    "torch": 'install PyTorch: pip install "softmax-xp[torch]"',
    "array_api_strict": "install array-api-strict: pip install array-api-strict",
}


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run on this machine (and fallback was disabled)."""


class BackendFallbackWarning(UserWarning):
    """The requested backend is unavailable, so NumPy on the CPU is used instead."""


@dataclass(frozen=True)
class Backend:
    """A resolved backend: its name, its array-API namespace and the device arrays live on."""

    name: str
    xp: Any
    device: Any

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, device={self.device!r})"


def _import_problem(module: str) -> str | None:
    """Why ``module`` cannot be imported, or None when it can (without importing it)."""
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    return None


@cache
def _cupy_problem() -> str | None:
    """Why CuPy cannot run here, or None when a CUDA device really answers.

    A device "answers" when CuPy imports, sees at least one device and can run a kernel on it.
    The result is cached: probing the driver costs time and does not change within a process.
    """
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed"
    try:
        import cupy
    except Exception as exc:  # a broken install raises all sorts of errors at import
        return f"CuPy failed to import ({type(exc).__name__}: {exc})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return _describe_cuda_error(exc)
    if count == 0:
        return "no CUDA device was found"
    try:
        (cupy.arange(2, dtype=cupy.float32) + 1).sum().get()
    except Exception as exc:
        return _describe_cuda_error(exc)
    return None


def _describe_cuda_error(exc: Exception) -> str:
    text = str(exc)
    if "InsufficientDriver" in text or "driver version is insufficient" in text:
        return f"the NVIDIA driver is too old for this CuPy build ({text})"
    if "NoDevice" in text or "no CUDA-capable device" in text:
        return f"no CUDA device was found ({text})"
    if "libcuda" in text or "cudart" in text or "shared object" in text:
        return f"the CUDA driver library could not be loaded ({text})"
    return f"CUDA is not usable ({type(exc).__name__}: {text})"


def _problem(name: str) -> str | None:
    """Why backend ``name`` cannot run here, or None when it can."""
    if name == "numpy":
        return None
    if name == "cupy":
        return _cupy_problem()
    return _import_problem(name)


def _default_device(name: str, xp: Any) -> Any:
    if name == "numpy":
        return "cpu"
    if name == "cupy":
        import cupy

        return cupy.cuda.Device()
    if name == "torch":
        import torch

        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return xp.__array_namespace_info__().default_device()


def _as_device(name: str, xp: Any, device: Any) -> Any:
    """Turn a user's device spelling (an id, a string) into the backend's device object."""
    if device is None:
        return _default_device(name, xp)
    if name == "cupy" and isinstance(device, int):
        import cupy

        return cupy.cuda.Device(device)
    if name == "torch" and isinstance(device, str | int):
        import torch

        return torch.device(device)
    if name == "array_api_strict" and isinstance(device, str):
        return xp.Device(device)
    if name == "numpy" and device != "cpu":
        raise ValueError(f"NumPy arrays live on the CPU; got device={device!r}. Use device=None.")
    return device


def _namespace(name: str) -> Any:
    """The array-API namespace of a backend: array-api-compat's wrapper, or the library itself."""
    module = "array_api_strict" if name == "array_api_strict" else f"array_api_compat.{name}"
    return importlib.import_module(module)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name.lower() not in BACKENDS:
        raise ValueError(f"Unknown backend {name!r}; valid backends are: {', '.join(BACKENDS)}.")
    return name.lower()


def resolve_backend(name: str = "auto", device: Any = None, fallback: bool = True) -> Backend:
    """Resolve a backend name to a :class:`Backend`.

    ``"auto"`` reads ``$SOFTMAX_XP_BACKEND`` first; without it, CuPy when a CUDA device answers,
    else NumPy. An explicit backend that cannot run here falls back to NumPy with a
    :class:`BackendFallbackWarning`, or raises :class:`BackendUnavailableError` when
    ``fallback=False``.
    """
    name = _check_name(name)
    if name == "auto":
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            try:
                name = _check_name(env)
            except ValueError as exc:
                raise ValueError(f"${ENV_VAR}: {exc}") from None
        if name == "auto":
            name = "cupy" if _cupy_problem() is None else "numpy"
    problem = _problem(name)
    if problem is not None:
        message = f"Backend {name!r} is unavailable: {problem}. To use it, {_INSTALL_HINT[name]}."
        if not fallback:
            raise BackendUnavailableError(message)
        warnings.warn(
            f"{message} Falling back to NumPy on the CPU (pass fallback=False to raise instead).",
            BackendFallbackWarning,
            stacklevel=3,
        )
        name, device = "numpy", None
    xp = _namespace(name)
    return Backend(name, xp, _as_device(name, xp, device))


def backend_name(xp: Any) -> str:
    """The backend name (as in :data:`BACKENDS`) of an array namespace."""
    if array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    if array_api_compat.is_cupy_namespace(xp):
        return "cupy"
    if array_api_compat.is_torch_namespace(xp):
        return "torch"
    if array_api_compat.is_array_api_strict_namespace(xp):
        return "array_api_strict"
    return getattr(xp, "__name__", repr(xp))


def to_numpy(x: Any) -> np.ndarray:
    """Copy an array of any supported backend (or a list) to a NumPy array on the host."""
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if hasattr(x, "__dlpack__"):
        try:
            return np.from_dlpack(x)
        except (RuntimeError, BufferError, TypeError):
            pass
    return np.asarray(x)


def backend_info() -> dict[str, dict[str, Any]]:
    """What each backend looks like on this machine: available or why not, and its devices.

    The ``"auto"`` entry names the backend that ``backend="auto"`` picks here.
    """
    info: dict[str, dict[str, Any]] = {}
    for name in BACKENDS[1:]:
        problem = _problem(name)
        entry: dict[str, Any] = {"available": problem is None}
        if problem is None:
            entry["version"] = _version(name)
            entry["devices"] = _devices(name)
        else:
            entry["reason"] = problem
            entry["install"] = _INSTALL_HINT[name]
        info[name] = entry
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BackendFallbackWarning)
        info["auto"] = {"resolves_to": resolve_backend("auto").name}
    return info


def _version(name: str) -> str:
    module = "array_api_strict" if name == "array_api_strict" else name
    return getattr(__import__(module), "__version__", "unknown")


def _devices(name: str) -> list[str]:
    if name == "numpy":
        return ["cpu"]
    if name == "cupy":
        import cupy

        names = []
        for i in range(cupy.cuda.runtime.getDeviceCount()):
            props = cupy.cuda.runtime.getDeviceProperties(i)
            names.append(f"cuda:{i} ({props['name'].decode()})")
        return names
    if name == "torch":
        import torch

        cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        return ["cpu", *cuda]
    return [str(d) for d in _namespace(name).__array_namespace_info__().devices()]


def asarray_on(backend: Backend, x: Any, dtype: Any) -> Any:
    """``x`` (a list, a NumPy array or an array of any backend) as an array of ``backend`` with
    ``dtype`` on its device. Copies only when needed, and never writes into ``x``."""
    if not _same_backend(x, backend):
        x = to_numpy(x)
    with warnings.catch_warnings():
        # torch warns that a read-only NumPy array becomes a tensor it could write: we never do.
        warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
        return backend.xp.asarray(x, dtype=dtype, device=backend.device)


def _same_backend(x: Any, backend: Backend) -> bool:
    if not hasattr(x, "__array_namespace__"):
        return backend.name == "numpy" and isinstance(x, np.ndarray | list | tuple | int | float)
    return backend_name(array_api_compat.array_namespace(x)) == backend.name
