"""The README's Python snippets run as pasted, in order, in a fresh folder.

Every ```python block of README.md is a test, run in one shared namespace (as a reader pastes them
one after the other into one session) with a new empty folder as the working directory. A block
that imports a package this environment lacks (an optional extra: scikit-learn, dask, ...) is
skipped, as is a later block that needs a name only a skipped block defines. New blocks are picked
up by themselves.

A block with an ``if __name__ == "__main__":`` guard is a script, as the README says to run it: it
is saved as a file in that folder and run with ``python file.py`` in a new process (Dask's
LocalCluster starts worker processes that import the script again, which only works from a file).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_MAIN_GUARD = re.compile(r"""^if __name__ == ["']__main__["']:""", re.MULTILINE)
SCRIPT_TIMEOUT = 600  # seconds; the Dask script takes about 20 s on 2 busy cores


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


def is_script(code: str) -> bool:
    """Whether ``code`` is meant to run as a file: it has an ``if __name__ == "__main__":`` guard."""
    return _MAIN_GUARD.search(code) is not None


def run_script(code: str, line: int, folder: Path) -> None:
    """Save ``code`` as a file in ``folder`` and run it there with this Python; fail with its
    output when it exits with an error."""
    script = folder / f"readme_line{line}.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(README.parent)}
    result = subprocess.run(
        [sys.executable, script.name],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"README.md line {line}, run as {script.name}, exited with {result.returncode}:\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )


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
            if is_script(code):
                run_script(code, line, self.folder)
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
    assert is_script('import os\n\nif __name__ == "__main__":\n    print(1)\n')
    assert not is_script("x = 1  # if __name__ == '__main__': in a comment\n")


def test_the_dask_block_is_a_script():
    """Dask's LocalCluster needs the guard (without it: RuntimeError: Nanny failed to start)."""
    dask_blocks = [code for _, code in BLOCKS if "LocalCluster" in code]
    assert dask_blocks, "the README has no Dask example"
    assert all(is_script(code) for code in dask_blocks)


def test_a_script_block_runs_as_a_file(tmp_path):
    code = 'import sys\n\nif __name__ == "__main__":\n    print(sys.argv[0])\n'
    run_script(code, 7, tmp_path)
    assert (tmp_path / "readme_line7.py").read_text() == code
    with pytest.raises(AssertionError, match="exited with 3"):
        run_script('if __name__ == "__main__":\n    raise SystemExit(3)\n', 8, tmp_path)


def test_the_readme_documents_every_classifier_parameter():
    """Each SoftmaxClassifier parameter has a row in the README's table, with its default."""
    pytest.importorskip("sklearn")
    from softmax_xp import SoftmaxClassifier

    documented = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = line.split(" | ")
        if line.startswith("| `") and len(cells) >= 3:
            names = re.findall(r"`(\w+)`", cells[0])
            defaults = [ast.literal_eval(v) for v in re.findall(r"`([^`]*)`", cells[1])]
            documented.update(zip(names, defaults, strict=True))
    assert documented == SoftmaxClassifier().get_params()
