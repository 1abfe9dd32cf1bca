"""Markdown tables for the terminal and the README, and the JSON record under results/."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Section:
    """One section of the report: a table, its notes and the raw numbers behind it."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.rows:
            lines.append("| " + " | ".join(self.columns) + " |")
            lines.append("|" + "|".join(" --- " for _ in self.columns) + "|")
            lines += ["| " + " | ".join(row) + " |" for row in self.rows]
            lines.append("")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def skipped_without(self, module: str, package: str) -> bool:
        """True, with a note saying so, when ``module`` (of ``package``) cannot be imported:
        the section then returns as it is."""
        if importlib.util.find_spec(module) is not None:
            return False
        self.notes.append(f"skipped: {package} is not installed (pip install {package})")
        return True


def ms(seconds: float | None) -> str:
    """Seconds as milliseconds with three significant figures; '-' for missing."""
    if seconds is None:
        return "-"
    value = seconds * 1e3
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def x(value: float | None) -> str:
    """A ratio such as ``1.07x``; '-' for missing."""
    return "-" if value is None else f"{value:.2f}x"


def mb(n_bytes: float | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 2**20:.1f}"


def render(machine: dict[str, Any], sections: list[Section]) -> str:
    """The whole report as Markdown: the machine, then every section."""
    blas = "; ".join(
        ", ".join(f"{k}={v}" for k, v in lib.items() if v is not None) for lib in machine["blas"]
    )
    head = [
        f"Machine: {machine['cpu']} ({machine.get('cpu_vendor', '?')}), "
        f"{machine['cores']['usable']} usable cores, GPU: {machine['gpu'] or 'none'}",
        f"BLAS: {blas}",
    ]
    if machine.get("torch_cpu"):
        torch_cpu = machine["torch_cpu"]
        head.append(
            f"PyTorch CPU: BLAS {torch_cpu.get('blas')} ({torch_cpu.get('blas_version')}), "
            f"{torch_cpu['num_threads']} threads"
        )
    if machine.get("layouts"):
        head.append(
            "SGD product layouts: " + ", ".join(f"{k} {v}" for k, v in machine["layouts"].items())
        )
    head += [
        "Versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
        f"Date: {machine['date']}; command: `{machine['command']}`",
    ]
    if machine["env"]:
        head.append("Environment: " + ", ".join(f"{k}={v}" for k, v in machine["env"].items()))
    return "\n".join([*head, "", *(s.markdown() for s in sections)])


def write_json(path: Path, machine: dict[str, Any], sections: list[Section]) -> None:
    """Write the machine and every section's table and raw numbers to ``path``."""
    payload = {
        "machine": machine,
        "sections": {
            s.title: {"columns": s.columns, "rows": s.rows, "notes": s.notes, **s.data}
            for s in sections
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
