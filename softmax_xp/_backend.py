"""Backend names -> (array namespace, device); availability probes, CPU fallback, to_numpy.

This is the one module of the library that knows backends by name. Everything else receives
an array namespace ``xp`` and a ``device`` and stays backend-agnostic.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from ._cuda import _CTK_HINT, _cupy_problem, _probe_cupy  # noqa: F401  (tests use the last two here)

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendFallbackWarning",
    "BackendUnavailableError",
    "asarray_on",
    "backend_info",
    "backend_name",
    "cupy_device",
    "device_description",
    "index_dtype",
    "resolve_backend",
    "to_numpy",
]

BACKENDS = ("auto", "numpy", "cupy", "torch", "array_api_strict", "jax")
ENV_VAR = "SOFTMAX_XP_BACKEND"

_INSTALL_HINT = {
    "cupy": 'install CuPy for your CUDA version: pip install "softmax-xp[cuda12]" '
    '(or "softmax-xp[cuda13]") on a machine with an NVIDIA GPU',
    "torch": 'install PyTorch: pip install "softmax-xp[torch]"',
    "array_api_strict": "install array-api-strict: pip install array-api-strict",
    "jax": 'install JAX: pip install "softmax-xp[jax]" (CPU; see JAX\'s install guide for GPU/TPU)',
}


def _install_hint(name: str, problem: str) -> str | None:
    """What to do about ``problem`` (why backend ``name`` cannot run), or None when the problem
    already says it. Installing CuPy is the advice only when CuPy is not installed."""
    if name != "cupy" or problem == "CuPy is not installed":
        return _INSTALL_HINT[name]
    if problem.startswith("CuPy failed to import"):
        return (
            'reinstall CuPy for your CUDA version: pip install --force-reinstall "softmax-xp[cuda12]" '
            '(or "softmax-xp[cuda13]")'
        )
    if "NVIDIA driver" in problem:
        return "install (or update) the NVIDIA driver; nvidia-smi then lists the GPU"
    if problem.startswith("no CUDA device"):
        return "run on a machine with an NVIDIA GPU (CuPy is installed; nvidia-smi lists the GPUs)"
    if _CTK_HINT in problem:
        return None
    return "check that nvidia-smi lists the GPU and that CuPy's CUDA version matches the driver"


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

    def activate(self) -> AbstractContextManager[Any]:
        """A context in which the backend's device is the current one.

        CuPy allocates ``zeros``, ``ones``, ``eye``, ``arange`` ... on the *current* device
        whatever their ``device=`` says, so a model on ``cuda:1`` runs all its work inside
        ``with cupy.cuda.Device(1)``. Other backends place every array by ``device=``: no-op.
        """
        if self.name != "cupy":
            return nullcontext()
        import cupy

        device: AbstractContextManager[Any] = cupy.cuda.Device(self.device.id)
        return device


def _import_problem(module: str) -> str | None:
    """Why ``module`` cannot be imported, or None when it can (without importing it)."""
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    return None


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
    if name == "jax":
        import jax

        return jax.devices()[0]  # the first device of JAX's default platform (GPU/TPU first)
    return xp.__array_namespace_info__().default_device()


def _as_device(name: str, xp: Any, device: Any) -> Any:
    """Turn a user's device spelling (an id, a string) into the backend's device object."""
    if device is None:
        return _default_device(name, xp)
    if name == "cupy":
        import cupy

        return cupy_device(cupy, device)
    if name == "torch":
        return _torch_device(device)
    if name == "jax":
        return _jax_device(device)
    if name == "array_api_strict" and not isinstance(device, xp.Device):
        try:
            return xp.Device(device)
        except (TypeError, ValueError):
            there = ", ".join(map(str, xp.__array_namespace_info__().devices()))
            raise ValueError(
                f"device={device!r} is not an array-api-strict device; this machine has: "
                f"{there} (pass one, or its name, e.g. device='device1')."
            ) from None
    if name == "numpy" and str(device).strip().lower() == "cpu":  # "CPU", torch.device("cpu")
        return "cpu"
    if name == "numpy":
        raise ValueError(f"NumPy arrays live on the CPU; got device={device!r}. Use device=None.")
    return device


def _torch_device(device: Any) -> Any:
    """``torch.device`` for a user's spelling (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``1``,
    ``"mps"``, a ``torch.device``); a ValueError listing this machine's devices for a spelling
    PyTorch does not know or a device PyTorch cannot use here."""
    import torch

    there = ", ".join(_devices("torch"))
    spelling = device
    if isinstance(device, str):
        spelling = device.strip().lower()
    if isinstance(spelling, str) and spelling.isdigit():
        spelling = int(spelling)  # "1": CUDA device 1, as for CuPy
    if isinstance(spelling, int) and not isinstance(spelling, bool):
        spelling = f"cuda:{spelling}"
    try:
        resolved = torch.device(spelling)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"device={device!r} is not a PyTorch device: pass 'cpu', 'cuda', 'cuda:1', 'mps' or "
            f"a torch.device. This machine has: {there}."
        ) from None
    if resolved.type == "meta":
        raise ValueError(
            f"device={device!r}: a meta tensor holds no data; this machine has: {there}."
        )
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = 0 if resolved.index is None else resolved.index
        if index >= count:
            raise ValueError(
                f"device={device!r}: PyTorch sees no CUDA device {index} here (torch.cuda."
                f"is_available() is {torch.cuda.is_available()}); this machine has: {there}. "
                "Use device='cpu', or install a CUDA build of PyTorch on a machine with an "
                "NVIDIA GPU."
            )
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device={device!r}: PyTorch cannot use Apple's MPS here; this machine has: {there}."
        )
    return resolved


_JAX_PLATFORMS = {"cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "rocm": "gpu", "tpu": "tpu"}


def _jax_devices() -> dict[str, list[Any]]:
    """JAX's devices on this machine by platform ("cpu", "gpu", "tpu"); those it lacks left out."""
    import jax

    found = {}
    for platform in ("cpu", "gpu", "tpu"):
        try:
            found[platform] = list(jax.devices(platform))
        except RuntimeError:  # "Unknown backend": no such platform here
            continue
    return found


def _jax_device(device: Any) -> Any:
    """``jax.Device`` for a user's spelling: ``"cpu"``, ``"gpu"``, ``"cuda:1"``, ``"tpu:0"``, an
    id of the default platform (``1``, ``"1"``) or a ``jax.Device``; a ValueError listing this
    machine's devices for any other."""
    import jax

    if isinstance(device, jax.Device):
        return device
    devices = _jax_devices()
    there = ", ".join(device_description(d) for ds in devices.values() for d in ds)
    text = str(device).strip().lower()  # also a torch.device("cpu") or numpy's "cpu"
    platform, _, number = text.rpartition(":") if ":" in text else (text, "", "0")
    if isinstance(device, int) or text.isdigit():
        platform, number = jax.devices()[0].platform, text
    platform = _JAX_PLATFORMS.get(platform, "")
    if isinstance(device, bool) or not platform or not number.isdigit():
        raise ValueError(
            f"device={device!r} is not a JAX device: pass 'cpu', 'gpu', 'cuda:1', 'tpu', an id "
            f"such as 0, or a jax.Device. This machine has: {there}."
        )
    index = int(number)
    if index >= len(devices.get(platform, [])):
        raise ValueError(
            f"device={device!r}: JAX sees no {platform} device {index} here; this machine has: "
            f'{there}. For a GPU install a CUDA build of JAX (pip install "jax[cuda12]").'
        )
    return devices[platform][index]


def device_description(device: Any) -> Any:
    """A picklable spelling of a backend's device that the same backend resolves back to it:
    ``"gpu:1"`` for a ``jax.Device``, the id of a ``cupy.cuda.Device``, the device itself
    otherwise (strings, ``torch.device``, array-api-strict devices pickle as they are)."""
    if type(device).__module__.startswith(("jax", "jaxlib")):
        return f"{device.platform}:{_jax_devices()[device.platform].index(device)}"
    if type(device).__module__.startswith("cupy"):
        return int(device.id)
    return device


def index_dtype(xp: Any, device: Any) -> Any:
    """The namespace's default integer dtype for indices, labels and counts on ``device``: int64
    on NumPy, CuPy, PyTorch and array-api-strict; int32 on JAX unless its 64-bit mode is on."""
    try:
        return xp.__array_namespace_info__().default_dtypes(device=device)["indexing"]
    except (AttributeError, TypeError, ValueError):  # a namespace without inspection: the usual
        return xp.int64


def cupy_device(cupy: Any, device: Any) -> Any:
    """``cupy.cuda.Device`` for ``device``: an id (``1``, ``"1"``), ``"cuda"``, ``"cuda:1"`` or
    a ``cupy.cuda.Device``; a ValueError listing this machine's devices for any other or for an
    id that does not exist here."""
    count = cupy.cuda.runtime.getDeviceCount()
    there = ", ".join(f"cuda:{i}" for i in range(count)) or "none"
    index = _cuda_index(device)
    if index is None:
        raise ValueError(
            f"device={device!r} is not a CUDA device: pass an id such as 0, '0' or 'cuda:0', "
            f"or a cupy.cuda.Device. This machine has: {there}."
        )
    if not 0 <= index < count:
        raise ValueError(
            f"device={device!r}: there is no CUDA device {index}; this machine has: {there}."
        )
    return cupy.cuda.Device(index)


def _cuda_index(device: Any) -> int | None:
    """The device number a user's spelling names, or None when it names no CUDA device."""
    if isinstance(device, bool):
        return None
    if isinstance(device, int):
        return device
    if isinstance(device, str):
        text = device.strip().lower()
        text = "0" if text == "cuda" else text.removeprefix("cuda:")
        return int(text) if text.isdigit() else None
    index = getattr(device, "id", None)  # a cupy.cuda.Device
    return index if isinstance(index, int) and not isinstance(index, bool) else None


def _namespace(name: str) -> Any:
    """The array-API namespace of a backend: array-api-compat's wrapper, or the library itself."""
    modules = {"array_api_strict": "array_api_strict", "jax": "jax.numpy"}
    module = modules.get(name, f"array_api_compat.{name}")
    return importlib.import_module(module)


_NAME_HINTS = {
    "cuda": "for an NVIDIA GPU use backend='cupy', or backend='torch' or 'jax' with device='cuda'",
    "gpu": "for an NVIDIA GPU use backend='cupy', or backend='torch' or 'jax' with device='gpu'",
    "jax.numpy": "did you mean backend='jax'?",
    "cpu": "for the CPU use backend='numpy'",
    "np": "did you mean backend='numpy'?",
    "pytorch": "did you mean backend='torch'?",
    "array-api-strict": "did you mean backend='array_api_strict'?",
}


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name.strip().lower() not in BACKENDS:
        hint = _NAME_HINTS.get(name.strip().lower(), "") if isinstance(name, str) else ""
        raise ValueError(
            f"Unknown backend {name!r}; valid backends are: {', '.join(BACKENDS)}"
            + (f" ({hint})." if hint else ".")
        )
    return name.strip().lower()


def resolve_backend(name: str = "auto", device: Any = None, fallback: bool = True) -> Backend:
    """Resolve a backend name to a ``Backend``: its ``name``, array namespace ``xp`` and ``device``.

    ``"auto"`` reads ``$SOFTMAX_XP_BACKEND`` first; without it, CuPy when a CUDA device answers,
    else NumPy. An explicit backend that cannot run here falls back to NumPy with a
    :class:`BackendFallbackWarning`, or raises :class:`BackendUnavailableError` when
    ``fallback=False``.

    Examples
    --------
    >>> from softmax_xp import resolve_backend
    >>> backend = resolve_backend("numpy")
    >>> backend.name, backend.device
    ('numpy', 'cpu')
    >>> backend.xp.ones(2, dtype=backend.xp.float32, device=backend.device)
    array([1., 1.], dtype=float32)
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
            if name == "numpy" and device is not None and str(device).strip().lower() != "cpu":
                raise ValueError(
                    f"device={device!r} needs a GPU, but backend='auto' runs on NumPy here "
                    f"(CuPy: {_cupy_problem()}). Pass device=None for the CPU, or name a "
                    "backend: backend='cupy', or backend='torch' for PyTorch's devices."
                )
    problem = _problem(name)
    if problem is not None:
        hint = _install_hint(name, problem)
        message = f"Backend {name!r} is unavailable: {problem}." + (
            f" To use it, {hint}." if hint else ""
        )
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
    if array_api_compat.is_jax_namespace(xp):
        return "jax"
    return getattr(xp, "__name__", repr(xp))


def to_numpy(x: Any) -> np.ndarray:
    """Copy an array of any supported backend (or a list) to a NumPy array on the host.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> from softmax_xp import to_numpy
    >>> to_numpy(xp.asarray([1.0, 2.0]))
    array([1., 2.])
    >>> to_numpy([3, 4])
    array([3, 4])
    """
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):
        host: np.ndarray = x.get()
        return host
    if array_api_compat.is_torch_array(x):
        x = x.detach().cpu()
        if x.is_floating_point() and str(x.dtype).startswith(("torch.bfloat16", "torch.float8")):
            x = x.float()  # no NumPy dtype: widened to float32, exactly
        host = x.numpy()
        return host
    if hasattr(x, "__dlpack__"):
        try:
            return np.from_dlpack(x)
        except (RuntimeError, BufferError, TypeError):
            pass
    return np.asarray(x)


def backend_info() -> dict[str, dict[str, Any]]:
    """What each backend looks like on this machine: available or why not, and its devices.

    The ``"auto"`` entry names the backend that ``backend="auto"`` picks here.

    Examples
    --------
    >>> from softmax_xp import backend_info
    >>> info = backend_info()
    >>> info["numpy"]["available"], info["numpy"]["devices"]
    (True, ['cpu'])
    >>> info["auto"]["resolves_to"] in info  # the backend that "auto" picks here
    True
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
            hint = _install_hint(name, problem)
            if hint:
                entry["install"] = hint
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
    if name == "jax":
        return [device_description(d) for ds in _jax_devices().values() for d in ds]
    return [str(d) for d in _namespace(name).__array_namespace_info__().devices()]


def asarray_on(backend: Backend, x: Any, dtype: Any) -> Any:
    """``x`` (a list, a NumPy array or an array of any backend) as an array of ``backend`` with
    ``dtype`` on its device. Copies only when needed, and never writes into ``x``."""
    if array_api_compat.is_torch_array(x):
        x = x.detach()  # the model's arithmetic is never recorded by autograd
    if not _same_backend(x, backend):
        x = to_numpy(x)
        if x.dtype.kind == "f" and x.dtype.itemsize > 8 and backend.name != "numpy":
            x = x.astype(np.float64)  # long double: only NumPy has it
    with warnings.catch_warnings():
        # torch warns that a read-only NumPy array becomes a tensor it could write: we never do.
        warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
        return backend.xp.asarray(x, dtype=dtype, device=backend.device)


def _same_backend(x: Any, backend: Backend) -> bool:
    # Not hasattr(x, "__array_namespace__"): torch tensors lack it, yet are the torch backend's.
    if isinstance(x, np.generic) or not array_api_compat.is_array_api_obj(x):
        return backend.name == "numpy" and isinstance(x, np.ndarray | list | tuple | int | float)
    return backend_name(array_api_compat.array_namespace(x)) == backend.name
