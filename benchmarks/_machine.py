"""What the numbers were measured on: CPU, cores, BLAS, GPU, package versions, command."""

from __future__ import annotations

import datetime
import importlib
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
from typing import Any

_PACKAGES = (
    "softmax-xp",
    "numpy",
    "array-api-compat",
    "array-api-strict",
    "torch",
    "scipy",
    "scikit-learn",
    "threadpoolctl",
    "cupy-cuda12x",
    "cupy-cuda13x",
)
_ENV = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "SOFTMAX_XP_BACKEND",
    "SOFTMAX_XP_THREADS",
    "XLA_FLAGS",  # JAX's CPU threads
    "JAX_ENABLE_X64",
)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_vendor() -> str:
    """The CPU's vendor (``GenuineIntel``, ``AuthenticAMD``...) from /proc/cpuinfo, or '?'."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(("vendor_id", "CPU implementer")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def cores() -> dict[str, int | None]:
    """Logical CPUs of the machine and those this process may run on."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"logical": os.cpu_count(), "usable": usable}


def blas() -> list[dict[str, Any]]:
    """The BLAS libraries loaded, with their kernel (threadpoolctl), else numpy's build config."""
    import numpy  # loads the BLAS, so that threadpoolctl sees it

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        config = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return [{"name": config.get("name"), "version": config.get("version"), "source": "numpy"}]
    keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer", "prefix")
    return [{k: info.get(k) for k in keys} for info in threadpool_info()]


def gpu() -> str | None:
    """The CUDA device CuPy sees, or None."""
    try:
        from softmax_xp._backend import _cupy_problem

        if _cupy_problem() is not None:
            return None
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        return props["name"].decode()
    except Exception:  # any failure means: no usable GPU here
        return None


def versions() -> dict[str, str]:
    """Installed versions of the packages the benchmarks may use."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    """The checked-out commit, when this is a git work tree."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def now() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def torch_threads() -> dict[str, Any] | None:
    """PyTorch's CPU threading and BLAS, if PyTorch was imported by the run."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    config = torch.__config__.show()
    blas = next(
        (part.split("=", 1)[1] for part in config.split(", ") if "BLAS_INFO=" in part), None
    )
    mkl = next(
        (line.strip(" -") for line in config.splitlines() if "Math Kernel Library" in line), None
    )
    return {
        "num_threads": torch.get_num_threads(),
        "mkl": torch.backends.mkl.is_available(),
        "blas": blas,
        "blas_version": mkl,
    }


def layouts() -> dict[str, str]:
    """The SGD epoch's product layout per backend and dtype here (softmax_xp._layout's rule)."""
    from softmax_xp._backend import resolve_backend
    from softmax_xp._layout import product_layout

    names = ["numpy"] + (["torch"] if "torch" in sys.modules else [])
    return {
        f"{name} {dtype}": product_layout(resolve_backend(name), dtype)
        for name in names
        for dtype in ("float32", "float64")
    }


def describe() -> dict[str, Any]:
    """Everything above, plus the command line, the date and the environment that matters."""
    return {
        "date": now(),
        "command": shlex.join(["python", "-m", "benchmarks", *sys.argv[1:]]),
        "cpu": cpu_model(),
        "cpu_vendor": cpu_vendor(),
        "cores": cores(),
        "blas": blas(),
        "torch_cpu": torch_threads(),
        "layouts": layouts(),
        "gpu": gpu(),
        "platform": platform.platform(),
        "versions": versions(),
        "env": {k: os.environ[k] for k in _ENV if k in os.environ},
        "git_commit": git_commit(),
    }
