"""The documentation keeps up with the code, checked without Sphinx (standard library only).

- every public name has an entry in the API reference (an autosummary listing in docs/api.rst);
- every public function and class has an ``Examples`` section, and those examples run;
- the command-line page is the help that ``softmax_xp.cli.build_parser()`` prints, command by
  command, and a page left by an earlier build is not stale.
"""

from __future__ import annotations

import argparse
import doctest
import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pytest

import softmax_xp

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API = DOCS / "api.rst"

# The namespaces whose public names (their __all__) the reference must list.
DOCUMENTED = (
    "softmax_xp",
    "softmax_xp.datasets",
    "softmax_xp.metrics",
    "softmax_xp.plots",
    "softmax_xp.sklearn",
    "softmax_xp.export",
)
# Modules whose docstring examples are maintained with the docs (they must all have Examples).
OWNED = (
    "softmax_xp.functional",
    "softmax_xp.metrics",
    "softmax_xp.plots",
    "softmax_xp.datasets.idx",
    "softmax_xp.datasets.mnist",
    "softmax_xp.export",
)
# The libraries the examples of softmax_xp.export run (the [export] extra, nox -s export).
EXPORT_LIBRARIES = ("onnx", "onnxruntime", "skl2onnx", "skops", "sklearn")
# The model and the estimator: their Examples sections are written with the core.
CORE = ("softmax_xp.model", "softmax_xp.sklearn")
# Where the core's classes are defined, for running their examples.
CORE_SOURCES = (
    "softmax_xp._fitting",
    "softmax_xp._sklearn_predict",
    "softmax_xp._predictions",
    "softmax_xp._training.history",
    "softmax_xp._training.callbacks",
)
DOCTEST_FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
_EXAMPLES = re.compile(r"^\s*Examples\n\s*-{8,}\n(.*?>>> )", re.MULTILINE | re.DOTALL)


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _public(module_name: str) -> list[str]:
    if module_name == "softmax_xp.sklearn" and not _has_module("sklearn"):
        pytest.skip("scikit-learn is not installed")
    return list(importlib.import_module(module_name).__all__)


# --------------------------------------------------------------------------- the reference


def reference_entries(text: str) -> set[str]:
    """Full names that ``text`` (reStructuredText) lists in autosummary tables or describes
    with ``.. data::`` / ``.. function::`` / ``.. class::``, under the current module."""
    entries: set[str] = set()
    module = ""
    in_table = False
    for line in text.splitlines():
        directive = re.match(r"^\.\. (\w+(?::\w+)?)::\s*(\S*)", line)
        if directive:
            kind, argument = directive.groups()
            in_table = kind == "autosummary"
            if kind in ("module", "currentmodule", "py:module", "py:currentmodule"):
                module = argument
            elif kind in ("data", "function", "class", "exception", "py:data"):
                entries.add(f"{module}.{argument}" if module else argument)
            continue
        if not in_table:
            continue
        if line.strip() == "" or line.lstrip().startswith(":"):
            continue
        if not line.startswith(" "):
            in_table = False
            continue
        name = line.strip().lstrip("~")
        entries.add(name if name.startswith(f"{module}.") else f"{module}.{name}")
    return entries


def _listed(module_name: str, name: str, entries: set[str]) -> bool:
    """Listed under its own module, or, when it is the same object as a top-level name, there."""
    if f"{module_name}.{name}" in entries:
        return True
    obj = getattr(importlib.import_module(module_name), name)
    top = getattr(softmax_xp, name, None)
    return f"softmax_xp.{name}" in entries and top is obj


@pytest.mark.parametrize("module_name", DOCUMENTED)
def test_every_public_name_has_a_reference_entry(module_name):
    entries = reference_entries(API.read_text(encoding="utf-8"))
    missing = [name for name in _public(module_name) if not _listed(module_name, name, entries)]
    assert not missing, (
        f"{module_name} names missing from docs/api.rst (add them to an autosummary table): "
        f"{missing}"
    )


def test_the_reference_parser_reads_tables_and_modules():
    text = (
        ".. module:: pkg\n\n.. autosummary::\n   :toctree: generated\n\n   f\n   ~pkg.g\n\n"
        "Text.\n\n.. data:: v\n\n.. currentmodule:: pkg.sub\n\n.. autosummary::\n\n   h\n"
    )
    assert reference_entries(text) == {"pkg.f", "pkg.g", "pkg.v", "pkg.sub.h"}


def test_every_reference_entry_exists():
    """A listed name that no longer exists would be a broken page."""
    for entry in sorted(reference_entries(API.read_text(encoding="utf-8"))):
        module_name, _, name = entry.rpartition(".")
        if module_name == "softmax_xp.sklearn" and not _has_module("sklearn"):
            continue
        if name == "SoftmaxClassifier" and not _has_module("sklearn"):
            continue
        assert hasattr(importlib.import_module(module_name), name), f"docs/api.rst: {entry}"


# --------------------------------------------------------------------------- examples


def _documented_objects(module_name: str) -> list[tuple[str, object]]:
    """``(qualified name, object)`` of the module's public functions and classes defined in
    it, and of those classes' own public methods (not properties, not scikit-learn's generated
    ``set_*_request`` helpers, not exceptions or warnings, whose docstrings say when they are
    raised)."""
    module = importlib.import_module(module_name)
    found = []
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if not getattr(obj, "__module__", "").startswith("softmax_xp"):
            continue
        if inspect.isfunction(obj):
            found.append((f"{module_name}.{name}", obj))
        elif inspect.isclass(obj) and not issubclass(obj, BaseException | Warning):
            found.append((f"{module_name}.{name}", obj))
            seen = set()
            for cls in obj.__mro__:  # methods inherited from our own classes count too
                if not cls.__module__.startswith("softmax_xp"):
                    continue
                for attr, member in vars(cls).items():
                    if attr in seen or attr.startswith("_"):
                        continue
                    seen.add(attr)
                    if re.fullmatch(r"set_\w+_request", attr):
                        continue
                    function = (
                        member.__func__
                        if isinstance(member, classmethod | staticmethod)
                        else member
                    )
                    if inspect.isfunction(function):
                        found.append((f"{module_name}.{name}.{attr}", function))
    return found


def _without_examples(module_names) -> list[str]:
    missing = []
    for module_name in module_names:
        if module_name == "softmax_xp.sklearn" and not _has_module("sklearn"):
            continue
        for qualname, obj in _documented_objects(module_name):
            if not _EXAMPLES.search(inspect.getdoc(obj) or ""):
                missing.append(qualname)
    return missing


def test_backend_functions_have_examples():
    for name in ("backend_info", "resolve_backend", "to_numpy"):
        assert _EXAMPLES.search(getattr(softmax_xp, name).__doc__), name


def test_every_public_function_has_examples():
    missing = _without_examples(OWNED)
    assert not missing, f"add an Examples section (numpydoc, with >>> lines) to: {missing}"


def test_the_model_and_the_estimator_have_examples():
    missing = _without_examples(CORE)
    assert not missing, (
        "SoftmaxXP, History and SoftmaxClassifier (softmax_xp/model.py, softmax_xp/sklearn.py) "
        f"need an Examples section (numpydoc, with >>> lines) in: {missing}"
    )


def test_the_examples_check_sees_sections():
    assert _EXAMPLES.search("Sum.\n\nExamples\n--------\n>>> 1 + 1\n2\n")
    assert not _EXAMPLES.search("Sum.\n\nExamples\n--------\nsee the tutorial\n")
    assert not _EXAMPLES.search("Sum. Examples: >>> 1 + 1\n")


@pytest.mark.parametrize("module_name", [*OWNED, "softmax_xp._backend", *CORE, *CORE_SOURCES])
def test_docstring_examples_run(module_name, monkeypatch, tmp_path):
    if module_name == "softmax_xp.plots":
        pytest.importorskip("matplotlib").use("Agg")
        import matplotlib.pyplot as plt

        plt.close("all")  # matplotlib warns (a RuntimeWarning, an error here) past 20 figures
        monkeypatch.setattr("softmax_xp.plots.DPI", 40)  # smaller PNGs, same code
    if module_name == "softmax_xp.sklearn":
        pytest.importorskip("sklearn")
    if module_name == "softmax_xp._backend":
        pytest.importorskip("array_api_strict")
    if module_name == "softmax_xp.export":
        for library in EXPORT_LIBRARIES:
            pytest.importorskip(library)
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    for test in finder.find(module, module_name):
        runner.run(test, out=lambda text: sys.stdout.write(text))
    result = runner.summarize(verbose=False)
    if module_name == "softmax_xp.plots":
        plt.close("all")
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed (above)"


# --------------------------------------------------------------------------- the CLI page


def _clihelp():
    spec = importlib.util.spec_from_file_location("clihelp", DOCS / "_ext" / "clihelp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parser_helps(monkeypatch) -> dict[str, str]:
    """Each command's help, straight from build_parser(), at the page's width, without colour."""
    from softmax_xp.cli import build_parser

    monkeypatch.setenv("COLUMNS", _clihelp().WIDTH)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("PYTHON_COLORS", "0")
    parser = build_parser()
    helps = {"softmax-xp": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                helps[f"softmax-xp {name}"] = sub.format_help()
    return helps


def test_the_cli_page_is_the_parsers_help(monkeypatch):
    page = _clihelp().render()
    helps = _parser_helps(monkeypatch)
    assert set(helps) >= {"softmax-xp train", "softmax-xp evaluate", "softmax-xp predict"}
    for command, text in helps.items():
        assert f"``{command} --help``" in page, f"the CLI page has no section for {command}"
        block = "\n".join(f"   {line}".rstrip() for line in text.rstrip("\n").splitlines())
        assert block in page, f"the CLI page's help of {command!r} differs from the parser's"


def test_the_cli_page_names_every_flag(monkeypatch):
    from softmax_xp.cli import build_parser

    page = _clihelp().render()
    for command, sub in _clihelp().subcommands(build_parser()).items():
        for action in sub._actions:
            for option in action.option_strings:
                assert option in page, f"softmax-xp {command} {option} is not on the CLI page"


def test_the_cli_guide_includes_the_generated_page():
    guide = (DOCS / "guide" / "cli.rst").read_text(encoding="utf-8")
    assert ".. include:: ../_generated/cli_help.rst" in guide


def test_a_built_cli_page_is_not_stale():
    clihelp = _clihelp()
    if not clihelp.TARGET.is_file():
        pytest.skip("the docs have not been built here (nox -s docs writes the page)")
    assert clihelp.TARGET.read_text(encoding="utf-8") == clihelp.render(), (
        f"{clihelp.TARGET} differs from build_parser()'s help: rebuild the docs (nox -s docs) "
        "or run python docs/_ext/clihelp.py"
    )
