"""Interleaved timing: warm-up, then A B C A B C ..., medians and ratios."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# A case runs once per call. It may return the seconds to report (e.g. training time to a target
# accuracy, measured inside the case); otherwise its wall time is used.
Case = Callable[[], "float | None"]


@dataclass
class Timing:
    """All repeats of one row, in seconds."""

    name: str
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def to_dict(self) -> dict[str, object]:
        return {"median_s": self.median, "times_s": self.times}


def interleave(
    cases: dict[str, Case],
    repeats: int,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
) -> dict[str, Timing]:
    """Run every case ``warmup`` times, then ``repeats`` rounds of all cases in turn.

    ``sync`` (e.g. a device synchronisation) runs before the clock stops.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for case in cases.values():
            case()
            sync()
    out = {name: Timing(name) for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            start = time.perf_counter()
            reported = case()
            sync()
            elapsed = time.perf_counter() - start
            out[name].times.append(elapsed if reported is None else float(reported))
    return out


def ratio(timings: dict[str, Timing], row: str, to: str) -> float | None:
    """``median(row) / median(to)``, or None when either row is missing."""
    if row not in timings or to not in timings:
        return None
    return timings[row].median / timings[to].median
