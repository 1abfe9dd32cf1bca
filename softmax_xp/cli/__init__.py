"""The ``softmax-xp`` command: the chapter's MNIST experiment, evaluation, prediction, info.

softmax-xp train [--backend cupy] [--epochs 100] [--fast] [--out runs/mnist] ...
softmax-xp evaluate --model runs/mnist/model.npz
softmax-xp predict --model runs/mnist/model.npz digit.png more.npy
softmax-xp info
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from .._backend import BackendFallbackWarning, BackendUnavailableError
from ..datasets import DatasetError
from .commands import cmd_evaluate, cmd_export, cmd_info, cmd_predict
from .common import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE, CLIError, say
from .parser import build_parser, unknown_arguments
from .train import cmd_train
from .words import cli_words

__all__ = ["EXIT_BROKEN_PIPE", "EXIT_INTERRUPTED", "CLIError", "build_parser", "cli_words", "main"]

COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "info": cmd_info,
    "export": cmd_export,
}
_ONE_LINE_ERRORS = (
    CLIError,
    ValueError,
    OSError,
    DatasetError,
    BackendUnavailableError,
    MemoryError,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``softmax-xp`` and ``python -m softmax_xp``; returns the exit code."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        error = unknown_arguments(parser, args.command, extras)
        parser.exit(EXIT_USAGE, f"softmax-xp {args.command}: error: {error}\n")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", BackendFallbackWarning)
            warnings.showwarning = _show_warning
            return COMMANDS[args.command](args)
    except BrokenPipeError:  # the reader of our output went away (softmax-xp ... | head): stop
        with contextlib.suppress(OSError):  # and let nothing more be flushed into the pipe
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except _ONE_LINE_ERRORS as exc:
        parser.exit(EXIT_USAGE, f"softmax-xp {args.command}: error: {cli_words(str(exc))}\n")
    except KeyboardInterrupt:
        say(f"softmax-xp {args.command}: interrupted")
        return EXIT_INTERRUPTED


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    say(f"warning: {cli_words(str(message))}")


if __name__ == "__main__":
    sys.exit(main())
