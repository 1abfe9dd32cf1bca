"""Where the SGD epoch keeps its weights and how it forms its products: the *product layout*
(host side; no array maths).

:func:`product_layout` picks where :func:`softmax_xp.solvers.sgd.sgd_epoch` keeps the weights
(``"row"``: ``(d, K)``; ``"class"``, ``"class_xw"``: a class-major ``(K, d)`` copy, gradient
``e @ X_b``) and how it forms the logits (``"class"``: ``W @ X_b.T``; the others
``X_b @ W``-style, then a class-major copy). A deterministic rule of the backend, its BLAS and the
dtype, never a timing: a run's numbers depend only on the machine's libraries. Measured on a
2-core AMD EPYC (KVM, family 25), OpenBLAS 0.3.31 SkylakeX kernels, PyTorch 2.13 CPU with MKL
2024.2, batch 256 x 784, K = 10, with ``python -m benchmarks.layouts`` (momentum 0.9, 12,800
rows, one BLAS / PyTorch thread, CPU time of the calling thread, medians of 15 interleaved
epochs; the machine was shared with other jobs, load 1-5): the epoch, ratio to ``"row"``, two
runs:

    ============== ============ =========== ===========
    epoch          "row"        "class"     "class_xw"
    ============== ============ =========== ===========
    numpy float32  17.4-22.2 ms 1.01-1.08   0.84-0.93
    numpy float64  34.6-40.9 ms 0.72-0.74   0.90-0.93
    torch float32  68.7-76.1 ms 0.26-0.28   0.32-0.35
    torch float64  86.0-99.3 ms 0.46        0.56-0.57
    ============== ============ =========== ===========

One step's products alone (us, 1 thread / 2 threads, wall, same machine):

    ======================= ============= ============= ============= =============
    product                 numpy f32     numpy f64     torch f32     torch f64
    ======================= ============= ============= ============= =============
    (X_b @ W).T, copied     90 / 65       184 / 125     300 / 161     338 / 186
    W_t @ X_b.T             150 / 109     145 / 137     70 / 59       168 / 107
    X_b.T @ e.T             91 / 69       190 / 134     709 / 373     925 / 482
    e @ X_b                 72 / 72       116 / 108     69 / 58       169 / 128
    ======================= ============= ============= ============= =============

On this AMD machine PyTorch's MKL products are fastest in ``torch.nn.Linear``'s own layout
("class"; MKL takes slow paths for the transposed forms on non-Intel CPUs). OpenBLAS: the
gradient ``e @ X_b`` is never slower, the forward ``W_t @ X_b.T`` only pays in float64. The rule
(:data:`MEASURED_LAYOUTS`) applies a layout only where it was measured (library, BLAS, CPU
vendor); elsewhere (Intel, where the row layout already ran at 0.59x the PyTorch idiom; other
BLAS libraries; GPUs) and for sparse rows the epoch keeps ``"row"``. ``python -m
benchmarks.layouts`` measures a new machine.
"""

from __future__ import annotations

from functools import cache

from ._backend import Backend
from ._threads import blas_controller

__all__ = [
    "LAYOUTS",
    "MEASURED_LAYOUTS",
    "blas_vendor",
    "cpu_vendor",
    "product_layout",
    "torch_blas",
]

LAYOUTS = ("row", "class", "class_xw")
_forced_layout: str | None = None  # tests force a layout here (tests/conftest.py's internals)

# The layouts measured faster than "row" (module docstring), per (library, BLAS, CPU vendor):
# everywhere else the epoch keeps "row", the layout it was measured in before (Intel Xeon with
# MKL and OpenBLAS: benchmarks/README.md), until `python -m benchmarks.layouts` says otherwise.
MEASURED_LAYOUTS: dict[tuple[str, str | None, str | None], dict[str, str]] = {
    ("torch", "mkl", "AuthenticAMD"): {"float32": "class", "float64": "class"},
    ("numpy", "openblas", "AuthenticAMD"): {"float32": "class_xw", "float64": "class"},
}


def product_layout(backend: Backend, dtype_name: str, sparse: bool = False) -> str:
    """The layout :func:`softmax_xp.solvers.sgd.sgd_epoch` multiplies in on ``backend``: a rule
    of the library, its BLAS, the CPU's vendor and the dtype (:data:`MEASURED_LAYOUTS`)."""
    if _forced_layout is not None:
        return _forced_layout
    if sparse:
        return "row"
    if backend.name == "torch" and str(backend.device) == "cpu":
        key = ("torch", torch_blas(), cpu_vendor())
    elif backend.name in ("numpy", "array_api_strict"):
        key = ("numpy", blas_vendor(), cpu_vendor())
    else:  # GPUs, JAX: not measured
        return "row"
    return MEASURED_LAYOUTS.get(key, {}).get(dtype_name, "row")


@cache
def blas_vendor() -> str | None:
    """NumPy's BLAS as threadpoolctl names it (``"openblas"``, ``"mkl"``, ``"blis"``...)."""
    for lib in blas_controller().lib_controllers:
        return str(lib.internal_api)
    return None


@cache
def torch_blas() -> str | None:
    """PyTorch's BLAS, from its build configuration (``"mkl"``, ``"open"``...)."""
    import torch

    config: str = torch.__config__.show()
    for part in config.replace("\n", ", ").split(", "):
        if "BLAS_INFO=" in part:
            return part.split("BLAS_INFO=", 1)[1].strip()
    return None


@cache
def cpu_vendor() -> str | None:
    """The CPU's vendor string (``"GenuineIntel"``, ``"AuthenticAMD"``), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
