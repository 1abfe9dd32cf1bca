"""The arguments of ``softmax-xp`` and their types."""

from __future__ import annotations

import argparse
import difflib
import os
from pathlib import Path

from .. import __version__, presets
from .._backend import BACKENDS
from ..export import FORMATS  # cheap: onnx itself is imported only when exporting

__all__ = ["build_parser", "unknown_arguments"]

TRAIN_DESCRIPTION = """\
Train the chapter's softmax classifier on MNIST and report on the test set.

Never lose a good model:
  --out must not hold an earlier run (model.npz, report.json, report.md, checkpoint.npz,
  run.json, figures): give --resume to continue it (with its settings: a flag that contradicts
  them is refused), --overwrite to replace it, or another --out. One run at a time may write
  into a folder: a second one is refused.
  Ctrl-C, SIGTERM and SIGHUP stop training and save the completed epochs (the report and the
  printed test accuracy say "interrupted by SIGTERM after k of N epochs"); signals during that
  save wait for it. A diverging run stops with exit 2 and keeps its last finite epoch. A run
  that completed no epoch writes nothing. Every file is written whole (temporary file, fsync,
  rename) or not at all, and the model, reports and figures replace earlier ones together.

Exit codes: 0 done, 2 error (one line), 128 + signal number when stopped by a signal
(130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""

NO_FALLBACK_HELP = "fail at once (exit 2) when --backend cannot run here, instead of using NumPy"
MODEL_HELP = "a model file written by train (e.g. runs/mnist/model.npz)"


def _positive_int(text: str) -> int:
    """A count of 1 or more (``--epochs``, ``--batch-size``, ``--limit``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (1 or more), got {text}")
    return value


def _positive_float(text: str) -> float:
    """A number above 0 (``--tol``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def _path(text: str) -> Path:
    """A path argument; an empty one (an unset shell variable) is refused rather than read as
    the current folder, and ``~`` is the home folder even where the shell left it."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a path")
    return Path(os.path.expanduser(text))


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``softmax-xp`` command (the docs' CLI page is generated from it)."""
    parser = argparse.ArgumentParser(
        prog="softmax-xp",
        description="The softmax linear classifier on MNIST, on NumPy (CPU) or CuPy (GPU).",
    )
    parser.add_argument("--version", action="version", version=f"softmax-xp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser(
        "train",
        help="train on MNIST and report on the test set",
        description=TRAIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_backend(train, device=True)
    _add_recipe(train)
    _add_run(train)
    _add_evaluate(
        commands.add_parser("evaluate", help="report a saved model on the MNIST test set")
    )
    _add_predict(commands.add_parser("predict", help="classify digit images (PNG, JPEG, .npy)"))
    info = commands.add_parser("info", help="version, backends and devices of this machine")
    info.add_argument("--json", action="store_true", help="print the same as JSON")
    _add_export(commands.add_parser("export", help="write a saved model as an ONNX graph"))
    return parser


def _add_export(export: argparse.ArgumentParser) -> None:
    export.add_argument("--model", type=_path, required=True, help=MODEL_HELP)
    export.add_argument(
        "--format", choices=FORMATS, default="onnx", help="the format to write (default: onnx)"
    )
    export.add_argument(
        "--out",
        type=_path,
        default=None,
        help="the file to write (default: the model's path with the format's suffix)",
    )
    export.add_argument(
        "--opset", type=_positive_int, default=None, help="the ONNX opset (>= 13; default 21)"
    )


def _add_backend(command: argparse.ArgumentParser, device: bool = False) -> None:
    command.add_argument("--backend", choices=BACKENDS, default="auto")
    if device:
        command.add_argument("--device", default=None, help="device id or name for the backend")
    command.add_argument("--no-fallback", action="store_true", help=NO_FALLBACK_HELP)


def _add_recipe(train: argparse.ArgumentParser) -> None:
    """train's settings of the model and its optimisation."""
    chapter = presets.CHAPTER
    train.add_argument(
        "--epochs", type=_positive_int, default=None, help=f"(default {chapter['epochs']})"
    )
    train.add_argument(
        "--batch-size", type=_positive_int, default=None, help=f"(default {chapter['batch_size']})"
    )
    train.add_argument("--lr", type=float, default=None, help=f"(default {chapter['lr']})")
    train.add_argument("--reg", type=float, default=None, help=f"(default {chapter['reg']})")
    train.add_argument("--momentum", type=float, default=None, help="(default 0)")
    train.add_argument(
        "--lr-decay",
        type=float,
        default=None,
        help="step-size factor per epoch (default 1: constant)",
    )
    train.add_argument(
        "--fast",
        action="store_true",
        help="our fastest recipe to the chapter's accuracy instead of the "
        "chapter's own; explicit flags still override it",
    )
    train.add_argument(
        "--solver",
        choices=("sgd", "lbfgs"),
        default=None,
        help="sgd: the chapter's mini-batch SGD (default); lbfgs: full-batch L-BFGS (the [lbfgs] "
        "extra) to the optimum, --epochs iterations at most (--lr, --momentum, --lr-decay and "
        "--batch-size do not apply)",
    )
    train.add_argument(
        "--tol",
        type=_positive_float,
        default=None,
        help="--solver lbfgs only: stop when no gradient entry exceeds this (default 1e-4)",
    )
    train.add_argument("--seed", type=int, default=None, help="(default 0)")
    train.add_argument(
        "--dtype", choices=("float32", "float64"), default=None, help="(default float32)"
    )


def _add_run(train: argparse.ArgumentParser) -> None:
    """train's data, output folder and run control."""
    _add_data(train, "directory with the four MNIST (or Fashion-MNIST) IDX files")
    train.add_argument(
        "--out",
        type=_path,
        default=Path("runs/mnist"),
        help="output directory (default runs/mnist); one holding an earlier run is refused "
        "unless --overwrite or --resume is given",
    )
    again = train.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint, with its settings",
    )
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out (its files are replaced only when this run saves)",
    )
    train.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        help="train on the first N training images only (quick runs)",
    )
    train.add_argument(
        "--early-stopping",
        action="store_true",
        help="stop when the validation loss has not improved for --patience epochs, and keep "
        "the best epoch's weights (give it again with --resume)",
    )
    train.add_argument(
        "--patience",
        type=_positive_int,
        default=None,
        help="--early-stopping only: epochs without improvement before stopping (default 5)",
    )
    train.add_argument("--no-plots", action="store_true", help="do not write the PNG figures")
    train.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_data(command: argparse.ArgumentParser, data_help: str) -> None:
    command.add_argument("--data-dir", type=_path, default=None, help=data_help)
    command.add_argument(
        "--download", action="store_true", help="download MNIST into the cache if it is not found"
    )


def _add_evaluate(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("--model", type=_path, required=True, help=MODEL_HELP)
    _add_backend(evaluate)
    _add_data(
        evaluate,
        "directory with the MNIST (or Fashion-MNIST) IDX files (default: the bundled MNIST)",
    )
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")


def _add_predict(predict: argparse.ArgumentParser) -> None:
    predict.add_argument("--model", type=_path, required=True, help=MODEL_HELP)
    _add_backend(predict)
    predict.add_argument(
        "files",
        nargs="+",
        type=_path,
        metavar="FILE",
        help="a picture of one digit (PNG, JPEG, ...), or a .npy of 28x28 or 784 pixels "
        "(or a stack of them); an image with no ink is reported as blank, not predicted, and a "
        "file that is not an image is named on stderr (exit 2) after the others are predicted",
    )
    predict.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per image and line, for scripts: {"file", "label", "probability", '
        '"probabilities", "blank"} (label and probabilities null for a blank image)',
    )


def unknown_arguments(parser: argparse.ArgumentParser, command: str, extras: list[str]) -> str:
    """One line on the arguments ``command`` does not take, with the flag meant if one is close
    (``--learning-rate``: did you mean ``--lr``?)."""
    flags = [arg for arg in extras if arg.startswith("--")]
    if not flags:
        return f"unrecognized arguments: {' '.join(extras)}"
    known = [
        option
        for action in _subparser(parser, command)._actions
        for option in action.option_strings
        if option.startswith("--")
    ]
    flag = flags[0].split("=")[0]
    close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6) or [
        option for option in known if option[2:] == _initials(flag)
    ]
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unrecognized argument {flag}{hint} (softmax-xp {command} --help lists its arguments)"


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            subparser: argparse.ArgumentParser = action.choices[command]
            return subparser
    return parser


def _initials(flag: str) -> str:
    """``--learning-rate`` -> ``lr``: the way our short flags abbreviate long words."""
    return "".join(word[0] for word in flag.lstrip("-").split("-") if word)
