"""``python -m benchmarks.layouts [--rounds 15] [--threads 1]``: the SGD epoch in each product
layout (softmax_xp.solvers.sgd.sgd_epoch's ``layout``), NumPy and PyTorch, float32 and float64,
interleaved, medians; the measurement behind the layout rule in softmax_xp/_layout.py.

On one thread the clock is the calling thread's CPU time (``time.thread_time``), which a busy
machine disturbs far less than wall time; on more, wall time. Synthetic MNIST-shaped data
(12,800 x 784, K = 10, batch 256, momentum 0.9)."""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

import array_api_compat
import numpy as np
from threadpoolctl import threadpool_limits

from softmax_xp.solvers.sgd import sgd_epoch

from ._machine import cpu_model, cpu_vendor

LAYOUTS = ("row", "class", "class_xw")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.layouts", description=__doc__)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    libs = ["numpy"] + (["torch"] if importlib.util.find_spec("torch") else [])
    clock = time.thread_time if args.threads == 1 else time.perf_counter
    print(f"{cpu_model()} ({cpu_vendor()}), {args.threads} thread(s), clock {clock.__name__}")
    rng = np.random.default_rng(0)
    n, d, k = 12_800, 784, 10
    for lib in libs:
        if lib == "torch":
            import torch

            torch.set_num_threads(args.threads)
        for dtype in ("float32", "float64"):
            arrays = [
                rng.random((n, d)).astype(dtype),
                rng.integers(0, k, n),
                rng.permutation(n),
                ((rng.random((d, k)) - 0.5) * 0.01).astype(dtype),
                np.zeros((1, k), dtype),
            ]
            if lib == "torch":
                arrays = [torch.from_numpy(a) for a in arrays]
            X, y, order, W, b = arrays
            xp = array_api_compat.array_namespace(X)
            times: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
            with threadpool_limits(args.threads, user_api="blas"):
                for _ in range(args.rounds):
                    for layout in LAYOUTS:
                        start = clock()
                        sgd_epoch(
                            X, y, order, W, b, (W * 0, b * 0), lr=0.1, momentum=0.9,
                            reg=1e-4, batch_size=256, xp=xp, layout=layout,
                        )  # fmt: skip
                        times[layout].append(clock() - start)
            med = {layout: statistics.median(t) for layout, t in times.items()}
            print(
                f"{lib} {dtype}: row {med['row'] * 1e3:.1f} ms; "
                + ", ".join(f"{lay} {med[lay] / med['row']:.2f}x" for lay in LAYOUTS[1:])
            )


if __name__ == "__main__":
    main()
