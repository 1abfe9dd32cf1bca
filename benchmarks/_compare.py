"""``--compare REF.json``: every timed row of this run against the same row of a saved record
(``benchmarks/results/*.json``, written by ``--out`` or by default), as a ratio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._report import Section, ms, x


def medians(sections: dict[str, Any]) -> dict[str, float]:
    """``{"<section number> / <path> / <row>": median seconds}`` of a record's sections (the
    JSON form: title -> {columns, rows, notes, raw data}); every ``{"median_s": ...}`` found
    in a section's raw data is a row."""
    out: dict[str, float] = {}

    def walk(key: str, value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("median_s"), int | float):
                out[key] = float(value["median_s"])
                return
            for name, inner in value.items():
                walk(f"{key} / {name}", inner)

    for title, section in sections.items():
        number = title.split(".", 1)[0].strip()
        for name, value in section.items():
            if name not in ("columns", "notes") and not isinstance(value, list):
                walk(f"{number} / {name}", value)  # "rows": the table's (a list) or raw data
    return out


def _sections_json(sections: list[Section]) -> dict[str, Any]:
    return {
        s.title: {"columns": s.columns, "rows": s.rows, "notes": s.notes, **s.data}
        for s in sections
    }


def load(reference: Path) -> dict[str, Any]:
    """A saved record, read before the run (which may overwrite the same file)."""
    try:
        record = json.loads(reference.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--compare {reference}: cannot read a benchmark record: {exc}") from None
    if not isinstance(record, dict) or not isinstance(record.get("sections"), dict):
        raise SystemExit(f"--compare {reference}: not a benchmark record (no 'sections')")
    return record


def compare(reference: Path, record: dict[str, Any], sections: list[Section]) -> Section:
    """A section of ``this run / reference`` per row both have (lower is faster)."""
    theirs, ours = medians(record["sections"]), medians(_sections_json(sections))
    machine = record.get("machine", {})
    section = Section(
        f"Compared with {reference.name}",
        ["row", "this run ms", "reference ms", "this run / reference"],
    )
    for key in ours:
        if key in theirs:
            section.rows.append([key, ms(ours[key]), ms(theirs[key]), x(ours[key] / theirs[key])])
    only = sorted(set(ours) ^ set(theirs))
    section.notes += [
        f"reference: {reference}, {machine.get('date', '?')}, commit "
        f"{machine.get('git_commit', '?')}, on {machine.get('cpu', '?')} "
        f"({machine.get('cpu_vendor', '?')}); compare runs of one machine only",
    ]
    if only:
        section.notes.append(f"rows in one record only (not compared): {', '.join(only)}")
    section.data = {"compared_with": str(reference)}
    return section
