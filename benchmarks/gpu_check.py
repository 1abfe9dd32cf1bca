"""Helpers of ``benchmarks/gpu.sh``: the CuPy probe and the summary record.

``python -m benchmarks.gpu_check probe`` prints what this machine has and exits 3, with the reason,
when CuPy cannot run. ``python -m benchmarks.gpu_check summary OUT`` writes ``OUT/gpu-latest.json``
from the run's files in ``OUT``: the GPU, CuPy's version, the test counts (``pytest.xml``) and the
benchmark's rows (``gpu-benchmark.json``).
"""

from __future__ import annotations

import contextlib
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def probe() -> int:
    """Print the backends and devices; 0 when CuPy can run here, else 3 with the reason."""
    from softmax_xp._backend import _cupy_problem, backend_info

    print(json.dumps(backend_info(), indent=1, default=str))
    why = _cupy_problem()
    if why is not None:
        print(f"GPU CHECK FAILED at the probe: CuPy cannot run here: {why}", file=sys.stderr)
        return 3
    print(f"CuPy probe passed on {gpu_name()}")
    return 0


def gpu_name() -> str | None:
    """The name of CuPy's current device, or None."""
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        return props["name"].decode()
    except Exception:
        return None


def test_counts(junit: Path) -> dict[str, int] | None:
    """``{passed, failed, skipped, errors}`` from a JUnit XML report (``failed`` counts the
    errors too), or None without one."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = {key: 0 for key in ("tests", "failures", "errors", "skipped")}
    for suite in suites:
        for key in total:
            total[key] += int(suite.get(key, 0))
    failed = total["failures"] + total["errors"]  # a fixture that fails is an error in JUnit
    return {
        "passed": total["tests"] - failed - total["skipped"],
        "failed": failed,
        "errors": total["errors"],
        "skipped": total["skipped"],
    }


def summary(out: Path, statuses: dict[str, int] | None = None) -> dict[str, Any]:
    """The record of a GPU check whose files are in ``out``."""
    bench: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        bench = json.loads((out / "gpu-benchmark.json").read_text(encoding="utf-8"))
    try:
        import cupy

        cupy_version = cupy.__version__
    except Exception:
        cupy_version = None
    machine = bench.get("machine", {})
    return {
        "device": gpu_name() or machine.get("gpu"),
        "cupy_version": cupy_version,
        "tests": test_counts(out / "pytest.xml"),
        "exit_status": statuses or {},
        "benchmark": {
            title: {"columns": s.get("columns"), "rows": s.get("rows"), "notes": s.get("notes")}
            for title, s in bench.get("sections", {}).items()
        },
        "machine": machine,
        "benchmark_data": bench.get("sections", {}),
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["probe"]:
        return probe()
    if argv[:1] == ["summary"] and len(argv) >= 2:
        out = Path(argv[1])
        statuses = dict(
            (key, int(value)) for key, _, value in (item.partition("=") for item in argv[2:])
        )
        record = summary(out, statuses)
        (out / "gpu-latest.json").write_text(
            json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8"
        )
        print(
            f"wrote {out / 'gpu-latest.json'}: device {record['device']}, tests {record['tests']}"
        )
        return 0
    print("usage: python -m benchmarks.gpu_check probe | summary OUT [name=status ...]")
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
