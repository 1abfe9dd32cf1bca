"""Section 4 (GPU): the epoch rows on CuPy, 100 MNIST epochs, and N = 1M, d = 784, K = 10 and
K = 1000 at batch 4096 against NumPy and the memory-bandwidth and FLOP floors measured in the run.

Runs only where CuPy has a device; elsewhere :func:`problem` says why and the section is skipped.
Written against the array API like the package, so ``backend`` may name any backend (a dry run on
``numpy`` checks the code paths on a machine without a GPU).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from softmax_xp import SoftmaxXP
from softmax_xp._backend import Backend, _problem, asarray_on, resolve_backend

from . import references
from ._data import Mnist, synthetic
from ._report import Section, ms, x
from ._timing import Case, interleave


def problem(backend: str = "cupy") -> str | None:
    """Why the GPU section cannot run here, or None."""
    return _problem(backend)


def synchronizer(backend: Backend) -> Callable[[], None]:
    """A function that waits for the device to finish its queued work."""
    if backend.name == "cupy":
        import cupy

        return lambda: cupy.cuda.Device().synchronize()
    if backend.name == "torch" and str(backend.device).startswith("cuda"):
        import torch

        return torch.cuda.synchronize
    return lambda: None


def copy_bandwidth(backend: Backend, n_bytes: int, sync: Callable[[], None]) -> float:
    """Device-to-device copy bandwidth in bytes/s (read + write), best of 5 copies."""
    xp = backend.xp
    src = xp.ones((n_bytes // 4,), dtype=xp.float32, device=backend.device)
    best = float("inf")
    for _ in range(6):
        sync()
        start = time.perf_counter()
        xp.asarray(src, copy=True)
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * src.shape[0] * 4 / best


def matmul_rate(backend: Backend, size: int, sync: Callable[[], None]) -> float:
    """float32 matrix-product throughput in FLOP/s, best of 5 square products."""
    xp = backend.xp
    a = xp.ones((size, size), dtype=xp.float32, device=backend.device)
    best = float("inf")
    for _ in range(6):
        sync()
        start = time.perf_counter()
        a @ a
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def model_case(backend: str, X: Any, y: Any, k: int, batch: int, dtype: str, epochs: int) -> Case:
    """``epochs`` epochs of SoftmaxXP on ``backend`` with the data moved there once."""
    model = SoftmaxXP(X.shape[1], k, backend=backend, dtype=dtype, seed=0, fallback=False)
    Xd = asarray_on(model._backend, X, model.dtype)
    yd = asarray_on(model._backend, y, model.xp.int64)

    def case() -> float:
        history = model.train(Xd, yd, epochs=epochs, batch_size=batch, verbose=0)
        return sum(history.epoch_time)

    return case


def floor_case(backend: Backend, X: Any, k: int, batch: int, dtype: str) -> Case:
    xp = backend.xp
    Xd = asarray_on(backend, X, getattr(xp, dtype))
    W = xp.zeros((X.shape[1], k), dtype=getattr(xp, dtype), device=backend.device)
    rng = np.random.default_rng(0)

    def case() -> None:
        order = asarray_on(backend, rng.permutation(X.shape[0]), xp.int64)
        references.floor_epoch(Xd, order, W, batch, xp)

    return case


def run(data: Mnist, repeats: int, backend: str = "cupy", quick: bool = False) -> Section:
    """Every GPU row; ``quick`` shrinks the large problem to 100k rows."""
    dev = resolve_backend(backend, fallback=False)
    sync = synchronizer(dev)
    section = Section(
        f"4. GPU ({backend})",
        ["row", "median ms", "vs NumPy", "vs floor"],
    )
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # MNIST epoch rows, as in section 1, and 100 epochs (the "<= 1 s" target).
        mnist: dict[str, Case] = {}
        for dtype in ("float32", "float64"):
            mnist[f"floor {backend} {dtype}"] = floor_case(dev, data.X, 10, 256, dtype)
            mnist[f"SoftmaxXP {backend} {dtype}"] = model_case(
                backend, data.X, data.y, 10, 256, dtype, 1
            )
            mnist[f"SoftmaxXP numpy {dtype}"] = model_case(
                "numpy", data.X, data.y, 10, 256, dtype, 1
            )
        epochs = 10 if quick else 100
        mnist[f"{epochs} MNIST epochs, SoftmaxXP {backend} float32"] = model_case(
            backend, data.X, data.y, 10, 256, "float32", epochs
        )
        t = interleave(mnist, repeats=repeats, warmup=1, sync=sync)
        for name, timing in t.items():
            dtype = "float64" if "float64" in name else "float32"
            vs_np = (
                timing.median / t[f"SoftmaxXP numpy {dtype}"].median
                if name.startswith(f"SoftmaxXP {backend}")
                else None
            )
            vs_floor = (
                timing.median / t[f"floor {backend} {dtype}"].median
                if name.startswith(f"SoftmaxXP {backend}")
                else None
            )
            section.rows.append([name, ms(timing.median), x(vs_np), x(vs_floor)])
        out["mnist"] = {k: v.to_dict() for k, v in t.items()}

        # The large problem: N x 784 at batch 4096, K = 10 and K = 1000.
        n = 100_000 if quick else 1_000_000
        X_big, _ = synthetic(n, 784, 10)
        bw = copy_bandwidth(dev, X_big.nbytes, sync)
        rate = matmul_rate(dev, 4096 if quick else 8192, sync)
        out["copy_bandwidth_Bps"], out["matmul_flops"] = bw, rate
        for k in (10, 1000):
            # NumPy on all N rows would take minutes at K = 1000: time a slice, scale per row.
            n_np = min(n, 100_000 if k == 10 else 20_000)
            y_big = np.random.default_rng(k).integers(0, k, size=n, dtype=np.int64)
            big = {
                "gpu": model_case(backend, X_big, y_big, k, 4096, "float32", 1),
                "numpy": model_case("numpy", X_big[:n_np], y_big[:n_np], k, 4096, "float32", 1),
            }
            tb = interleave(big, repeats=repeats, warmup=1, sync=sync)
            gpu_s, np_s = tb["gpu"].median, tb["numpy"].median * n / n_np
            floor_s = max(X_big.nbytes / bw, 4 * n * 784 * k / rate)
            label = f"N={n:,}, K={k}, batch 4096, float32"
            section.rows.append(
                [f"SoftmaxXP {backend}, {label}", ms(gpu_s), x(gpu_s / np_s), x(gpu_s / floor_s)]
            )
            section.rows.append(
                [
                    f"SoftmaxXP numpy, {label}"
                    + (f" (from {n_np:,} rows, x{n // n_np})" if n_np < n else ""),
                    ms(np_s),
                    "1.00x",
                    "-",
                ]
            )
            section.rows.append(
                [
                    f"floor: max(X bytes / copy bandwidth, 4NdK / matmul rate), K={k}",
                    ms(floor_s),
                    "-",
                    "1.00x",
                ]
            )
            out[f"K={k}"] = {
                "gpu": tb["gpu"].to_dict(),
                "numpy": tb["numpy"].to_dict(),
                "numpy_rows": n_np,
                "floor_s": floor_s,
            }
    section.notes += [
        f"median of {repeats} interleaved repeats after a warm-up round, device synchronised "
        "before each clock stop; SoftmaxXP rows report the sum of History.epoch_time",
        f"copy bandwidth {bw / 1e9:.0f} GB/s (device-to-device, read + write), float32 matmul "
        f"{rate / 1e12:.1f} TFLOP/s, both measured in this run",
    ]
    section.data = out
    return section
