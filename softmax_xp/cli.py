"""The ``softmax-xp`` command: the chapter's MNIST experiment, evaluation, prediction, info.

softmax-xp train [--backend cupy] [--epochs 100] [--fast] [--out runs/mnist] ...
softmax-xp evaluate --model runs/mnist/model.npz
softmax-xp predict --model runs/mnist/model.npz digit.png more.npy
softmax-xp info
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__, presets
from ._backend import BACKENDS, BackendFallbackWarning, backend_info, to_numpy
from .datasets import DatasetError, load_mnist, split_validation
from .metrics import classification_report, confusion_matrix
from .model import History, SoftmaxXP

CHAPTER_TEST_ACCURACY = 0.9227
NUM_CLASSES = 10
INPUT_DIM = 784
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A problem to report in one line, with exit code 2."""


# -- argument parsing -------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softmax-xp",
        description="The softmax linear classifier on MNIST, on NumPy (CPU) or CuPy (GPU).",
    )
    parser.add_argument("--version", action="version", version=f"softmax-xp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chapter = presets.CHAPTER
    train = commands.add_parser("train", help="train on MNIST and report on the test set")
    train.add_argument("--backend", choices=BACKENDS, default="auto")
    train.add_argument("--device", default=None, help="device id or name for the backend")
    train.add_argument("--epochs", type=int, default=None, help=f"(default {chapter['epochs']})")
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
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    train.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="directory with the four MNIST (or Fashion-MNIST) IDX files",
    )
    train.add_argument(
        "--download", action="store_true", help="download MNIST into the cache if it is not found"
    )
    train.add_argument(
        "--out", type=Path, default=Path("runs/mnist"), help="output directory (default runs/mnist)"
    )
    train.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in --out"
    )
    train.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        help="train on the first N training images only (quick runs)",
    )
    train.add_argument("--no-plots", action="store_true", help="do not write the PNG figures")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    evaluate = commands.add_parser("evaluate", help="report a saved model on the MNIST test set")
    evaluate.add_argument("--model", type=Path, required=True)
    evaluate.add_argument("--backend", choices=BACKENDS, default="auto")
    evaluate.add_argument("--data-dir", type=Path, default=None)
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")

    predict = commands.add_parser("predict", help="classify digit images (PNG, JPEG, .npy)")
    predict.add_argument("--model", type=Path, required=True)
    predict.add_argument("--backend", choices=BACKENDS, default="auto")
    predict.add_argument("files", nargs="+", type=Path, metavar="FILE")

    info = commands.add_parser("info", help="version, backends and devices of this machine")
    info.add_argument("--json", action="store_true")
    return parser


# -- commands ---------------------------------------------------------------------------------
def _load_data(data_dir: Path | None, download: bool = False):
    try:
        return load_mnist(data_dir, download=download)
    except (DatasetError, FileNotFoundError) as exc:
        raise CLIError(str(exc).splitlines()[0] if data_dir is None else str(exc)) from None


def _recipe(args: argparse.Namespace) -> dict[str, Any]:
    recipe = dict(presets.FAST if args.fast else presets.CHAPTER)
    for key in ("epochs", "batch_size", "lr", "reg", "momentum", "lr_decay"):
        if getattr(args, key) is not None:
            recipe[key] = getattr(args, key)
    return recipe


def cmd_train(args: argparse.Namespace) -> int:
    recipe = _recipe(args)
    (X_full, y_full), (X_test, y_test) = _load_data(args.data_dir, args.download)
    (X_train, y_train), (X_val, y_val) = split_validation(X_full, y_full)
    if args.limit:
        X_train, y_train = X_train[: args.limit], y_train[: args.limit]
    out = args.out
    checkpoint = out / "checkpoint.npz"
    if args.resume and not checkpoint.is_file():
        raise CLIError(f"--resume: no checkpoint at {checkpoint}; train without --resume first.")
    model = SoftmaxXP(
        INPUT_DIM,
        NUM_CLASSES,
        lr=recipe["lr"],
        reg=recipe["reg"],
        momentum=recipe["momentum"],
        lr_decay=recipe["lr_decay"],
        backend=args.backend,
        device=args.device,
        dtype=args.dtype,
        seed=args.seed,
    )
    _say(
        f"softmax-xp {__version__}: training on {model.backend} ({model.device}), "
        f"{len(X_train)} images, {recipe['epochs']} epochs of batch {recipe['batch_size']}"
    )
    progress = _Progress(recipe["epochs"], enabled=not args.quiet and sys.stderr.isatty())
    interrupted = False
    start = time.perf_counter()
    try:
        history = model.train(
            X_train,
            y_train,
            X_val,
            y_val,
            epochs=recipe["epochs"],
            batch_size=recipe["batch_size"],
            verbose=0,
            callback=progress.update,
            checkpoint=checkpoint,
            resume_from=checkpoint if args.resume else None,
        )
    except KeyboardInterrupt:
        interrupted = True
        history = model.history_
        _say(f"\ninterrupted: saving the {len(history)} completed epoch(s)")
    finally:
        progress.close()
    train_seconds = time.perf_counter() - start
    report, y_pred = _evaluate(model, X_test, y_test)
    report.update(
        backend=model.backend,
        device=str(model.device),
        dtype=args.dtype,
        seed=args.seed,
        train_seconds=round(train_seconds, 3),
        train_size=len(X_train),
        epochs_completed=len(history),
        history=history.to_dict(),
        interrupted=interrupted,
        chapter_test_accuracy=CHAPTER_TEST_ACCURACY,
        **recipe,
    )
    _write_outputs(out, model, report, history, X_test, y_test, y_pred, plots=not args.no_plots)
    _print_report(report)
    _say(
        f"wrote {out}/model.npz, report.json, report.md" + ("" if args.no_plots else " and figures")
    )
    return EXIT_INTERRUPTED if interrupted else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    model = _load_model(args.model, args.backend)
    _, (X_test, y_test) = _load_data(args.data_dir)
    report, _ = _evaluate(model, X_test, y_test)
    report.update(model=str(args.model), backend=model.backend)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ._images import read_digit_images

    model = _load_model(args.model, args.backend)
    for path in args.files:
        try:
            images = read_digit_images(path)
        except (FileNotFoundError, ValueError, ImportError) as exc:
            raise CLIError(str(exc)) from None
        proba = to_numpy(model.predict_proba(images))
        for i, row in enumerate(proba):
            name = str(path) if len(proba) == 1 else f"{path}[{i}]"
            probs = " ".join(f"{k}:{p:.3f}" for k, p in enumerate(row))
            print(f"{name}: {int(row.argmax())}  ({probs})")
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
def _load_model(path: Path, backend: str) -> SoftmaxXP:
    try:
        return SoftmaxXP.load(path, backend=backend)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None


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
    print(
        f"test accuracy: {report['test_accuracy']:.4f} "
        f"(the chapter reports {CHAPTER_TEST_ACCURACY})\n"
    )
    print(report["classification_report"])
    print("confusion matrix (rows: true digit, columns: predicted digit):")
    print("       " + " ".join(f"{k:>5}" for k in range(NUM_CLASSES)))
    for k, row in enumerate(report["confusion_matrix"]):
        print(f"  {k:>3}  " + " ".join(f"{count:>5}" for count in row))


def _write_outputs(
    out: Path,
    model: SoftmaxXP,
    report: dict[str, Any],
    history: History,
    X_test: Any,
    y_test: Any,
    y_pred: Any,
    plots: bool,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.npz")
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(_markdown(report))
    if plots:
        _write_figures(out, model, report, history, X_test, y_test, y_pred)


def _markdown(report: dict[str, Any]) -> str:
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
    return (
        "# softmax-xp: MNIST test report\n\n"
        f"Test accuracy **{report['test_accuracy']:.4f}** (the chapter reports "
        f"{CHAPTER_TEST_ACCURACY}); {report['epochs_completed']} epochs in "
        f"{report['train_seconds']:.1f} s of training.\n\nSettings: {settings}.\n\n"
        f"{report['classification_report_markdown']}\n"
    )


def _write_figures(out, model, report, history, X_test, y_test, y_pred) -> None:
    from . import plots

    try:
        plots.plot_training_curves(history, path=out / "training_curves.png")
    except ImportError as exc:  # matplotlib is an optional extra
        _say(f"no figures: {exc}")
        return
    plots.plot_confusion_matrix(report["confusion_matrix"], path=out / "confusion_matrix.png")
    plots.plot_weight_templates(model.W, path=out / "weight_templates.png")
    plots.plot_misclassified(X_test, y_test, y_pred, path=out / "misclassified.png")
    plots.plot_sigmoid(path=out / "sigmoid.png")
    plots.plot_softmax_example(path=out / "softmax_example.png")


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
    print(message, file=sys.stderr, flush=True)


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
    except CLIError as exc:
        parser.exit(EXIT_USAGE, f"softmax-xp {args.command}: error: {exc}\n")
    except (ValueError, OSError) as exc:
        parser.exit(EXIT_USAGE, f"softmax-xp {args.command}: error: {exc}\n")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    _say(f"warning: {message}")


if __name__ == "__main__":
    sys.exit(main())
