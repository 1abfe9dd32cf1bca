"""What every part of the CLI shares: its numbers, its one-line error, its status lines."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import BinaryIO

__all__ = [
    "CHAPTER_TEST_ACCURACY",
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "INPUT_DIM",
    "NUM_CLASSES",
    "VALIDATION_SIZE",
    "CLIError",
    "say",
    "text_writer",
]

CHAPTER_TEST_ACCURACY = 0.9227
NUM_CLASSES = 10
INPUT_DIM = 784
VALIDATION_SIZE = 10_000  # the last images of the training set, as in the chapter
EXIT_USAGE = 2
# Stopped by a signal: 128 + its number, as a shell reports it (Ctrl-C 130, SIGTERM 143, SIGHUP 129).
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a writer whose reader went away


class CLIError(Exception):
    """A problem to report in one line, with exit code 2."""


def say(message: str) -> None:
    """A status line on stderr; lost, not raised, when stderr is gone (a closed terminal sends
    SIGHUP, and the save that follows must not fail on a message)."""
    with contextlib.suppress(OSError, ValueError):
        print(message, file=sys.stderr, flush=True)


def text_writer(text: str) -> Callable[[BinaryIO], object]:
    """A writer of ``text`` for :func:`softmax_xp._atomic.write_atomic` and ``AtomicBatch``."""
    # surrogateescape: a path of undecodable bytes (named in report.md) is written as those bytes
    return lambda f: f.write(text.encode("utf-8", "surrogateescape"))
