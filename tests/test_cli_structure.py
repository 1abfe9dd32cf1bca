"""The CLI package stays made of small functions, one job each."""

from __future__ import annotations

import ast
from pathlib import Path

import softmax_xp.cli

MAX_LINES = 60
CLI = Path(softmax_xp.cli.__file__).parent


def _long_functions(folder: Path) -> list[str]:
    """``file:line name (n lines)`` for each function of ``folder`` longer than MAX_LINES."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    found.append(f"{path.name}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_of_the_cli_is_over_60_lines():
    assert _long_functions(CLI) == []


def test_the_check_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n")
    assert _long_functions(tmp_path) == [f"long.py:1 long ({MAX_LINES + 1} lines)"]


def test_the_documented_names_are_importable():
    from softmax_xp.cli import build_parser, main

    assert callable(main) and build_parser().prog == "softmax-xp"
