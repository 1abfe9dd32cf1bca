"""``python -m benchmarks [--quick] [--gpu] [--sections 1,2,3,5,6,dask,sparse] [--out PATH]
[--compare REF.json]`` from the repo root.

Sections ``dask`` (Dask arrays on a LocalCluster, out of core) and ``sparse`` (text
classification on scipy.sparse) run only when named."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import (
    _compare,
    _machine,
    accuracy,
    contention,
    dask_cluster,
    epoch,
    estimator,
    gpu,
    scaling,
    sparse,
)
from ._data import Mnist, mnist
from ._report import Section, render, write_json, x

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes, < 1 minute")
    p.add_argument("--gpu", action="store_true", help="only the GPU section (section 4)")
    p.add_argument(
        "--sections", default=None, help="comma-separated subset of 1,2,3,4,5,6,dask,sparse"
    )
    p.add_argument(
        "--zarr-rows",
        type=int,
        default=None,
        help="rows of section dask's on-disk Zarr (default 4,000,000 = 12.5 GB; --quick 250,000)",
    )
    p.add_argument(
        "--sparse-rows",
        type=int,
        default=None,
        help="training rows of section sparse (default 50,000; --quick 10,000)",
    )
    p.add_argument("--repeats", type=int, default=None, help="repeats per row (at least 5)")
    p.add_argument("--out", type=Path, default=None, help="where to write the JSON record")
    p.add_argument(
        "--compare",
        type=Path,
        default=None,
        metavar="REF.json",
        help="print each timed row's ratio to the same row of a saved record (e.g. main's)",
    )
    p.add_argument("--gpu-backend", default="cupy", help=argparse.SUPPRESS)  # dry runs
    return p.parse_args(argv)


def targets(sections: dict[str, Section], data: Mnist) -> Section:
    """The issue's CPU targets, checked against this run's ratios."""
    s = Section("Targets (this run)", ["target", "measured", "goal", "holds"])

    def add(name: str, value: float | None, goal: str, ok: bool | None, fmt=x) -> None:
        verdict = "-" if ok is None else ("yes" if ok else "no")
        s.rows.append([name, "-" if value is None else fmt(value), goal, verdict])

    if "1" in sections:
        r = epoch.targets(sections["1"].data["rows"])
        for key, goal, bound in (
            ("numpy float32 / floor", "<= 1.15x", 1.15),
            ("numpy float32 / chapter loop", "<= 0.55x", 0.55),
            ("numpy float32 / PyTorch idiom float32", "< 1.00x", 1.0),
            ("torch float32 / PyTorch idiom float32", "<= 1.00x", 1.0),
            ("torch float32 / PyTorch idiom float32, 1 thread", "<= 1.00x", 1.0),
            ("jax float32 / numpy float32", "<= 1.20x", 1.2),
            ("jax float32 / JAX idiom float32 (jit per step)", "<= 0.80x", 0.8),
        ):
            value = r[key]
            add(f"SoftmaxXP {key}", value, goal, None if value is None else value <= bound)
        for key in ("numpy float64 / floor", "numpy float64 / chapter loop"):
            add(f"SoftmaxXP {key} (no target)", r[key], "-", None)
        compiled = sections["1"].data.get("jax_compile_s", {}).get("SoftmaxXP jax epoch")
        if compiled is not None:
            add(
                "SoftmaxXP jax epoch: compile time",
                compiled,
                "< 2 s",
                compiled < 2.0,
                lambda v: f"{v:.2f} s",
            )
        s.data["ratios"] = r
    if "2" in sections:
        fast = accuracy.fast_seconds(sections["2"])
        add(
            "FAST preset: seconds to test acc 0.9227",
            fast,
            "<= 1.5 s",
            fast is not None and fast <= 1.5,
            lambda v: f"{v:.2f} s",
        )
    if "3" in sections:
        rss = sections["3"].data.get("mnist_train_rss_mb")
        add(
            "peak RSS, training on MNIST",
            rss,
            "<= 600 MB",
            None if rss is None else rss <= 600,
            lambda v: f"{v:.0f} MB",
        )
        peak = sections["3"].data["mnist_epoch_peak_bytes"]
        add(
            "allocated by one MNIST epoch / training set",
            peak / data.X.nbytes,
            "no per-epoch copy (< 0.10)",
            peak / data.X.nbytes < 0.10,
            lambda v: f"{v:.3f}",
        )
    return s


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    start = time.perf_counter()
    wanted = {"4"} if args.gpu else {"1", "2", "3", "4", "5", "6"}
    if args.sections:
        wanted = {part.strip() for part in args.sections.split(",")}
    repeats = max(5, args.repeats or (5 if args.quick or args.gpu else 7))
    if "4" in wanted:  # scikit-learn's array_api_dispatch needs it before scipy is imported
        os.environ.setdefault("SCIPY_ARRAY_API", "1")
    reference = None if args.compare is None else _compare.load(args.compare)
    started = _machine.now()
    data = mnist()
    small = data.head(10_000) if args.quick else data
    plan: dict[str, Callable[[], Section]] = {}
    if "1" in wanted:
        plan["1"] = lambda: epoch.run(small, repeats)
    if "2" in wanted:
        plan["2"] = lambda: accuracy.run(
            data, repeats, chapter=not args.quick, sklearn_repeats=0 if args.quick else 5
        )
    if "3" in wanted:
        plan["3"] = lambda: scaling.run(small, repeats, quick=args.quick)
    if "4" in wanted:
        why = gpu.problem(args.gpu_backend)
        if why is None:
            plan["4"] = lambda: gpu.run(data, repeats, backend=args.gpu_backend, quick=args.quick)
            plan["4b"] = lambda: gpu.targets(data, repeats, backend=args.gpu_backend)
        elif args.gpu_backend == "cupy" and (need := gpu.required()):
            print(f"GPU benchmark FAILED: {need}, but CuPy cannot run: {why}", file=sys.stderr)
            return 3
        else:
            plan["4"] = lambda: Section("4. GPU", [], notes=[f"skipped: {why}"])
    if "5" in wanted:
        plan["5"] = lambda: contention.run(small, repeats)
    if "6" in wanted:
        quick = args.quick
        plan["6"] = lambda: estimator.run(
            small, 1 if quick else 3, 1 if quick else 2, fast_target=0.90 if quick else 0.92
        )
    if "6" in wanted or "6b" in wanted:  # 6b alone: --sections 6b
        plan["6b"] = lambda: estimator.run_more(small, quick=args.quick)
    if "sparse" in wanted:
        plan["sparse"] = lambda: sparse.run(
            1 if args.quick else 3, quick=args.quick, rows=args.sparse_rows
        )
    if "dask" in wanted:
        plan["dask"] = lambda: dask_cluster.run(repeats, quick=args.quick, zarr_rows=args.zarr_rows)
    default = (
        "gpu-latest.json" if args.gpu else ("cpu-quick.json" if args.quick else "cpu-latest.json")
    )
    if wanted == {"dask"}:
        default = "dask-quick.json" if args.quick else "dask-latest.json"
    if wanted == {"sparse"}:
        default = "sparse-quick.json" if args.quick else "sparse-latest.json"
    out = args.out or RESULTS / default

    sections: dict[str, Section] = {}
    interrupted = None
    for key, run_section in plan.items():
        try:
            sections[key] = run_section()
        except KeyboardInterrupt:  # Ctrl-C, or gpu.sh's time limit: keep the finished sections
            interrupted = key
            break
        write_json(out, machine_record(started, start), [sections[k] for k in sorted(sections)])
    ordered = [sections[k] for k in sorted(sections)]
    if {"1", "2", "3"} & set(sections):
        ordered.append(targets(sections, data))
    if args.compare is not None and reference is not None:
        ordered.append(_compare.compare(args.compare, reference, ordered))
    if interrupted is not None:
        ordered.append(
            Section(
                f"Interrupted in section {interrupted}",
                [],
                notes=[
                    f"sections {', '.join(k for k in plan if k not in sections)} did not finish"
                ],
            )
        )
    machine = machine_record(started, start)
    print(render(machine, ordered))
    print(f"({machine['elapsed_s']:.0f} s)")
    write_json(out, machine, ordered)
    print(f"wrote {out}")
    return 130 if interrupted is not None else 0


def machine_record(started: str, start: float) -> dict[str, Any]:
    """The machine, the run's start date and its elapsed seconds so far (described at the end,
    so that every BLAS the rows loaded is listed)."""
    machine = _machine.describe()
    machine["date"], machine["elapsed_s"] = started, round(time.perf_counter() - start, 1)
    return machine


if __name__ == "__main__":
    raise SystemExit(main())
