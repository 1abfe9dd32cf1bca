"""Section 5: one MNIST epoch beside a competing CPU load (a busy-loop process on one core), with
the libraries' default threads and with SoftmaxXP's thread choice (softmax_xp/_threads.py),
against the floor (the faster of its thread counts, measured beside the same load) and the
PyTorch idiom (its own threads)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ._data import Mnist
from ._report import Section, ms, x
from ._timing import Case, interleave, ratio
from .epoch import (
    best_floor,
    floor_case,
    floor_counts,
    floor_row,
    have,
    softmax_case,
    torch_idiom_case,
)

POLICIES = ("default", "auto")  # $SOFTMAX_XP_THREADS: the libraries' own threads, our rule


def with_policy(policy: str, case: Case) -> Case:
    """``case`` run with ``$SOFTMAX_XP_THREADS=policy``."""

    def run() -> float | None:
        before = os.environ.get("SOFTMAX_XP_THREADS")
        os.environ["SOFTMAX_XP_THREADS"] = policy
        try:
            return case()
        finally:
            if before is None:
                del os.environ["SOFTMAX_XP_THREADS"]
            else:
                os.environ["SOFTMAX_XP_THREADS"] = before

    return run


@contextmanager
def busy_core() -> Iterator[int | None]:
    """A Python busy loop in a child process, pinned to the last usable core; yields that core."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    core = None
    try:
        if hasattr(os, "sched_setaffinity"):
            core = max(os.sched_getaffinity(0))
            os.sched_setaffinity(child.pid, {core})
        yield core
    finally:
        child.kill()
        child.wait()


def run(data: Mnist, repeats: int) -> Section:
    """Each backend's epoch with both policies, idle and beside the busy loop."""
    backends = ["numpy"] + (["torch"] if have("torch") else [])
    cases = {
        f"{backend} {policy}": with_policy(policy, softmax_case(backend, "float32", data))
        for backend in backends
        for policy in POLICIES
    }
    for threads in floor_counts():
        cases[floor_row("float32", threads)] = floor_case("float32", data, threads)
    if have("torch"):
        cases["PyTorch idiom float32"] = torch_idiom_case("float32", data)
    idle = interleave(cases, repeats=repeats, warmup=1)
    with busy_core() as core:
        loaded = interleave(cases, repeats=repeats, warmup=1)
    fastest = {"idle": best_floor(idle, "float32"), "busy": best_floor(loaded, "float32")}
    section = Section(
        f"5. Under load: one MNIST epoch ({data.X.shape[0]:,} rows, batch 256, float32) beside "
        "a busy-loop process",
        [
            "backend",
            "no added load, ms: default / rule",
            "rule vs default",
            "beside the busy loop, ms: default / rule",
            "rule vs default, busy",
            "busy vs no added load, rule",
            "rule vs reference, idle",
            "rule vs reference, busy",
        ],
    )
    for backend in backends:
        d, r = f"{backend} default", f"{backend} auto"
        reference = "floor numpy float32" if backend == "numpy" else "PyTorch idiom float32"
        section.rows.append(
            [
                f"SoftmaxXP {backend}",
                f"{ms(idle[d].median)} / {ms(idle[r].median)}",
                x(idle[r].median / idle[d].median),
                f"{ms(loaded[d].median)} / {ms(loaded[r].median)}",
                x(loaded[r].median / loaded[d].median),
                x(loaded[r].median / idle[r].median),
                x(ratio(idle, r, reference)),
                x(ratio(loaded, r, reference)),
            ]
        )
    rows = [floor_row("float32", n) for n in floor_counts()]
    for name in [*rows, "floor numpy float32", "PyTorch idiom float32"]:
        if name in idle:
            section.rows.append(
                [name, ms(idle[name].median), "-", ms(loaded[name].median), "-",
                 x(loaded[name].median / idle[name].median), "-", "-"]
            )  # fmt: skip
    section.notes += [
        "default: $SOFTMAX_XP_THREADS=default, the BLAS's (and PyTorch's) own thread count; "
        "rule: $SOFTMAX_XP_THREADS=auto, the count measured per epoch where 1 thread and the "
        "default give the same bits on this BLAS, else one thread for products below "
        "softmax_xp._threads.SMALL_PRODUCT multiply-adds (MNIST's are 2M)",
        "reference: for NumPy the floor (float32, the faster of its thread counts, idle: "
        f"{fastest['idle']}; busy: {fastest['busy']}; measured beside the same load), for "
        "PyTorch the PyTorch idiom with its own thread count; targets: <= 1.15x the floor, "
        "<= 1.00x the idiom, idle and busy",
        f"busy loop: `python -c 'while True: pass'` pinned to core {core}; median of {repeats} "
        "interleaved repeats after a warm-up round, first without it, then beside it; "
        f"load average when the section ended: {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} logical CPUs",
    ]
    section.data = {
        "idle": {k: v.to_dict() for k, v in idle.items()},
        "loaded": {k: v.to_dict() for k, v in loaded.items()},
        "busy_core": core,
        "fastest_floor": fastest,
    }
    return section
