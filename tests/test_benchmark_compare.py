"""The benchmarks' --compare option and the floor taken as the faster of its thread counts."""

from __future__ import annotations

import json

import pytest

from benchmarks import _compare
from benchmarks._report import Section
from benchmarks._timing import Timing
from benchmarks.epoch import best_floor, floor_row


def _section(title, rows):
    return Section(
        title, ["row"], data={"rows": {k: {"median_s": v, "times_s": [v]} for k, v in rows.items()}}
    )


def test_compare_prints_each_rows_ratio_to_a_saved_record(tmp_path):
    old = [_section("1. Epoch time, MNIST 50,000", {"a": 0.1, "b": 0.2, "gone": 1.0})]
    path = tmp_path / "ref.json"
    path.write_text(json.dumps({"machine": {"cpu": "X"}, "sections": _compare._sections_json(old)}))
    record = _compare.load(path)
    new = [_section("1. Epoch time, MNIST 10,000", {"a": 0.05, "b": 0.3, "new": 1.0})]
    out = _compare.compare(path, record, new)
    assert [row[0] for row in out.rows] == ["1 / rows / a", "1 / rows / b"]
    assert [row[-1] for row in out.rows] == ["0.50x", "1.50x"]
    assert "1 / rows / gone" in out.notes[-1] and "1 / rows / new" in out.notes[-1]


def test_compare_refuses_a_file_that_is_not_a_record(tmp_path):
    path = tmp_path / "ref.json"
    path.write_text("[1, 2]")
    with pytest.raises(SystemExit, match="not a benchmark record"):
        _compare.load(path)


def test_the_floor_is_the_faster_of_its_thread_counts(monkeypatch):
    import benchmarks.epoch as epoch

    monkeypatch.setattr(epoch, "floor_counts", lambda: [1, 2])
    one, two = floor_row("float32", 1), floor_row("float32", 2)
    timings = {one: Timing(one, [3.0]), two: Timing(two, [2.0]), "ours": Timing("ours", [2.2])}
    assert best_floor(timings, "float32") == two
    assert list(timings) == [one, two, "floor numpy float32", "ours"]
    assert timings["floor numpy float32"].median == 2.0
