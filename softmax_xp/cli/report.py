"""A model's test report (text, JSON, markdown) and a run's figures."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._atomic import AtomicBatch
from .._backend import to_numpy
from ..metrics import classification_report, confusion_matrix
from ..model import History, SoftmaxXP
from ._rundir import FIGURES
from .common import CHAPTER_TEST_ACCURACY, NUM_CLASSES, say, text_writer
from .data import is_mnist_test

__all__ = ["evaluate", "figures", "markdown", "print_report", "write_outputs"]

_SETTINGS = (
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
_LBFGS_SETTINGS = ("backend", "dtype", "solver", "epochs", "tol", "reg", "seed")


def evaluate(model: SoftmaxXP, X_test: Any, y_test: Any) -> tuple[dict[str, Any], Any]:
    """The test-set report, and the predictions it was made from."""
    y_pred = to_numpy(model.predict(X_test))
    report = classification_report(y_test, y_pred, NUM_CLASSES, output="dict")
    summary = {
        "test_accuracy": report["accuracy"],
        "mnist": is_mnist_test(X_test, y_test),  # only MNIST is compared with the chapter
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


def print_report(report: dict[str, Any]) -> None:
    """The report on stdout: the accuracy, the per-class table and the confusion matrix."""
    notes = []
    if report.get("status", "complete") != "complete":
        notes.append(f"{report['summary']}: a partial model")
    if report["mnist"]:
        notes.append(f"the chapter reports {CHAPTER_TEST_ACCURACY}")
    about = f" ({'; '.join(notes)})" if notes else ""
    print(f"test accuracy: {report['test_accuracy']:.4f}{about}\n")
    print(report["classification_report"])
    kind = "digit" if report["mnist"] else "class"
    print(f"confusion matrix (rows: true {kind}, columns: predicted {kind}):")
    print("       " + " ".join(f"{k:>5}" for k in range(NUM_CLASSES)))
    for k, row in enumerate(report["confusion_matrix"]):
        print(f"  {k:>3}  " + " ".join(f"{count:>5}" for count in row))


def markdown(report: dict[str, Any], out: Path) -> str:
    """report.md: the status, the accuracy, the settings and the per-class table."""
    names = _LBFGS_SETTINGS if report.get("solver") == "lbfgs" else _SETTINGS
    settings = ", ".join(f"{key} {report[key]}" for key in names)
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
    title, chapter = "test report", ""
    if report["mnist"]:
        title, chapter = "MNIST test report", f" (the chapter reports {CHAPTER_TEST_ACCURACY})"
    return (
        f"# softmax-xp: {title}\n\n"
        f"{note}Test accuracy **{report['test_accuracy']:.4f}**{chapter}; "
        f"{report['epochs_completed']} of {report['epochs']} epochs in "
        f"{report['train_seconds']:.1f} s of training.\n\nSettings: {settings}.\n\n"
        f"{report['classification_report_markdown']}\n"
    )


def write_outputs(
    out: Path, model: SoftmaxXP, report: dict[str, Any], drawn: dict[str, Any]
) -> None:
    """Write the model, the reports and the figures so that none replaces its old version until
    all are written (see softmax_xp._atomic); then remove figures of an earlier run not redrawn."""
    from ..plots import close, save_png

    try:
        with AtomicBatch() as batch:
            batch.add(out / "model.npz", model.save)  # type: ignore[arg-type]  # save() writes to an open file too
            batch.add(out / "report.json", text_writer(json.dumps(report, indent=2) + "\n"))
            batch.add(out / "report.md", text_writer(markdown(report, out)))
            for name, fig in list(drawn.items()):
                try:
                    batch.add(out / f"{name}.png", functools.partial(save_png, fig))
                except OSError:  # the disk: the whole batch fails, the earlier run stays
                    raise
                except Exception as exc:  # matplotlib: the model and reports are saved without it
                    say(f"no {name}.png: {type(exc).__name__}: {exc}")
                    close(drawn.pop(name))
    finally:
        for fig in drawn.values():
            close(fig)
    for name in FIGURES:
        if name not in drawn:
            (out / f"{name}.png").unlink(missing_ok=True)


def figures(
    model: SoftmaxXP,
    report: dict[str, Any],
    history: History,
    X_test: Any,
    y_test: Any,
    y_pred: Any,
) -> dict[str, Any]:
    """The run's figures by name (not yet saved); none, with a note, without matplotlib."""
    from .. import plots

    try:
        plots._pyplot()
    except ImportError as exc:  # matplotlib is an optional extra
        say(f"no figures: {exc}")
        return {}
    drawers: dict[str, Callable[[], Any]] = {
        "training_curves": lambda: plots.plot_training_curves(history),
        "confusion_matrix": lambda: plots.plot_confusion_matrix(report["confusion_matrix"]),
        "weight_templates": lambda: plots.plot_weight_templates(model.W),
        "misclassified": lambda: plots.plot_misclassified(X_test, y_test, y_pred),
        "sigmoid": plots.plot_sigmoid,
        "softmax_example": plots.plot_softmax_example,
    }
    assert tuple(drawers) == FIGURES
    drawn: dict[str, Any] = {}
    for name, draw in drawers.items():
        try:
            drawn[name] = draw()
        except Exception as exc:  # a figure that fails must not cost the run its model
            say(f"no {name}.png: {type(exc).__name__}: {exc}")
    return drawn
