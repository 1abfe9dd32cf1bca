"""Write the ``softmax-xp`` command's help, taken from its argparse parser, into a page.

The CLI reference page includes the file this writes, so the documented commands and flags are
always the parser's own. It runs as a Sphinx extension (at ``builder-inited``) and as a script::

    python docs/_ext/clihelp.py  # writes docs/_generated/cli_help.rst

Only the standard library and :func:`softmax_xp.cli.build_parser` are needed, so the tests can
regenerate the page without Sphinx.
"""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
TARGET = DOCS / "_generated" / "cli_help.rst"
WIDTH = "100"  # argparse wraps at $COLUMNS; fixed so the page does not depend on the terminal


@contextmanager
def _plain_terminal():
    """A fixed width and no colour (Python 3.14's argparse colours its help otherwise)."""
    saved = {key: os.environ.get(key) for key in ("COLUMNS", "NO_COLOR", "PYTHON_COLORS")}
    os.environ.update(COLUMNS=WIDTH, NO_COLOR="1", PYTHON_COLORS="0")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands, name -> parser, in the order they were added."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def help_texts() -> list[tuple[str, str]]:
    """``(command line, help text)`` for ``softmax-xp`` and each of its subcommands."""
    from softmax_xp.cli import build_parser

    with _plain_terminal():
        parser = build_parser()
        texts = [("softmax-xp", parser.format_help())]
        for name, sub in subcommands(parser).items():
            texts.append((f"softmax-xp {name}", sub.format_help()))
    return texts


def _literal(text: str) -> str:
    return "\n".join(f"   {line}".rstrip() for line in text.rstrip("\n").splitlines())


def render() -> str:
    """The reStructuredText included by ``docs/guide/cli.rst``."""
    parts = [
        ".. This file is generated from softmax_xp.cli.build_parser() by docs/_ext/clihelp.py.",
        "   Do not edit it: change the parser.",
        "",
    ]
    for command, text in help_texts():
        parts += [
            f"``{command} --help``",
            "-" * (len(command) + 12),
            "",
            ".. code-block:: text",
            "",
            _literal(text),
            "",
        ]
    return "\n".join(parts)


def write(target: Path = TARGET) -> Path:
    """Write :func:`render`'s page to ``target`` (only when it changed, so Sphinx's cache stays)."""
    text = render()
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return target


def _on_builder_inited(app) -> None:
    write()


def setup(app) -> dict:
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    print(write())
