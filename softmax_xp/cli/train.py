"""``softmax-xp train``: the chapter's MNIST experiment, in a run folder that never loses a model."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from .._atomic import write_atomic
from .._backend import Backend, BackendUnavailableError, resolve_backend
from .._errors import ResumeMismatchError, TrainingDivergedError
from .._modelfile import Checkpoint
from ..datasets import split_validation
from ..model import EarlyStopping, History, SoftmaxXP
from . import report as reporting
from ._rundir import FolderBusyError, RunFolder
from ._signals import Interruptions, signal_name
from .common import (
    CHAPTER_TEST_ACCURACY,
    EXIT_INTERRUPTED,
    INPUT_DIM,
    NUM_CLASSES,
    VALIDATION_SIZE,
    CLIError,
    say,
    text_writer,
)
from .data import check_data_sizes, load_data
from .settings import read_resume_checkpoint, recipe, resume_mismatch, train_size

__all__ = ["cmd_train"]


@dataclass
class _Run:
    """One train run: where it writes, what it continues, its settings and its data."""

    args: argparse.Namespace
    out: Path
    previous: list[str]
    resume: Checkpoint | None
    recipe: dict[str, Any]
    train: tuple[Any, Any] = (None, None)  # (X, y) once loaded
    val: tuple[Any, Any] = (None, None)
    test: tuple[Any, Any] = (None, None)
    stop: BaseException | None = None
    seconds: float = 0.0
    early: EarlyStopping | None = None

    @property
    def checkpoint(self) -> Path:
        return self.out / "checkpoint.npz"

    @property
    def start_epoch(self) -> int:
        return 0 if self.resume is None else self.resume.epoch


def cmd_train(args: argparse.Namespace) -> int:
    with Interruptions(say) as interruptions:
        try:
            return _train(args, interruptions)
        except KeyboardInterrupt as exc:  # before training began: nothing to save
            interruptions.defer(exc)
            say(f"\n{signal_name(exc)}: stopped before training began; nothing was written.")
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


def _train_in(
    args: argparse.Namespace, folder: RunFolder, backend: Backend, interruptions: Interruptions
) -> int:
    run = _prepare(args, folder)
    model = _model(run, backend)
    _announce(run, model)
    _fit(run, model, interruptions)
    completed = model.epoch_
    if isinstance(run.stop, TrainingDivergedError):  # the CLI says below what it kept
        run.stop.args = (f"{run.stop.cause} {run.stop.advice}",)
    if run.stop is not None and completed == run.start_epoch:
        kept = "; the files already in --out are unchanged" if run.previous else ""
        if isinstance(run.stop, TrainingDivergedError):
            raise CLIError(f"{run.stop} No epoch completed, so nothing was written{kept}.")
        say(f"\n{signal_name(run.stop)}: no epoch completed, so nothing was written{kept}.")
        return interruptions.exit_code or EXIT_INTERRUPTED
    if isinstance(run.stop, KeyboardInterrupt):
        done = f"the run is complete ({completed} of {run.recipe['epochs']} epochs); saving it"
        if completed < run.recipe["epochs"]:
            done = f"saving the {completed} completed epoch(s)"
        say(f"\n{signal_name(run.stop)}: {done}")
    _save(run, model)
    if isinstance(run.stop, TrainingDivergedError):
        raise CLIError(f"{run.stop} Saved epoch {completed} (its model and report) in {run.out}.")
    return interruptions.exit_code or 0


def _prepare(args: argparse.Namespace, folder: RunFolder) -> _Run:
    """The run's settings (checked against a resumed run's) and its data, read."""
    out = folder.path
    resume = read_resume_checkpoint(out / "checkpoint.npz") if args.resume else None
    previous = folder.previous_outputs()
    if previous and not (args.resume or args.overwrite):
        raise CLIError(
            f"--out {out} holds an earlier run ({', '.join(previous)}); give --resume to "
            "continue it, --overwrite to replace it, or choose another --out."
        )
    for tmp in folder.remove_stale_temporaries():
        say(f"removed {tmp}, left by an interrupted write")
    run = _Run(args, out, previous, resume, recipe(args, resume))
    run.early = _early_stopping(args)
    if run.start_epoch > run.recipe["epochs"]:
        raise CLIError(
            f"--epochs {run.recipe['epochs']}: the run in {out} already has {run.start_epoch} "
            "epochs (--epochs counts every epoch of the run, those before the resume too)."
        )
    (X_full, y_full), run.test = load_data(args.data_dir, args.download)
    check_data_sizes(args.data_dir, len(X_full), len(run.test[0]))
    (X_train, y_train), run.val = split_validation(X_full, y_full, VALIDATION_SIZE)
    n_train = train_size(args, len(X_train), resume)
    run.train = X_train[:n_train], y_train[:n_train]
    return run


def _model(run: _Run, backend: Backend) -> SoftmaxXP:
    settings = run.recipe
    return SoftmaxXP(
        INPUT_DIM,
        NUM_CLASSES,
        lr=settings["lr"],
        reg=settings["reg"],
        momentum=settings["momentum"],
        lr_decay=settings["lr_decay"],
        backend=backend.name,
        device=backend.device,
        dtype=settings["dtype"],
        seed=settings["seed"],
    )


def _announce(run: _Run, model: SoftmaxXP) -> None:
    epochs = run.recipe["epochs"]
    steps = f"{epochs} epochs of batch {run.recipe['batch_size']}"
    if run.recipe["solver"] == "lbfgs":
        steps = f"L-BFGS, up to {epochs} iterations"
    say(
        f"softmax-xp {__version__}: training on {model.backend} ({model.device}), "
        f"{len(run.train[0])} images, {steps}"
    )
    if run.resume is not None:
        say(f"resuming from epoch {run.start_epoch} of {epochs} ({run.checkpoint})")


def _fit(run: _Run, model: SoftmaxXP, interruptions: Interruptions) -> None:
    """Train; a signal or a divergence is kept in ``run.stop``, other failures are CLIErrors."""
    args = run.args
    progress = _Progress(run.recipe["epochs"], enabled=not args.quiet and sys.stderr.isatty())
    settings = {
        **run.recipe,
        "train_size": len(run.train[0]),
        "data_dir": args.data_dir and str(args.data_dir),
    }
    start = time.perf_counter()
    try:
        try:
            model.train(
                *run.train,
                *run.val,
                epochs=run.recipe["epochs"],
                batch_size=run.recipe["batch_size"],
                verbose=0,
                callback=[
                    _after_epoch(run.out / "run.json", settings, progress),
                    *([run.early] if run.early is not None else []),
                ],
                checkpoint=run.checkpoint,
                resume_from=run.checkpoint if run.resume is not None else None,
                solver=run.recipe["solver"],
                tol=run.recipe["tol"],
            )
        finally:
            interruptions.defer()  # from here on a signal waits for the save
            progress.close()
    except (KeyboardInterrupt, TrainingDivergedError) as exc:
        run.stop = exc
        interruptions.defer(exc)
    except ResumeMismatchError as exc:
        raise CLIError(resume_mismatch(exc, run.out)) from None
    except (MemoryError, OSError) as exc:  # out of (device) memory; a full or failing disk
        raise CLIError(_training_failed(exc, run.checkpoint)) from None
    run.seconds = time.perf_counter() - start


def _training_failed(exc: BaseException, checkpoint: Path) -> str:
    kept = (
        f"The completed epochs are in {checkpoint} (--resume continues them)."
        if checkpoint.is_file()
        else "Nothing was written."
    )
    if isinstance(exc, MemoryError):
        why = f"out of memory while training ({exc}); try a smaller --batch-size or --limit."
    else:
        why = f"{exc}."
    return f"{why} {kept}"


def _save(run: _Run, model: SoftmaxXP) -> None:
    """Evaluate on the test set, write the model, reports and figures, and print the report."""
    completed, epochs = model.epoch_, run.recipe["epochs"]
    status, summary = _status(run.stop, completed, epochs)
    if run.early is not None and run.early.stopped_epoch is not None and run.stop is None:
        summary = (
            f"stopped early: {completed} of {epochs} epochs, the validation loss best in "
            f"epoch {run.early.best_epoch} (its weights are the model's)"
        )
    report, y_pred = reporting.evaluate(model, *run.test)
    report.update(
        status=status,
        summary=summary,
        backend=model.backend,
        device=str(model.device),
        train_seconds=round(run.seconds, 3),
        train_size=len(run.train[0]),
        epochs_completed=completed,
        resumed_from_epoch=run.start_epoch if run.resume is not None else None,
        history=model.history_.to_dict(),
        interrupted=status == "interrupted",
        chapter_test_accuracy=CHAPTER_TEST_ACCURACY if report["mnist"] else None,
        **run.recipe,
    )
    drawn = {}
    if not run.args.no_plots:
        drawn = reporting.figures(model, report, model.history_, *run.test, y_pred)
    try:
        reporting.write_outputs(run.out, model, report, drawn)
    except OSError as exc:  # a full disk, most often: the checkpoint holds the epochs
        raise CLIError(_save_failed(exc, run, completed)) from None
    with contextlib.suppress(OSError, ValueError):  # the files are saved; stdout may be gone
        reporting.print_report(report)
    written = "model.npz, report.json, report.md" + (f" and {len(drawn)} figures" if drawn else "")
    say(f"wrote {written} to {run.out}")


def _save_failed(exc: OSError, run: _Run, completed: int) -> str:
    if not run.checkpoint.is_file():
        return f"{exc}."
    return (
        f"{exc}. The checkpoint {run.checkpoint} keeps the {completed} epochs: free some space, "
        f"then `softmax-xp train --resume --no-plots --out {run.out}` writes the model and "
        "reports from it (without the figures, which take the most space)."
    )


def _after_epoch(
    path: Path, settings: dict[str, Any], progress: _Progress
) -> Callable[[int, History], None]:
    """The training callback: after the first epoch (and its checkpoint) it records the run's
    settings in ``path`` (run.json, which ``--resume`` reads after a kill); then the progress bar."""
    pending = [settings]

    def callback(epoch: int, history: History) -> None:
        if pending:
            write_atomic(path, text_writer(json.dumps(pending.pop(), indent=2) + "\n"))
        progress.update(epoch, history)

    return callback


def _early_stopping(args: argparse.Namespace) -> EarlyStopping | None:
    """The run's EarlyStopping (on the validation loss), or None; --patience needs it."""
    if args.patience is not None and not args.early_stopping:
        raise CLIError(
            f"--patience {args.patience}: --patience is for --early-stopping; give both, or "
            "leave out --patience."
        )
    if not args.early_stopping:
        return None
    return EarlyStopping(monitor="val_loss", patience=args.patience or 5)


def _status(stop: BaseException | None, completed: int, epochs: int) -> tuple[str, str]:
    """The run's status and a sentence saying how many epochs the saved model has."""
    if stop is None:
        return "complete", f"complete: {completed} of {epochs} epochs"
    if isinstance(stop, TrainingDivergedError):
        return "diverged", (
            f"diverged in epoch {stop.epoch}; kept epoch {completed}: {completed} of {epochs} "
            "epochs"
        )
    if completed >= epochs:  # the signal came after the last epoch: it only shortened the save
        return "complete", f"complete: {completed} of {epochs} epochs"
    return "interrupted", f"interrupted by {signal_name(stop)} after {completed} of {epochs} epochs"


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
