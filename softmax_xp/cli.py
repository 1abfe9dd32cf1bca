"""The ``softmax-xp`` command: the chapter's MNIST experiment, evaluation, prediction, info.

softmax-xp train [--backend cupy] [--epochs 100] [--fast] [--out runs/mnist] ...
softmax-xp evaluate --model runs/mnist/model.npz
softmax-xp predict --model runs/mnist/model.npz digit.png more.npy
softmax-xp info
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__, presets
from ._atomic import AtomicBatch, write_atomic
from ._backend import (
    BACKENDS,
    BackendFallbackWarning,
    BackendUnavailableError,
    backend_info,
    resolve_backend,
    to_numpy,
)
from ._errors import TrainingDivergedError
from ._modelfile import Checkpoint, read_checkpoint
from ._rundir import FIGURES, FolderBusyError, RunFolder
from ._signals import Interruptions, signal_name
from .datasets import MNIST_FILES, DatasetError, load_mnist, load_mnist_test, split_validation
from .metrics import classification_report, confusion_matrix
from .model import History, SoftmaxXP

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


# -- argument parsing -------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    value = _nonnegative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text}")
    return value


def _path(text: str) -> Path:
    """A path argument; an empty one (an unset shell variable) is refused rather than read as
    the current folder, and ``~`` is the home folder even where the shell left it."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a path")
    return Path(os.path.expanduser(text))


NO_FALLBACK_HELP = "fail at once (exit 2) when --backend cannot run here, instead of using NumPy"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softmax-xp",
        description="The softmax linear classifier on MNIST, on NumPy (CPU) or CuPy (GPU).",
    )
    parser.add_argument("--version", action="version", version=f"softmax-xp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chapter = presets.CHAPTER
    train = commands.add_parser(
        "train",
        help="train on MNIST and report on the test set",
        description=TRAIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--backend", choices=BACKENDS, default="auto")
    train.add_argument("--device", default=None, help="device id or name for the backend")
    train.add_argument("--no-fallback", action="store_true", help=NO_FALLBACK_HELP)
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
    train.add_argument("--seed", type=int, default=None, help="(default 0)")
    train.add_argument(
        "--dtype", choices=("float32", "float64"), default=None, help="(default float32)"
    )
    train.add_argument(
        "--data-dir",
        type=_path,
        default=None,
        help="directory with the four MNIST (or Fashion-MNIST) IDX files",
    )
    train.add_argument(
        "--download", action="store_true", help="download MNIST into the cache if it is not found"
    )
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
    train.add_argument("--no-plots", action="store_true", help="do not write the PNG figures")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    model_help = "a model file written by train (e.g. runs/mnist/model.npz)"
    evaluate = commands.add_parser("evaluate", help="report a saved model on the MNIST test set")
    evaluate.add_argument("--model", type=_path, required=True, help=model_help)
    evaluate.add_argument("--backend", choices=BACKENDS, default="auto")
    evaluate.add_argument("--no-fallback", action="store_true", help=NO_FALLBACK_HELP)
    evaluate.add_argument(
        "--data-dir",
        type=_path,
        default=None,
        help="directory with the MNIST (or Fashion-MNIST) IDX files (default: the bundled MNIST)",
    )
    evaluate.add_argument(
        "--download", action="store_true", help="download MNIST into the cache if it is not found"
    )
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")

    predict = commands.add_parser("predict", help="classify digit images (PNG, JPEG, .npy)")
    predict.add_argument("--model", type=_path, required=True, help=model_help)
    predict.add_argument("--backend", choices=BACKENDS, default="auto")
    predict.add_argument("--no-fallback", action="store_true", help=NO_FALLBACK_HELP)
    predict.add_argument(
        "files",
        nargs="+",
        type=_path,
        metavar="FILE",
        help="a picture of one digit (PNG, JPEG, ...), or a .npy of 28x28 or 784 pixels "
        "(or a stack of them); an image with no ink is reported as blank, not predicted, and a "
        "file that is not an image is named on stderr (exit 2) after the others are predicted",
    )

    info = commands.add_parser("info", help="version, backends and devices of this machine")
    info.add_argument("--json", action="store_true", help="print the same as JSON")
    return parser


# -- commands ---------------------------------------------------------------------------------
def _load_data(data_dir: Path | None, download: bool = False, test_only: bool = False):
    """MNIST's two splits, or (``test_only``) its test split alone: the two t10k files."""
    try:
        if test_only:
            return load_mnist_test(data_dir, download=download)
        return load_mnist(data_dir, download=download)
    except (DatasetError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None


def _check_data_sizes(data_dir: Path | None, n_train: int, n_test: int) -> None:
    """The test set is not empty and the training set has more than the validation images."""
    where = f"--data-dir {data_dir}" if data_dir is not None else "MNIST"
    if n_test == 0:
        raise CLIError(
            f"{where}: the test set ({MNIST_FILES[2]}, {MNIST_FILES[3]}) has no images; "
            "train needs test images to report on."
        )
    if n_train <= VALIDATION_SIZE:
        raise CLIError(
            f"{where}: the training set ({MNIST_FILES[0]}) has {n_train} images; train needs "
            f"more than {VALIDATION_SIZE:,} (the last {VALIDATION_SIZE:,} are held out for "
            "validation)."
        )


_RECIPE_FLAGS = {
    "lr": "--lr",
    "reg": "--reg",
    "momentum": "--momentum",
    "lr_decay": "--lr-decay",
    "batch_size": "--batch-size",
    "dtype": "--dtype",
    "seed": "--seed",
}


def _recipe(args: argparse.Namespace, resume: Checkpoint | None = None) -> dict[str, Any]:
    """The run's settings: the preset, then the flags given; when resuming, the checkpoint's
    settings, and an error for a flag that contradicts them."""
    preset = presets.FAST if args.fast else presets.CHAPTER
    recipe = {**preset, "seed": 0, "dtype": "float32"}
    given = {key: getattr(args, key) for key in _RECIPE_FLAGS if getattr(args, key) is not None}
    if resume is None:
        recipe.update(given)
    else:
        if args.fast:  # --fast stands for the preset's values of the flags not given
            given = {**{key: preset[key] for key in _RECIPE_FLAGS if key in preset}, **given}
        theirs = {**resume.hyperparameters, "batch_size": resume.batch_size}
        differ = [key for key in given if given[key] != theirs[key]]
        if differ:
            was = ", ".join(f"{_RECIPE_FLAGS[key]} {theirs[key]}" for key in differ)
            now = ", ".join(f"{_RECIPE_FLAGS[key]} {given[key]}" for key in differ)
            raise CLIError(
                f"--resume: the run in {args.out} was trained with {was}, not {now}; resume "
                "without those flags (or with the same values), or start a new run in another "
                "--out."
            )
        recipe.update({key: theirs[key] for key in _RECIPE_FLAGS})
        previous = _previous_epochs(args.out)
        recipe["epochs"] = recipe["epochs"] if previous is None else previous
    if args.epochs is not None:
        recipe["epochs"] = args.epochs
    return recipe


def _previous_epochs(out: Path) -> int | None:
    """The number of epochs the run in ``out`` was asked for (from its run.json, written after
    its first epoch, or its report), or None if unknown."""
    for name in ("run.json", "report.json"):
        try:
            epochs = json.loads((out / name).read_text()).get("epochs")
        except (OSError, ValueError, AttributeError):
            continue
        if type(epochs) is int and epochs >= 0:
            return epochs
    return None


def _read_resume_checkpoint(path: Path) -> Checkpoint:
    if not path.is_file():
        raise CLIError(f"--resume: no checkpoint at {path}; train without --resume first.")
    again = "give --overwrite instead of --resume to start the run again, or choose another --out."
    try:
        checkpoint = read_checkpoint(path)
    except ValueError as exc:
        raise CLIError(f"--resume: {exc} It cannot be resumed: {again}") from None
    shape = (checkpoint.hyperparameters["input_dim"], checkpoint.hyperparameters["num_classes"])
    if shape != (INPUT_DIM, NUM_CLASSES):
        raise CLIError(
            f"--resume: {path} is the checkpoint of a model of {shape[0]} features and "
            f"{shape[1]} classes, not of a train run on MNIST ({INPUT_DIM} and {NUM_CLASSES}); "
            f"{again}"
        )
    return checkpoint


def _train_size(args: argparse.Namespace, available: int, resume: Checkpoint | None) -> int:
    """How many training images this run uses (``--limit``, or the resumed run's number)."""
    limit = args.limit
    if resume is not None and limit is None and resume.n_samples < available:
        limit = resume.n_samples
    n = available if limit is None else min(limit, available)
    if resume is not None and n != resume.n_samples:
        raise CLIError(
            f"--resume: the run in {args.out} was trained on {resume.n_samples} images, this one "
            f"would use {n}; give --limit {resume.n_samples} and the same --data-dir."
        )
    return n


def cmd_train(args: argparse.Namespace) -> int:
    with Interruptions(_say) as interruptions:
        try:
            return _train(args, interruptions)
        except KeyboardInterrupt as exc:  # before training began: nothing to save
            interruptions.defer(exc)
            _say(f"\n{signal_name(exc)}: stopped before training began; nothing was written.")
            return interruptions.exit_code or EXIT_INTERRUPTED


def _train(args: argparse.Namespace, interruptions: Interruptions) -> int:
    try:  # first, so that --no-fallback fails at once
        backend = resolve_backend(args.backend, device=args.device, fallback=not args.no_fallback)
    except BackendUnavailableError as exc:
        raise CLIError(f"--backend {args.backend} --no-fallback: {exc}") from None
    folder = RunFolder(args.out)
    try:
        folder.lock()
    except FolderBusyError as exc:
        raise CLIError(f"--out {exc}; wait for it to finish or choose another --out.") from None
    except OSError as exc:
        raise CLIError(_unusable_out(args.out, exc)) from None
    try:
        return _train_in(args, folder, backend, interruptions)
    finally:
        folder.release()


def _unusable_out(out: Path, exc: OSError) -> str:
    """Why ``--out`` cannot hold a run (it is a file, or cannot be created or written)."""
    if os.path.exists(out) and not os.path.isdir(out):  # os.path: False, not raise, on errors
        why = "is a file, not a folder"
    elif os.path.islink(out) and not os.path.exists(out):
        why = f"is a broken symbolic link (to {os.readlink(out)})"
    else:
        why = f"cannot be created or written ({exc.strerror or exc})"
    return f"--out {out} {why}; give a folder you can write to, e.g. --out runs/mnist."


def _train_in(args, folder: RunFolder, backend, interruptions: Interruptions) -> int:
    out = folder.path
    checkpoint = out / "checkpoint.npz"
    resume = _read_resume_checkpoint(checkpoint) if args.resume else None
    previous = folder.previous_outputs()
    if previous and not (args.resume or args.overwrite):
        raise CLIError(
            f"--out {out} holds an earlier run ({', '.join(previous)}); give --resume to "
            "continue it, --overwrite to replace it, or choose another --out."
        )
    for tmp in folder.remove_stale_temporaries():
        _say(f"removed {tmp}, left by an interrupted write")
    recipe = _recipe(args, resume)
    start_epoch = 0 if resume is None else resume.epoch
    if start_epoch > recipe["epochs"]:
        raise CLIError(
            f"--epochs {recipe['epochs']}: the run in {out} already has {start_epoch} epochs "
            "(--epochs counts every epoch of the run, those before the resume too)."
        )
    (X_full, y_full), (X_test, y_test) = _load_data(args.data_dir, args.download)
    _check_data_sizes(args.data_dir, len(X_full), len(X_test))
    (X_train, y_train), (X_val, y_val) = split_validation(X_full, y_full, VALIDATION_SIZE)
    n_train = _train_size(args, len(X_train), resume)
    X_train, y_train = X_train[:n_train], y_train[:n_train]
    model = SoftmaxXP(
        INPUT_DIM,
        NUM_CLASSES,
        lr=recipe["lr"],
        reg=recipe["reg"],
        momentum=recipe["momentum"],
        lr_decay=recipe["lr_decay"],
        backend=backend.name,
        device=backend.device,
        dtype=recipe["dtype"],
        seed=recipe["seed"],
    )
    _say(
        f"softmax-xp {__version__}: training on {model.backend} ({model.device}), "
        f"{len(X_train)} images, {recipe['epochs']} epochs of batch {recipe['batch_size']}"
    )
    if resume is not None:
        _say(f"resuming from epoch {start_epoch} of {recipe['epochs']} ({checkpoint})")
    progress = _Progress(recipe["epochs"], enabled=not args.quiet and sys.stderr.isatty())
    settings = {**recipe, "train_size": n_train, "data_dir": args.data_dir and str(args.data_dir)}
    stop: BaseException | None = None
    start = time.perf_counter()
    try:
        try:
            model.train(
                X_train,
                y_train,
                X_val,
                y_val,
                epochs=recipe["epochs"],
                batch_size=recipe["batch_size"],
                verbose=0,
                callback=_after_epoch(out / "run.json", settings, progress),
                checkpoint=checkpoint,
                resume_from=checkpoint if resume is not None else None,
            )
        finally:
            interruptions.defer()  # from here on a signal waits for the save
            progress.close()
    except (KeyboardInterrupt, TrainingDivergedError) as exc:
        stop = exc
        interruptions.defer(exc)
    except (MemoryError, OSError) as exc:  # out of (device) memory; a full or failing disk
        kept = (
            f"The completed epochs are in {checkpoint} (--resume continues them)."
            if checkpoint.is_file()
            else "Nothing was written."
        )
        if isinstance(exc, MemoryError):
            why = f"out of memory while training ({exc}); try a smaller --batch-size or --limit."
        else:
            why = f"{exc}."
        raise CLIError(f"{why} {kept}") from None
    train_seconds = time.perf_counter() - start
    history, completed = model.history_, model.epoch_
    if isinstance(stop, TrainingDivergedError):  # the CLI says below what it kept
        stop.args = (f"{stop.cause} {stop.advice}",)
    if stop is not None and completed == start_epoch:
        kept = "; the files already in --out are unchanged" if previous else ""
        if isinstance(stop, TrainingDivergedError):
            raise CLIError(f"{stop} No epoch completed, so nothing was written{kept}.")
        _say(f"\n{signal_name(stop)}: no epoch completed, so nothing was written{kept}.")
        return interruptions.exit_code or EXIT_INTERRUPTED
    if isinstance(stop, KeyboardInterrupt):
        _say(f"\n{signal_name(stop)}: saving the {completed} completed epoch(s)")
    status, summary = _status(stop, completed, recipe["epochs"])
    report, y_pred = _evaluate(model, X_test, y_test)
    report.update(
        status=status,
        summary=summary,
        backend=model.backend,
        device=str(model.device),
        train_seconds=round(train_seconds, 3),
        train_size=len(X_train),
        epochs_completed=completed,
        resumed_from_epoch=start_epoch if resume is not None else None,
        history=history.to_dict(),
        interrupted=status == "interrupted",
        chapter_test_accuracy=CHAPTER_TEST_ACCURACY,
        **recipe,
    )
    figures = {} if args.no_plots else _figures(model, report, history, X_test, y_test, y_pred)
    _write_outputs(out, model, report, figures)
    with contextlib.suppress(OSError, ValueError):  # the files are saved; stdout may be gone
        _print_report(report)
    written = "model.npz, report.json, report.md" + (
        f" and {len(figures)} figures" if figures else ""
    )
    _say(f"wrote {written} to {out}")
    if isinstance(stop, TrainingDivergedError):
        raise CLIError(f"{stop} Saved epoch {completed} (its model and report) in {out}.")
    return interruptions.exit_code or 0


def _after_epoch(path: Path, settings: dict[str, Any], progress: _Progress):
    """The training callback: after the first epoch (and its checkpoint) it records the run's
    settings in ``path`` (run.json, which ``--resume`` reads after a kill); then the progress bar."""
    pending = [settings]

    def callback(epoch: int, history: History) -> None:
        if pending:
            write_atomic(path, _text_writer(json.dumps(pending.pop(), indent=2) + "\n"))
        progress.update(epoch, history)

    return callback


def _status(stop: BaseException | None, completed: int, epochs: int) -> tuple[str, str]:
    """The run's status and a sentence saying how many epochs the saved model has."""
    if stop is None:
        return "complete", f"complete: {completed} of {epochs} epochs"
    if isinstance(stop, TrainingDivergedError):
        return "diverged", (
            f"diverged in epoch {stop.epoch}; kept epoch {completed}: {completed} of {epochs} "
            "epochs"
        )
    return "interrupted", f"interrupted by {signal_name(stop)} after {completed} of {epochs} epochs"


def cmd_evaluate(args: argparse.Namespace) -> int:
    model = _load_model(args.model, args.backend, args.no_fallback, classes=NUM_CLASSES)
    X_test, y_test = _load_data(args.data_dir, args.download, test_only=True)
    report, _ = _evaluate(model, X_test, y_test)
    report.update(model=str(args.model), backend=model.backend)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ._images import read_digit_images

    model = _load_model(args.model, args.backend, args.no_fallback)
    blanks = predicted = 0
    failures = []  # files that are not images: each one line, after the others are predicted
    need_pillow = []  # pictures, or files that may be: one line for all of them
    for path in args.files:
        try:
            images = read_digit_images(path)
        except ImportError as exc:  # no Pillow: .npy stacks are still read
            need_pillow.append(str(path))
            pillow_advice = str(exc)
            continue
        except (OSError, ValueError) as exc:
            failures.append(str(exc))
            continue
        proba = to_numpy(model.predict_proba(images))
        inked = images.any(axis=1)  # an all-zero image: a picture with no ink, or all black
        for i, row in enumerate(proba):
            name = str(path) if len(proba) == 1 else f"{path}[{i}]"
            if not inked[i]:
                print(f"{name}: no ink found (a blank image); no digit predicted")
                blanks += 1
                continue
            probs = " ".join(f"{k}:{p:.3f}" for k, p in enumerate(row))
            print(f"{name}: {int(row.argmax())}  ({probs})")
            predicted += 1
    if need_pillow:
        named = ", ".join(need_pillow[:3]) + (", ..." if len(need_pillow) > 3 else "")
        failures.append(f"{len(need_pillow)} file(s) not read ({named}): {pillow_advice}")
    if failures:
        for failure in failures[:-1]:
            _say(f"softmax-xp predict: error: {cli_words(failure)}")
        raise CLIError(failures[-1])
    if blanks and not predicted:
        raise CLIError("every image is blank (no ink found): nothing to predict.")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    info = backend_info()
    if args.json:
        print(json.dumps({"version": __version__, "backends": info}, indent=2))
        return 0
    print(f"softmax-xp {__version__}")
    for name, entry in info.items():
        if name == "auto":
            continue
        if entry["available"]:
            print(f"  {name:<17} {entry['version']:<12} {', '.join(entry['devices'])}")
        else:
            print(f"  {name:<17} unavailable: {entry['reason']}")
    print(f'  backend="auto" uses: {info["auto"]["resolves_to"]}')
    return 0


# -- pieces -----------------------------------------------------------------------------------
def _load_model(
    path: Path, backend: str, no_fallback: bool = False, classes: int | None = None
) -> SoftmaxXP:
    """The model of ``--model``, checked to read 28x28 images (and to have ``classes``)."""
    if no_fallback:  # before the model file is read, as train does
        try:
            backend = resolve_backend(backend, fallback=False).name
        except BackendUnavailableError as exc:
            raise CLIError(f"--backend {backend} --no-fallback: {exc}") from None
    try:
        model = SoftmaxXP.load(path, backend=backend)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    if model.input_dim != INPUT_DIM:
        raise CLIError(
            f"--model {path} takes {model.input_dim} features, not the {INPUT_DIM} pixels of a "
            "28x28 image; give a model trained on MNIST-size images (softmax-xp train writes one)."
        )
    if classes is not None and model.num_classes != classes:
        raise CLIError(
            f"--model {path} has {model.num_classes} classes, not the {classes} digits of the "
            "test set; give a model trained on all ten (softmax-xp train writes one)."
        )
    return model


def _evaluate(model: SoftmaxXP, X_test: Any, y_test: Any) -> tuple[dict[str, Any], Any]:
    """The test-set report, and the predictions it was made from."""
    y_pred = to_numpy(model.predict(X_test))
    report = classification_report(y_test, y_pred, NUM_CLASSES, output="dict")
    summary = {
        "test_accuracy": report["accuracy"],
        "per_class": {str(k): report[str(k)] for k in range(NUM_CLASSES)},
        "macro_avg": report["macro avg"],
        "weighted_avg": report["weighted avg"],
        "confusion_matrix": to_numpy(confusion_matrix(y_test, y_pred, NUM_CLASSES)).tolist(),
        "classification_report": classification_report(y_test, y_pred, NUM_CLASSES),
        "classification_report_markdown": classification_report(
            y_test, y_pred, NUM_CLASSES, output="markdown"
        ),
    }
    return summary, y_pred


def _print_report(report: dict[str, Any]) -> None:
    partial = report.get("status", "complete") != "complete"
    what = f"{report['summary']}: a partial model; " if partial else ""
    print(
        f"test accuracy: {report['test_accuracy']:.4f} "
        f"({what}the chapter reports {CHAPTER_TEST_ACCURACY})\n"
    )
    print(report["classification_report"])
    print("confusion matrix (rows: true digit, columns: predicted digit):")
    print("       " + " ".join(f"{k:>5}" for k in range(NUM_CLASSES)))
    for k, row in enumerate(report["confusion_matrix"]):
        print(f"  {k:>3}  " + " ".join(f"{count:>5}" for count in row))


def _write_outputs(out: Path, model: SoftmaxXP, report: dict[str, Any], figures: dict) -> None:
    """Write the model, the reports and the figures so that none replaces its old version until
    all are written (see softmax_xp._atomic); then remove figures of an earlier run not redrawn."""
    from .plots import close, save_png

    try:
        with AtomicBatch() as batch:
            batch.add(out / "model.npz", model.save)
            batch.add(out / "report.json", _text_writer(json.dumps(report, indent=2) + "\n"))
            batch.add(out / "report.md", _text_writer(_markdown(report, out)))
            for name, fig in list(figures.items()):
                try:
                    batch.add(out / f"{name}.png", functools.partial(save_png, fig))
                except OSError:  # the disk: the whole batch fails, the earlier run stays
                    raise
                except Exception as exc:  # matplotlib: the model and reports are saved without it
                    _say(f"no {name}.png: {type(exc).__name__}: {exc}")
                    close(figures.pop(name))
    finally:
        for fig in figures.values():
            close(fig)
    for name in FIGURES:
        if name not in figures:
            (out / f"{name}.png").unlink(missing_ok=True)


def _text_writer(text: str):
    # surrogateescape: a path of undecodable bytes (named in report.md) is written as those bytes
    return lambda f: f.write(text.encode("utf-8", "surrogateescape"))


def _markdown(report: dict[str, Any], out: Path) -> str:
    settings = ", ".join(
        f"{key} {report[key]}"
        for key in (
            "backend",
            "dtype",
            "epochs",
            "batch_size",
            "lr",
            "reg",
            "momentum",
            "lr_decay",
            "seed",
        )
    )
    status = report["status"]
    if status == "interrupted":
        note = (
            f"**This run was {report['summary']}**: the model is not the full run; "
            f"`softmax-xp train --resume --out {out}` continues it.\n\n"
        )
    elif status == "diverged":
        note = f"**This run {report['summary']}**: try a smaller `--lr`.\n\n"
    else:
        note = ""
    return (
        "# softmax-xp: MNIST test report\n\n"
        f"{note}Test accuracy **{report['test_accuracy']:.4f}** (the chapter reports "
        f"{CHAPTER_TEST_ACCURACY}); {report['epochs_completed']} of {report['epochs']} epochs in "
        f"{report['train_seconds']:.1f} s of training.\n\nSettings: {settings}.\n\n"
        f"{report['classification_report_markdown']}\n"
    )


def _figures(model, report, history, X_test, y_test, y_pred) -> dict[str, Any]:
    """The run's figures by name (not yet saved); none, with a note, without matplotlib."""
    from . import plots

    try:
        plots._pyplot()
    except ImportError as exc:  # matplotlib is an optional extra
        _say(f"no figures: {exc}")
        return {}
    drawers = {
        "training_curves": lambda: plots.plot_training_curves(history),
        "confusion_matrix": lambda: plots.plot_confusion_matrix(report["confusion_matrix"]),
        "weight_templates": lambda: plots.plot_weight_templates(model.W),
        "misclassified": lambda: plots.plot_misclassified(X_test, y_test, y_pred),
        "sigmoid": plots.plot_sigmoid,
        "softmax_example": plots.plot_softmax_example,
    }
    assert tuple(drawers) == FIGURES
    figures = {}
    for name, draw in drawers.items():
        try:
            figures[name] = draw()
        except Exception as exc:  # a figure that fails must not cost the run its model
            _say(f"no {name}.png: {type(exc).__name__}: {exc}")
    return figures


class _Progress:
    """A per-epoch progress bar on stderr (tqdm when installed, else one line per epoch)."""

    def __init__(self, epochs: int, enabled: bool):
        self.enabled = enabled
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, epoch: int, history: History) -> None:
        if not self.enabled:
            return
        stats = {"loss": f"{history.loss[-1]:.4f}"}
        if history.val_accuracy:
            stats["val_acc"] = f"{history.val_accuracy[-1]:.4f}"
        if self.bar is not None:
            self.bar.update(epoch - self.bar.n)
            self.bar.set_postfix(stats, refresh=True)
        else:
            print(
                f"epoch {epoch}  " + "  ".join(f"{k} {v}" for k, v in stats.items()),
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _say(message: str) -> None:
    """A status line on stderr; lost, not raised, when stderr is gone (a closed terminal sends
    SIGHUP, and the save that follows must not fail on a message)."""
    with contextlib.suppress(OSError, ValueError):
        print(message, file=sys.stderr, flush=True)


build_parser = _parser  # the documented name: the docs' CLI page is generated from it

COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "info": cmd_info}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``softmax-xp`` and ``python -m softmax_xp``; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", BackendFallbackWarning)
            warnings.showwarning = _show_warning
            return COMMANDS[args.command](args)
    except BrokenPipeError:  # the reader of our output went away (softmax-xp ... | head): stop
        with contextlib.suppress(OSError):  # and let nothing more be flushed into the pipe
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except (
        CLIError,
        ValueError,
        OSError,
        DatasetError,
        BackendUnavailableError,
        MemoryError,
    ) as exc:
        parser.exit(EXIT_USAGE, f"softmax-xp {args.command}: error: {cli_words(str(exc))}\n")
    except KeyboardInterrupt:
        _say(f"softmax-xp {args.command}: interrupted")
        return EXIT_INTERRUPTED


# Python argument spellings in library messages, and the flags a CLI user types instead.
_PYTHON_WORDS = [
    (re.compile(r"\bdownload=True\b"), "--download"),
    (re.compile(r"\bfallback=False\b"), "--no-fallback"),
    (re.compile(r"\(data_dir\)"), "(--data-dir)"),
    (re.compile(r"\bresume_from=(['\"]).*?\1: "), "--resume: "),
    (
        re.compile(r"resume with the same training data, in the same order\."),
        "give the --data-dir and --limit of that run.",
    ),
    (
        re.compile(r"\b([Uu])se device=None\b"),
        lambda m: f"{'L' if m[1] == 'U' else 'l'}eave out --device",
    ),
    (re.compile(r"\bdevice=None\b"), "no --device"),
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


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _say(f"warning: {cli_words(str(message))}")


if __name__ == "__main__":
    sys.exit(main())
