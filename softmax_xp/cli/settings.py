"""A train run's settings: the preset, the flags given, and what a resumed run had."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .. import presets
from .._errors import ResumeMismatchError
from .._modelfile import Checkpoint, read_checkpoint
from .common import INPUT_DIM, NUM_CLASSES, CLIError

__all__ = ["read_resume_checkpoint", "recipe", "resume_mismatch", "train_size"]

_SOLVER_FLAGS = {"n_samples": "--limit", "epochs": "--epochs"}
RECIPE_FLAGS = {
    "lr": "--lr",
    "reg": "--reg",
    "momentum": "--momentum",
    "lr_decay": "--lr-decay",
    "batch_size": "--batch-size",
    "dtype": "--dtype",
    "seed": "--seed",
    "solver": "--solver",
}
_SGD_ONLY = ("lr", "momentum", "lr_decay", "batch_size")


def recipe(args: argparse.Namespace, resume: Checkpoint | None = None) -> dict[str, Any]:
    """The run's settings: the preset, then the flags given; when resuming, the checkpoint's
    settings, and an error for a flag that contradicts them."""
    preset = presets.FAST if args.fast else presets.CHAPTER
    settings = {**preset, "seed": 0, "dtype": "float32", "solver": "sgd", "tol": args.tol}
    given = {key: getattr(args, key) for key in RECIPE_FLAGS if getattr(args, key) is not None}
    solver = given.get("solver") or (resume.solver if resume is not None else "sgd")
    _check_solver_flags(args.tol, given, solver)
    if resume is None:
        settings.update(given)
    else:
        if args.fast:  # --fast stands for the preset's values of the flags not given
            given = {**{key: preset[key] for key in RECIPE_FLAGS if key in preset}, **given}
        theirs = {**resume.hyperparameters, "batch_size": resume.batch_size}
        theirs["solver"] = resume.solver
        _check_same(args.out, given, theirs)
        settings.update({key: theirs[key] for key in RECIPE_FLAGS})
        previous = resume.epochs if resume.epochs is not None else _previous_epochs(args.out)
        settings["epochs"] = settings["epochs"] if previous is None else previous
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    return settings


def _check_solver_flags(tol: float | None, given: dict[str, Any], solver: str) -> None:
    """Refuse flags that the run's solver does not use (``--tol`` is L-BFGS's, ``--lr`` SGD's)."""
    if tol is not None and solver != "lbfgs":
        raise CLIError(
            f"--tol {tol}: --tol is the stopping rule of --solver lbfgs (SGD runs all its "
            "epochs); give --solver lbfgs too, or leave out --tol."
        )
    if solver == "lbfgs":
        unused = [RECIPE_FLAGS[key] for key in _SGD_ONLY if key in given]
        if unused:
            raise CLIError(
                f"{', '.join(unused)}: not used by --solver lbfgs (full-batch L-BFGS has no "
                "step size, momentum or batches); leave them out, or use --solver sgd."
            )


def _check_same(out: Path, given: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Refuse the flags of a resumed run that contradict the settings it was trained with."""
    differ = [key for key in given if given[key] != theirs[key]]
    if differ:
        was = ", ".join(f"{RECIPE_FLAGS[key]} {theirs[key]}" for key in differ)
        now = ", ".join(f"{RECIPE_FLAGS[key]} {given[key]}" for key in differ)
        raise CLIError(
            f"--resume: the run in {out} was trained with {was}, not {now}; resume "
            "without those flags (or with the same values), or start a new run in another "
            "--out."
        )


def _previous_epochs(out: Path) -> int | None:
    """The number of epochs the run in ``out`` was asked for, for a checkpoint too old to say
    (from the run's run.json, written after its first epoch, or its report), or None."""
    for name in ("run.json", "report.json"):
        try:
            epochs = json.loads((out / name).read_text()).get("epochs")
        except (OSError, ValueError, AttributeError):
            continue
        if type(epochs) is int and epochs >= 0:
            return epochs
    return None


def read_resume_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint ``--resume`` continues, checked to be one of a train run on MNIST."""
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


def train_size(args: argparse.Namespace, available: int, resume: Checkpoint | None) -> int:
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


def resume_mismatch(exc: ResumeMismatchError, out: Path) -> str:
    """Why the checkpoint in ``out`` cannot be continued by this run, in the CLI's flags."""
    where = f"--resume: the run in {out}"
    if exc.kind == "data":
        return (
            f"{where} was trained on other data than this one (other images, labels or order); "
            "give the --data-dir and --limit of that run."
        )
    if exc.kind == "epochs":
        theirs, ours = exc.differences["epochs"]
        return (
            f"--epochs {ours}: the run in {out} already has {theirs} epochs (--epochs counts "
            "every epoch of the run, those before the resume too)."
        )
    if exc.kind in ("solver", "settings") and exc.differences:
        flags = {**RECIPE_FLAGS, **_SOLVER_FLAGS}
        names = list(exc.differences)
        was = ", ".join(f"{flags.get(k, k)} {exc.differences[k][0]}" for k in names)
        now = ", ".join(f"{flags.get(k, k)} {exc.differences[k][1]}" for k in names)
        return (
            f"{where} was trained with {was}, not {now}; resume without those flags (or with "
            "the same values), or start a new run in another --out."
        )
    return f"{where} cannot be continued by this one: {exc.reason}"
