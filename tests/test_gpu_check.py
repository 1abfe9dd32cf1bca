"""The one-shot GPU check's pieces that run without a GPU: the JUnit counts, the summary record,
and ``python -m benchmarks --gpu`` failing (not skipping) where a GPU is required."""

from __future__ import annotations

import json
import types

import pytest

from benchmarks import __main__ as bench_main
from benchmarks import gpu, gpu_check

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="{e}" failures="{f}" skipped="{s}" tests="{t}">
</testsuite></testsuites>"""


def test_junit_counts(tmp_path):
    (tmp_path / "pytest.xml").write_text(JUNIT.format(e=2, f=1, s=4, t=20))
    counts = gpu_check.test_counts(tmp_path / "pytest.xml")
    assert counts == {"passed": 13, "failed": 3, "errors": 2, "skipped": 4}
    assert gpu_check.test_counts(tmp_path / "missing.xml") is None


def test_summary_record(tmp_path):
    (tmp_path / "pytest.xml").write_text(JUNIT.format(e=0, f=0, s=1, t=5))
    bench = {
        "machine": {"gpu": "NVIDIA H100"},
        "sections": {"4b. GPU targets": {"columns": ["a"], "rows": [["1"]], "notes": []}},
    }
    (tmp_path / "gpu-benchmark.json").write_text(json.dumps(bench))
    assert gpu_check.main(["summary", str(tmp_path), "tests=0", "benchmark=124"]) == 0
    record = json.loads((tmp_path / "gpu-latest.json").read_text())
    assert record["tests"] == {"passed": 4, "failed": 0, "errors": 0, "skipped": 1}
    assert record["exit_status"] == {"tests": 0, "benchmark": 124}
    assert record["benchmark"]["4b. GPU targets"]["rows"] == [["1"]]
    assert "device" in record and "cupy_version" in record


@pytest.mark.parametrize("require", ["1", ""])
def test_gpu_benchmark_fails_loudly_where_a_gpu_is_required(monkeypatch, capsys, require):
    monkeypatch.setattr(gpu, "problem", lambda backend="cupy": "CuPy is not installed")
    monkeypatch.setenv("SOFTMAX_XP_REQUIRE_GPU", require)
    monkeypatch.setattr(gpu.shutil, "which", lambda name: None)  # no nvidia-smi either
    monkeypatch.setattr(bench_main, "mnist", lambda: None)
    monkeypatch.setattr(bench_main, "write_json", lambda *args: None)
    monkeypatch.setattr(bench_main._machine, "describe", dict)
    monkeypatch.setattr(bench_main, "render", lambda machine, sections: sections[0].markdown())
    status = bench_main.main(["--gpu"])
    captured = capsys.readouterr()
    if require:
        assert status == 3
        assert "GPU benchmark FAILED: SOFTMAX_XP_REQUIRE_GPU=1, but CuPy cannot run" in (
            captured.err
        )
    else:
        assert status == 0 and "skipped: CuPy is not installed" in captured.out


def test_an_interrupted_benchmark_keeps_the_sections_it_finished(monkeypatch, tmp_path, capsys):
    """gpu.sh stops a benchmark that runs out of time with SIGINT: the GPU rows measured before
    the targets section was cut short are still written."""
    from benchmarks._report import Section

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(gpu, "problem", lambda backend="cupy": None)
    monkeypatch.setattr(gpu, "run", lambda *a, **k: Section("4. GPU", ["row"], rows=[["kept"]]))
    monkeypatch.setattr(gpu, "targets", interrupted)
    monkeypatch.setattr(bench_main, "mnist", lambda: types.SimpleNamespace(head=lambda n: None))
    monkeypatch.setattr(bench_main._machine, "describe", dict)
    monkeypatch.setattr(bench_main, "render", lambda machine, sections: "")
    out = tmp_path / "gpu-benchmark.json"
    assert bench_main.main(["--gpu", "--quick", "--out", str(out)]) == 130
    sections = json.loads(out.read_text())["sections"]
    assert sections["4. GPU"]["rows"] == [["kept"]]
    assert sections["Interrupted in section 4b"]["notes"] == ["sections 4b did not finish"]
