"""Section 3: epoch time and peak memory of SoftmaxXP (NumPy, float32) as N, K and the batch grow,
and the peak memory of training on MNIST the way ``softmax-xp train`` does."""

from __future__ import annotations

import math
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np

from softmax_xp import SoftmaxXP

from ._data import Mnist, synthetic
from ._report import Section, mb, ms
from ._timing import Case, Timing, interleave

D = 784


def epoch_case(X: np.ndarray, y: np.ndarray, k: int, batch: int) -> Case:
    """One epoch of SoftmaxXP on NumPy, float32."""
    model = SoftmaxXP(X.shape[1], k, backend="numpy", dtype="float32", seed=0)

    def case() -> float:
        history = model.train(X, y, epochs=1, batch_size=batch, verbose=0)
        return sum(history.epoch_time)

    return case


def peak_bytes(case: Case) -> int:
    """Peak bytes allocated (tracemalloc) while ``case`` runs, beyond what existed before."""
    tracemalloc.start()
    try:
        case()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def epoch_peak_bytes(X: np.ndarray, y: np.ndarray, k: int, batch: int) -> int:
    """Peak bytes allocated during the second epoch of a run, beyond what the first left alive.

    train()'s one-off input checks run before the first epoch, so they are not counted.
    """
    model = SoftmaxXP(X.shape[1], k, backend="numpy", dtype="float32", seed=0)
    live: list[int] = []

    def after_epoch(epoch: int, history: object) -> None:
        if epoch == 1:
            live.append(tracemalloc.get_traced_memory()[0])
            tracemalloc.reset_peak()

    tracemalloc.start()
    try:
        model.train(X, y, epochs=2, batch_size=batch, verbose=0, callback=after_epoch)
        return tracemalloc.get_traced_memory()[1] - live[0]
    finally:
        tracemalloc.stop()


def linear_fit(sizes: list[float], values: list[float]) -> tuple[float, float, float]:
    """Least-squares ``value = a + b * size``: ``(a, b, R^2)``."""
    x, v = np.asarray(sizes, float), np.asarray(values, float)
    b, a = np.polyfit(x, v, 1)
    residual = float(np.sum((a + b * x - v) ** 2))
    total = float(np.sum((v - v.mean()) ** 2)) or 1.0
    return float(a), float(b), 1.0 - residual / total


def verdict(
    sizes: list[float], values: list[float], unit: str, per: str, scale: float = 1.0
) -> str:
    """Whether ``values`` grow linearly with ``sizes``: a straight line with R^2 >= 0.98.

    The slope is reported per ``scale`` units of size (e.g. per 1,000 rows).
    """
    a, b, r2 = linear_fit(sizes, values)
    shape = "linear" if r2 >= 0.98 else "not linear"
    return f"{shape} (R^2 {r2:.3f}), {a:.3g} {unit} + {b * scale:.3g} {unit} per {per}"


def _sweep(
    section: Section,
    label: str,
    sizes: list[int],
    problems: dict[str, tuple[np.ndarray, np.ndarray, int, int]],
    repeats: int,
) -> dict[str, object]:
    """Time one epoch of every problem ``name: (X, y, k, batch)``, then measure its memory."""
    cases = {name: epoch_case(*problem) for name, problem in problems.items()}
    timings: dict[str, Timing] = interleave(cases, repeats=repeats, warmup=1)
    peaks = {name: epoch_peak_bytes(*problem) for name, problem in problems.items()}
    names = list(cases)
    for size, name in zip(sizes, names, strict=True):
        section.rows.append([label, f"{size:,}", ms(timings[name].median), mb(peaks[name])])
    return {
        "sizes": sizes,
        "timings": {k: v.to_dict() for k, v in timings.items()},
        "peak_bytes": peaks,
        "time_ms": [timings[n].median * 1e3 for n in names],
        "memory_mb": [peaks[n] / 2**20 for n in names],
    }


def mnist_rss_mb(epochs: int = 2) -> float | None:
    """Peak RSS (MB) of a fresh process that loads MNIST and trains SoftmaxXP like the CLI."""
    # VmHWM (peak RSS of this process image) rather than ru_maxrss, which Linux carries over from
    # the parent across fork and exec, so that a big benchmark process would inflate it.
    code = (
        "from softmax_xp import SoftmaxXP\n"
        "from softmax_xp.datasets import load_mnist\n"
        "(X, y), (Xt, yt) = load_mnist()\n"
        "m = SoftmaxXP(784, 10, backend='numpy', seed=0)\n"
        f"m.train(X[:50000], y[:50000], X[50000:], y[50000:], epochs={epochs}, verbose=0)\n"
        "m.score(Xt, yt)\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
        "print(int(status.split()[0]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        return None
    return int(done.stdout.strip().splitlines()[-1]) / 1024  # VmHWM is in kB


def run(data: Mnist, repeats: int, quick: bool) -> Section:
    """The three sweeps and the MNIST memory check."""
    n_sizes = [5_000, 20_000, 50_000] if quick else [10_000, 30_000, 100_000, 300_000, 1_000_000]
    k_sizes = [10, 100, 1000]
    k_rows = 5_000 if quick else 50_000
    batches = [64, 256, 1024, 4096, 8192]
    section = Section(
        "3. Scaling (SoftmaxXP, NumPy, float32, d = 784)",
        ["sweep", "size", "epoch median ms", "epoch peak MB (tracemalloc)"],
    )
    X_all, y_all = synthetic(max(n_sizes), D, 10)
    out: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out["N"] = _sweep(
            section,
            "N (K=10, batch 256)",
            n_sizes,
            {f"N={n}": (X_all[:n], y_all[:n], 10, 256) for n in n_sizes},
            repeats,
        )
        rng = np.random.default_rng(1)
        y_k = {k: rng.integers(0, k, size=k_rows, dtype=np.int64) for k in k_sizes}
        out["K"] = _sweep(
            section,
            f"K (N={k_rows:,}, batch 256)",
            k_sizes,
            {f"K={k}": (X_all[:k_rows], y_k[k], k, 256) for k in k_sizes},
            repeats,
        )
        del X_all, y_all
        out["batch"] = _sweep(
            section,
            f"batch (MNIST {data.X.shape[0]:,} rows, K=10)",
            batches,
            {f"batch={b}": (data.X, data.y, 10, b) for b in batches},
            repeats,
        )
        out["mnist_epoch_peak_bytes"] = epoch_peak_bytes(data.X, data.y, 10, 256)
        one_call = SoftmaxXP(784, 10, backend="numpy", seed=0)
        out["mnist_train_call_peak_bytes"] = peak_bytes(
            lambda: one_call.train(data.X, data.y, epochs=1, verbose=0)
        )
    out["mnist_train_rss_mb"] = mnist_rss_mb()
    n, k, b = out["N"], out["K"], out["batch"]
    steps = [math.ceil(data.X.shape[0] / size) for size in b["sizes"]]  # type: ignore[index]
    per_step = [t / s for t, s in zip(b["time_ms"], steps, strict=True)]  # type: ignore[index]
    section.notes += [
        f"N: time {verdict(n['sizes'], n['time_ms'], 'ms', '1,000 rows', 1e3)}; "  # type: ignore[index]
        f"memory {verdict(n['sizes'], n['memory_mb'], 'MB', '1,000 rows', 1e3)}",  # type: ignore[index]
        f"K: time {verdict(k['sizes'], k['time_ms'], 'ms', 'class')}; "  # type: ignore[index]
        f"memory {verdict(k['sizes'], k['memory_mb'], 'MB', 'class')}",  # type: ignore[index]
        f"batch: the epoch takes {b['time_ms'][0]:.0f} ms at batch {b['sizes'][0]} and "  # type: ignore[index]
        f"{b['time_ms'][-1]:.0f} ms at batch {b['sizes'][-1]} (same arithmetic, fewer steps); "  # type: ignore[index]
        f"time per step {verdict(b['sizes'], per_step, 'ms', '1,000 rows of batch', 1e3)}; "  # type: ignore[index]
        f"memory {verdict(b['sizes'], b['memory_mb'], 'MB', '1,000 rows of batch', 1e3)}",  # type: ignore[index]
        f"MNIST: one epoch allocates at most {mb(out['mnist_epoch_peak_bytes'])} MB beyond the "  # type: ignore[arg-type]
        f"data (the training set is {data.X.nbytes / 2**20:.0f} MB: no per-epoch copy); a whole "
        f"train(epochs=1) call peaks at {mb(out['mnist_train_call_peak_bytes'])} MB, its input "  # type: ignore[arg-type]
        "checks included; a fresh process that loads MNIST and trains 2 epochs like "
        f"`softmax-xp train` peaks at {_fmt(out['mnist_train_rss_mb'])} MB RSS",  # type: ignore[arg-type]
        f"median of {repeats} interleaved repeats per sweep; peak memory: tracemalloc over the "
        "second epoch of a 2-epoch run, above what the first epoch left alive",
    ]
    section.data = out
    return section


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
