"""Section 5: one MNIST epoch beside a competing CPU load (a busy-loop process on one core), with
the libraries' default threads and with SoftmaxXP's thread rule (softmax_xp/_threads.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ._data import Mnist
from ._report import Section, ms, x
from ._timing import Case, interleave
from .epoch import have, softmax_case

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
    idle = interleave(cases, repeats=repeats, warmup=1)
    with busy_core() as core:
        loaded = interleave(cases, repeats=repeats, warmup=1)
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
        ],
    )
    for backend in backends:
        d, r = f"{backend} default", f"{backend} auto"
        section.rows.append(
            [
                f"SoftmaxXP {backend}",
                f"{ms(idle[d].median)} / {ms(idle[r].median)}",
                x(idle[r].median / idle[d].median),
                f"{ms(loaded[d].median)} / {ms(loaded[r].median)}",
                x(loaded[r].median / loaded[d].median),
                x(loaded[r].median / idle[r].median),
            ]
        )
    section.notes += [
        "default: $SOFTMAX_XP_THREADS=default, the BLAS's (and PyTorch's) own thread count; "
        "rule: one thread for products below softmax_xp._threads.SMALL_PRODUCT multiply-adds "
        "(MNIST's are 2M)",
        f"busy loop: `python -c 'while True: pass'` pinned to core {core}; median of {repeats} "
        "interleaved repeats after a warm-up round, first without it, then beside it; "
        f"load average when the section ended: {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} logical CPUs",
    ]
    section.data = {
        "idle": {k: v.to_dict() for k, v in idle.items()},
        "loaded": {k: v.to_dict() for k, v in loaded.items()},
        "busy_core": core,
    }
    return section
