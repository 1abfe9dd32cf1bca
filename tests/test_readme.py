"""The README's Python snippets run as pasted, in order, in a fresh folder.

Every ```python block of README.md is a test, run in one shared namespace (as a reader pastes them
one after the other into one session) with a new empty folder as the working directory. A block
that imports a package this environment lacks (an optional extra: scikit-learn, dask, ...) is
skipped, as is a later block that needs a name only a skipped block defines. New blocks are picked
up by themselves.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of every ```python block of ``text``."""
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in _FENCE.finditer(text)]


BLOCKS = python_blocks(README.read_text(encoding="utf-8")) if README.is_file() else []


def missing_import(code: str) -> str | None:
    """The first top-level package that ``code`` imports and this environment lacks."""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if importlib.util.find_spec(top) is None:
                return top
    return None


class Session:
    """The reader's session: one namespace, one working folder, the blocks run so far."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.namespace: dict = {"__name__": "__main__"}
        self.ran = 0
        self.skipped: dict[int, str] = {}

    def run_through(self, index: int) -> None:
        """Run blocks ``ran .. index`` (so one block can be selected alone)."""
        while self.ran <= index:
            i, self.ran = self.ran, self.ran + 1
            line, code = BLOCKS[i]
            missing = missing_import(code)
            if missing is not None:
                self.skipped[i] = f"block at README.md line {line} needs {missing!r}"
                continue
            try:
                exec(compile(code, f"README.md:{line}", "exec"), self.namespace)
            except NameError as exc:
                if not self.skipped:
                    raise
                self.skipped[i] = f"{exc}, defined in a skipped block ({self.skipped})"


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Session:
    return Session(tmp_path_factory.mktemp("fresh_folder"))


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"line{line}" for line, _ in BLOCKS])
def test_readme_block_runs_as_pasted(index, session, monkeypatch):
    monkeypatch.chdir(session.folder)
    session.run_through(index)
    if index in session.skipped:
        pytest.skip(session.skipped[index])


def test_the_harness_finds_blocks_and_missing_packages():
    text = "x\n```python\na = 1\n```\n```bash\nls\n```\n```python\nimport no_such_pkg_xyz\n```\n"
    assert python_blocks(text) == [(3, "a = 1\n"), (9, "import no_such_pkg_xyz\n")]
    assert missing_import("import numpy\nfrom no_such_pkg_xyz.sub import f") == "no_such_pkg_xyz"
    assert missing_import("from . import x\nimport os") is None
