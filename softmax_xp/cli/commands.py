"""``softmax-xp evaluate``, ``predict`` and ``info``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .. import __version__
from .._backend import BackendUnavailableError, backend_info, resolve_backend, to_numpy
from ..model import SoftmaxXP
from .common import INPUT_DIM, NUM_CLASSES, CLIError, say
from .data import load_data
from .report import evaluate, print_report
from .words import cli_words

__all__ = ["cmd_evaluate", "cmd_info", "cmd_predict", "load_model"]


def cmd_evaluate(args: argparse.Namespace) -> int:
    model = load_model(args.model, args.backend, args.no_fallback, classes=NUM_CLASSES)
    X_test, y_test = load_data(args.data_dir, args.download, test_only=True)
    report, _ = evaluate(model, X_test, y_test)
    report.update(model=str(args.model), backend=model.backend)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from ._images import read_digit_images

    model = load_model(args.model, args.backend, args.no_fallback)
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
        inked: Any = images.any(axis=1)  # an all-zero image: a picture with no ink, or all black
        for i, row in enumerate(proba):
            name = str(path) if len(proba) == 1 else f"{path}[{i}]"
            print(_prediction(name, row if inked[i] else None, args.json))
            blanks += not inked[i]
            predicted += bool(inked[i])
    if need_pillow:
        named = ", ".join(need_pillow[:3]) + (", ..." if len(need_pillow) > 3 else "")
        failures.append(f"{len(need_pillow)} file(s) not read ({named}): {pillow_advice}")
    _report_failures(failures)
    if blanks and not predicted:
        raise CLIError("every image is blank (no ink found): nothing to predict.")
    return 0


def _prediction(name: str, proba: Any, as_json: bool) -> str:
    """The line of one image: its label and probabilities, or (``proba`` None) a blank."""
    if as_json:
        label = None if proba is None else int(proba.argmax())
        return json.dumps(
            {
                "file": name,
                "label": label,
                "probability": None if proba is None else float(proba[label]),
                "probabilities": None if proba is None else [float(p) for p in proba],
                "blank": proba is None,
            }
        )
    if proba is None:
        return f"{name}: no ink found (a blank image); no digit predicted"
    probs = " ".join(f"{k}:{p:.3f}" for k, p in enumerate(proba))
    return f"{name}: {int(proba.argmax())}  ({probs})"


def _report_failures(failures: list[str]) -> None:
    """Each failure in one line on stderr, the last one as the command's error."""
    if failures:
        for failure in failures[:-1]:
            say(f"softmax-xp predict: error: {cli_words(failure)}")
        raise CLIError(failures[-1])


def cmd_export(args: argparse.Namespace) -> int:
    from ..export import export_model

    try:
        path = export_model(args.model, args.out, format=args.format, opset=args.opset)
    except ImportError as exc:  # a missing extra: one line, as every other error
        raise CLIError(str(exc)) from None
    print(f"wrote {path}")
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
            if entry.get("install"):
                print(f"  {'':<17} to use it, {entry['install']}")
    print(f'  backend="auto" uses: {info["auto"]["resolves_to"]}')
    return 0


def load_model(
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
