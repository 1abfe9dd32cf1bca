"""Section 1: time of one MNIST epoch (50,000 x 784, K = 10, batch 256) on every backend, against
the chapter-style loop, the PyTorch idiom, the JAX idiom and the floor, all interleaved in one run.
JAX's compile times are measured apart, before the rows run."""

from __future__ import annotations

import importlib.util
import os
import time
import warnings
from typing import Any

import numpy as np

from softmax_xp import SoftmaxXP
from softmax_xp._backend import asarray_on, index_dtype, resolve_backend
from softmax_xp._layout import product_layout

from . import references
from ._data import Mnist
from ._report import Section, ms, x
from ._timing import Case, Timing, interleave, ratio

BATCH = 256
LR, REG = 0.1, 1e-4


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def softmax_case(backend: str, dtype: str, data: Mnist, seed: int = 0) -> Case:
    """One epoch of ``SoftmaxXP.train`` with the data already on the backend in ``dtype``."""
    model = SoftmaxXP(784, 10, lr=LR, reg=REG, backend=backend, dtype=dtype, seed=seed)
    X = asarray_on(model._backend, data.X, model.dtype)
    y = asarray_on(model._backend, data.y, index_dtype(model.xp, model.device))

    def case() -> float:
        history = model.train(X, y, epochs=1, batch_size=BATCH, verbose=0)
        return sum(history.epoch_time)

    return case


def floor_case(dtype: str, data: Mnist, threads: int, seed: int = 0) -> Case:
    """The floor on NumPy: gather each batch and the two matrix products, nothing else, on
    ``threads`` BLAS threads, in the product layout SoftmaxXP's rule gives NumPy here."""
    import array_api_compat.numpy as xp
    from threadpoolctl import threadpool_limits

    X = np.asarray(data.X, dtype=dtype)
    W = np.zeros((X.shape[1], 10), dtype=dtype)
    rng = np.random.default_rng(seed)
    layout = product_layout(resolve_backend("numpy"), dtype)

    def case() -> None:
        with threadpool_limits(threads, user_api="blas"):
            references.floor_epoch(X, rng.permutation(X.shape[0]), W, BATCH, xp, layout)

    return case


def blas_threads() -> int:
    """NumPy's BLAS thread count (the library's default, before any limit)."""
    from threadpoolctl import threadpool_info

    return max(
        [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"] or [1]
    )


def floor_counts() -> list[int]:
    """The thread counts the floor runs on: one, and the BLAS's default if more."""
    return sorted({1, blas_threads()})


def floor_row(dtype: str, threads: int) -> str:
    return f"floor numpy {dtype}, {threads} thread{'s' if threads > 1 else ''}"


def best_floor(timings: dict[str, Timing], dtype: str) -> str | None:
    """The faster of the floor's thread counts (lower median), as ``"floor numpy {dtype}"``:
    the honest floor is the fastest way the machine does the epoch's unavoidable work."""
    rows = [floor_row(dtype, n) for n in floor_counts() if floor_row(dtype, n) in timings]
    if not rows:
        return None
    best = min(rows, key=lambda row: timings[row].median)
    name = f"floor numpy {dtype}"
    items = list(timings.items())
    timings.clear()
    for key, value in items:  # the best floor goes right after the floor's rows
        timings[key] = value
        if key == rows[-1]:
            timings[name] = Timing(name, value.times if best == key else timings[best].times)
    return best


def chapter_case(data: Mnist, seed: int = 0) -> Case:
    W, b = references.chapter_model(784, 10, seed)
    rng = np.random.default_rng(seed)

    def case() -> None:
        references.chapter_epoch(data.X, data.y, W, b, rng, LR, REG, BATCH)

    return case


def torch_idiom_case(dtype: str, data: Mnist, seed: int = 0, threads: int | None = None) -> Case:
    """The PyTorch idiom's epoch, with PyTorch's own thread count or ``threads``."""
    import torch

    idiom = references.TorchIdiom(784, 10, LR, REG, dtype, seed)
    X = torch.asarray(np.asarray(data.X, dtype=dtype))
    y = torch.asarray(data.y)

    def case() -> None:
        before = torch.get_num_threads()
        torch.set_num_threads(threads or before)
        try:
            idiom.epoch(X, y, BATCH)
        finally:
            torch.set_num_threads(before)

    return case


def jax_idiom_case(data: Mnist, seed: int = 0) -> Case:
    """The JAX idiom's epoch (a jitted step per batch), float32."""
    import jax.numpy as jnp

    idiom = references.JaxIdiom(784, 10, LR, REG, "float32", seed)
    X, y = jnp.asarray(data.X, dtype=jnp.float32), jnp.asarray(data.y, dtype=jnp.int32)

    def case() -> None:
        idiom.epoch(X, y, BATCH)

    return case


def jax_compile_seconds(data: Mnist) -> dict[str, float]:
    """Seconds to lower and compile, from empty caches: SoftmaxXP's JAX epoch (one program) and
    the JAX idiom's step (two: full batches and the short last one, if any)."""
    import jax
    import jax.numpy as jnp

    from softmax_xp.solvers import sgd_jax

    n, d = data.X.shape
    X, y = jnp.zeros((n, d), jnp.float32), jnp.zeros((n,), jnp.int32)
    W, b = jnp.zeros((d, 10), jnp.float32), jnp.zeros((1, 10), jnp.float32)
    order, consts = jnp.arange(n, dtype=jnp.int32), jnp.zeros((8,), jnp.float32)

    def timed(compile_it: Any) -> float:
        jax.clear_caches()
        start = time.perf_counter()
        compile_it()
        return time.perf_counter() - start

    idiom = references.JaxIdiom(d, 10, LR, REG)
    sizes = sorted({BATCH, n % BATCH} - {0})
    args = (X, y, order, W, b, None, None, consts)
    return {
        "SoftmaxXP jax epoch": timed(
            lambda: sgd_jax._epoch.lower(
                *args, batch_size=BATCH, l1=False, intercept=True
            ).compile()
        ),
        "JAX idiom step": timed(
            lambda: [idiom.step.lower(idiom.params, X, y, order[:size]).compile() for size in sizes]
        ),
    }


def cases(data: Mnist, strict: bool = True) -> dict[str, Case]:
    """Every row available here, in the order of the table."""
    out: dict[str, Case] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for dtype in ("float32", "float64"):
            for threads in floor_counts():
                out[floor_row(dtype, threads)] = floor_case(dtype, data, threads)
            out[f"SoftmaxXP numpy {dtype}"] = softmax_case("numpy", dtype, data)
            if have("torch"):
                out[f"SoftmaxXP torch {dtype}"] = softmax_case("torch", dtype, data)
                out[f"PyTorch idiom {dtype}"] = torch_idiom_case(dtype, data)
                if dtype == "float32":  # SoftmaxXP's thread rule gives its loop one thread
                    out["PyTorch idiom float32, 1 thread"] = torch_idiom_case(
                        dtype, data, threads=1
                    )
        if strict and have("array_api_strict"):
            out["SoftmaxXP array_api_strict float32"] = softmax_case(
                "array_api_strict", "float32", data
            )
        if have("jax"):
            out["SoftmaxXP jax float32"] = softmax_case("jax", "float32", data)
            out["JAX idiom float32 (jit per step)"] = jax_idiom_case(data)
        out["chapter loop (NumPy, float64 W)"] = chapter_case(data)
    return out


def _dtype_of(name: str) -> str:
    return "float64" if "float64" in name else "float32"


def run(data: Mnist, repeats: int) -> Section:
    """Time every row, interleaved, and compare each with the floor, the chapter loop and torch."""
    compile_s = jax_compile_seconds(data) if have("jax") else {}
    timings = interleave(cases(data), repeats=repeats, warmup=1)
    fastest = {dtype: best_floor(timings, dtype) for dtype in ("float32", "float64")}
    chapter = "chapter loop (NumPy, float64 W)"
    section = Section(
        f"1. Epoch time, MNIST {data.X.shape[0]:,} x {data.X.shape[1]}, K=10, batch {BATCH}",
        ["row", "median ms", "vs floor (same dtype)", "vs chapter loop", "vs PyTorch idiom"],
    )
    for name, t in timings.items():
        dtype = _dtype_of(name)
        idiom = f"PyTorch idiom {dtype}"
        label = name
        if name == f"floor numpy {dtype}":
            label = f"{name} (fastest: {str(fastest[dtype]).rsplit(', ', 1)[-1]})"
        section.rows.append(
            [
                label,
                ms(t.median),
                x(ratio(timings, name, f"floor numpy {dtype}")),
                x(ratio(timings, name, chapter)),
                x(ratio(timings, name, idiom)) if not name.startswith("PyTorch") else "-",
            ]
        )
    section.notes += [
        f"median of {repeats} interleaved repeats after one warm-up round; every SoftmaxXP row "
        "runs one epoch through the public API, SoftmaxXP.train(X, y, epochs=1), with the data "
        "already on its backend, and reports History.epoch_time (the epoch: shuffle, SGD steps, "
        "loss read-back; not train()'s one-off input checks)",
        "floor: the same epoch's unavoidable work alone (gather each batch, the logits' and the "
        "weight gradient's products), NumPy, same dtype, in the product layout SoftmaxXP's rule "
        "gives NumPy here ("
        + ", ".join(
            f"{dt}: {product_layout(resolve_backend('numpy'), dt)}" for dt in ("float32", "float64")
        )
        + "), on 1 thread and on the BLAS's default; 'floor numpy <dtype>' is the faster of "
        "the two, the one every 'vs floor' ratio uses",
        "chapter loop: NumPy with float64 weights, a shuffled copy of the data each epoch and "
        "`probs[np.arange(n), y] -= 1` (benchmarks/references.py)",
        "PyTorch idiom: nn.Linear, F.cross_entropy, optim.SGD(weight_decay=reg), with PyTorch's "
        "own thread count (and once with one thread, as SoftmaxXP's thread rule runs MNIST's "
        "small products)",
    ]
    if compile_s:
        section.notes += [
            "JAX rows: SoftmaxXP's epoch is one jitted lax.scan; the JAX idiom is a jitted "
            "value_and_grad step per batch (benchmarks/references.py); their programs compiled "
            "in the warm-up round; XLA's CPU threads: "
            + (
                f"XLA_FLAGS={os.environ['XLA_FLAGS']!r}" if "XLA_FLAGS" in os.environ else "its own"
            ),
            "JAX compile time (lower + compile from empty caches, not in the rows): "
            + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in compile_s.items()),
        ]
    section.data = {
        "rows": {k: v.to_dict() for k, v in timings.items()},
        "jax_compile_s": compile_s,
    }
    return section


def targets(timings: dict[str, Any]) -> dict[str, float | None]:
    """The section's ratios that the issue sets targets on."""
    t = {k: Timing(k, v["times_s"]) for k, v in timings.items()}
    ours = "SoftmaxXP numpy float32"
    return {
        "numpy float32 / floor": ratio(t, ours, "floor numpy float32"),
        "numpy float64 / floor": ratio(t, "SoftmaxXP numpy float64", "floor numpy float64"),
        "numpy float32 / chapter loop": ratio(t, ours, "chapter loop (NumPy, float64 W)"),
        "numpy float64 / chapter loop": ratio(
            t, "SoftmaxXP numpy float64", "chapter loop (NumPy, float64 W)"
        ),
        "numpy float32 / PyTorch idiom float32": ratio(t, ours, "PyTorch idiom float32"),
        "torch float32 / PyTorch idiom float32": ratio(
            t, "SoftmaxXP torch float32", "PyTorch idiom float32"
        ),
        "torch float32 / PyTorch idiom float32, 1 thread": ratio(
            t, "SoftmaxXP torch float32", "PyTorch idiom float32, 1 thread"
        ),
        "numpy float64 / PyTorch idiom float64": ratio(
            t, "SoftmaxXP numpy float64", "PyTorch idiom float64"
        ),
        "jax float32 / numpy float32": ratio(t, "SoftmaxXP jax float32", ours),
        "jax float32 / JAX idiom float32 (jit per step)": ratio(
            t, "SoftmaxXP jax float32", "JAX idiom float32 (jit per step)"
        ),
    }
