"""Library messages in the words of the command line: flags instead of Python arguments."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["cli_words"]

# Python argument spellings in library messages, and the flags a CLI user types instead.
_PYTHON_WORDS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"\bdownload=True\b"), "--download"),
    (re.compile(r"\bfallback=False\b"), "--no-fallback"),
    (re.compile(r"\(data_dir\)"), "(--data-dir)"),
    (
        re.compile(r"\b([Uu])se device=None\b"),
        lambda m: f"{'L' if m[1] == 'U' else 'l'}eave out --device",
    ),
    (re.compile(r"\bdevice=None\b"), "no --device"),
    (re.compile(r"\bbackend=(['\"]?)(\w+)\1"), lambda m: f"--backend {m[2]}"),
    (
        re.compile(
            r"\b(lr|reg|momentum|lr_decay|batch_size|epochs|seed|dtype|device)="
            r"(['\"]?)([^\s,;)'\"]*[^\s,;)'\".])\2"
        ),
        lambda m: f"--{m[1].replace('_', '-')} {m[3]}",
    ),
    (
        re.compile(r"\b(lr_decay|lr|reg|momentum|batch_size|epochs|seed|dtype) must\b"),
        lambda m: f"--{m[1].replace('_', '-')} must",
    ),
]


def cli_words(message: str) -> str:
    """``message`` with Python arguments (``download=True``, ``lr=0.01``) spelled as the CLI flags
    that set them (``--download``, ``--lr 0.01``)."""
    for pattern, replacement in _PYTHON_WORDS:
        message = pattern.sub(replacement, message)
    return message
