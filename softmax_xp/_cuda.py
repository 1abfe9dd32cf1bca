"""Whether CuPy can really run here: the probe behind ``backend="auto"`` and the fallback, and
the words for what a CUDA runtime, driver or toolkit reports when it cannot."""

from __future__ import annotations

import importlib.util
from functools import cache
from typing import Any

__all__ = ["_CTK_HINT", "_cupy_problem", "_describe_cuda_error", "_probe_cupy"]


@cache
def _cupy_problem() -> str | None:
    """Why CuPy cannot run here, or None when a CUDA device really answers.

    A device "answers" when CuPy imports, the driver sees at least one device, and a compiled
    elementwise kernel (NVRTC) and a small matrix product (cuBLAS) run on it. The result is
    cached: probing the driver costs time and does not change within a process.
    """
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed"
    try:
        import cupy
    except Exception as exc:  # a broken install raises all sorts of errors at import
        return f"CuPy failed to import ({type(exc).__name__}: {exc})"
    return _probe_cupy(cupy)


def _probe_cupy(cupy: Any) -> str | None:
    """Run the checks of :func:`_cupy_problem` with an imported ``cupy`` module."""
    runtime = cupy.cuda.runtime
    try:
        count = runtime.getDeviceCount()
    except Exception as exc:
        return _describe_cuda_error(exc, runtime)
    if count == 0:
        return "no CUDA device was found"
    # Each step needs one more CUDA library: the kernel compiler (NVRTC), then cuBLAS.
    steps = (
        ("a compiled elementwise kernel (NVRTC)", _probe_kernel),
        ("a matrix product (cuBLAS)", _probe_matmul),
    )
    for what, step in steps:
        try:
            step(cupy)
        except Exception as exc:
            return f"{what} failed: {_describe_cuda_error(exc, runtime)}"
    return None


def _probe_kernel(cupy: Any) -> None:
    add_one = cupy.ElementwiseKernel("float32 x", "float32 y", "y = x + 1", "softmax_xp_probe")
    add_one(cupy.arange(2, dtype=cupy.float32)).get()


def _probe_matmul(cupy: Any) -> None:
    a = cupy.ones((2, 2), dtype=cupy.float32)
    (a @ a).get()


_CTK_HINT = (
    'install the CUDA libraries with CuPy: pip install "cupy-cuda13x[ctk]" (or "cupy-cuda12x[ctk]"),'
    " or the CUDA Toolkit"
)


def _describe_cuda_error(exc: Exception, runtime: Any = None) -> str:
    """A sentence saying what ``exc`` (raised by a CUDA probe) means and what to do.

    ``runtime`` (``cupy.cuda.runtime``) tells "no driver" from "driver too old": the driver
    version it reports is 0 when no NVIDIA driver is loaded.
    """
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    if "insufficientdriver" in lowered or "driver version is insufficient" in lowered:
        driver = _driver_version(runtime)
        if driver == 0:
            return f"no NVIDIA driver is installed or loaded ({text})"
        needs = _call(runtime, "runtimeGetVersion")
        have = "" if driver is None else f" (it supports CUDA {_cuda_version(driver)}"
        if have and needs:
            have += f", this CuPy needs CUDA {_cuda_version(needs)}"
        return (
            f"the NVIDIA driver is too old for this CuPy build{have + ')' if have else ''}: {text}"
        )
    if "nodevice" in lowered or "no cuda-capable device" in lowered:
        return f"no CUDA device was found ({text})"
    if "nvrtc" in lowered:
        return f"the CUDA runtime compiler (NVRTC) could not be used ({text}); {_CTK_HINT}"
    if "cublas" in lowered:
        return f"cuBLAS could not be used ({text}); {_CTK_HINT}"
    if "libcuda" in lowered or _driver_version(runtime) == 0:
        return f"no NVIDIA driver is installed or loaded ({text})"
    if "cudart" in lowered or "shared object" in lowered:
        return f"a CUDA library could not be loaded ({text}); {_CTK_HINT}"
    return f"CUDA is not usable ({text})"


def _call(runtime: Any, name: str) -> int | None:
    try:
        return int(getattr(runtime, name)())
    except Exception:
        return None


def _driver_version(runtime: Any) -> int | None:
    """The CUDA version the driver supports (e.g. 12040), 0 without a driver, None if unknown."""
    return None if runtime is None else _call(runtime, "driverGetVersion")


def _cuda_version(code: int) -> str:
    return f"{code // 1000}.{code % 1000 // 10}"
