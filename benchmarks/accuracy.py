"""Section 2: seconds of training until MNIST test accuracy >= 0.9227 (the chapter's result), for
the chapter's recipe, the FAST preset and scikit-learn's LogisticRegression(lbfgs)."""

from __future__ import annotations

import importlib.util
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from softmax_xp import SoftmaxXP
from softmax_xp.presets import CHAPTER, FAST, model_args

from ._data import CHAPTER_ACCURACY, Mnist
from ._report import Section
from ._timing import interleave


@dataclass
class Run:
    """One training run: seconds and epochs (or iterations) to the target, and where it ended."""

    seconds: float | None  # training time until the target was first reached; None: never
    steps: int | None
    final_accuracy: float
    total_seconds: float


@dataclass
class Recipe:
    """A SoftmaxXP recipe trained on the NumPy backend, evaluated on the test set every epoch."""

    preset: dict[str, Any]
    data: Mnist
    epochs: int
    seed: int = 0
    runs: list[Run] = field(default_factory=list)
    backend: str = "numpy"

    def __call__(self) -> float | None:
        model = SoftmaxXP(784, 10, backend=self.backend, seed=self.seed, **model_args(self.preset))
        history = model.train(
            self.data.X,
            self.data.y,
            self.data.X_test,
            self.data.y_test,
            epochs=self.epochs,
            batch_size=self.preset["batch_size"],
            verbose=0,
        )
        hit = next(
            (i for i, acc in enumerate(history.val_accuracy) if acc >= CHAPTER_ACCURACY), None
        )
        seconds = None if hit is None else sum(history.epoch_time[: hit + 1])
        total = sum(history.epoch_time)
        self.runs.append(
            Run(seconds, None if hit is None else hit + 1, history.val_accuracy[-1], total)
        )
        return total if seconds is None else seconds


@dataclass
class Sklearn:
    """LogisticRegression(lbfgs) with the chapter's L2 strength (C = 1 / (reg * n)), fitted in
    warm-started chunks of ``chunk`` iterations; only the fits are timed."""

    data: Mnist
    reg: float = 1e-4
    chunk: int = 10
    max_iter: int = 300
    runs: list[Run] = field(default_factory=list)

    def __call__(self) -> float | None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(
            C=1.0 / (self.reg * self.data.X.shape[0]),
            solver="lbfgs",
            max_iter=self.chunk,
            warm_start=True,
        )
        seconds, done, acc = 0.0, 0, 0.0
        while done < self.max_iter:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                start = time.perf_counter()
                clf.fit(self.data.X, self.data.y)
                seconds += time.perf_counter() - start
            done += self.chunk
            acc = float(clf.score(self.data.X_test, self.data.y_test))
            if acc >= CHAPTER_ACCURACY:
                self.runs.append(Run(seconds, done, acc, seconds))
                return seconds
        self.runs.append(Run(None, None, acc, seconds))
        return seconds


def _row(name: str, what: str, runs: list[Run], unit: str) -> list[str]:
    hits = [r.seconds for r in runs if r.seconds is not None]
    steps = sorted({r.steps for r in runs if r.steps is not None})
    if len(hits) * 2 > len(runs):
        seconds = f"{statistics.median(hits):.2f}"
    else:
        seconds = f"not reached (>{statistics.median(r.total_seconds for r in runs):.2f})"
    final = statistics.median(r.final_accuracy for r in runs)
    return [
        name,
        what,
        seconds,
        ", ".join(map(str, steps)) + f" {unit}" if steps else "-",
        f"{final:.4f}",
        str(len(runs)),
    ]


def run(
    data: Mnist,
    repeats: int,
    chapter: bool = True,
    sklearn_repeats: int = 5,
    sklearn_budget_s: float = 120.0,
) -> Section:
    """Time the recipes (interleaved), then, when installed, scikit-learn: up to
    ``sklearn_repeats`` runs while they take less than ``sklearn_budget_s`` in all."""
    recipes: dict[str, Recipe] = {"FAST preset": Recipe(FAST, data, FAST["epochs"])}
    if chapter:
        recipes["chapter recipe"] = Recipe(CHAPTER, data, CHAPTER["epochs"])
    interleave(dict(recipes), repeats=repeats, warmup=0)
    section = Section(
        f"2. Time to the chapter's test accuracy {CHAPTER_ACCURACY}",
        ["row", "recipe", "median s to target", "reached after", "final test acc", "runs"],
    )
    describe = {
        "FAST preset": _recipe_text(FAST),
        "chapter recipe": _recipe_text(CHAPTER),
    }
    for name, recipe in recipes.items():
        section.rows.append(_row(name, describe[name], recipe.runs, "epochs"))
    data_out: dict[str, Any] = {
        name: {"preset": r.preset, "runs": [vars(run) for run in r.runs]}
        for name, r in recipes.items()
    }
    if sklearn_repeats and importlib.util.find_spec("sklearn") is not None:
        sk = Sklearn(data)
        spent = time.perf_counter()
        for _ in range(sklearn_repeats):
            sk()
            if time.perf_counter() - spent > sklearn_budget_s:
                break
        what = f"lbfgs, C=1/(reg n), warm-started chunks of {sk.chunk} iterations"
        section.rows.append(_row("scikit-learn LogisticRegression", what, sk.runs, "iterations"))
        data_out["scikit-learn LogisticRegression"] = {"runs": [vars(r) for r in sk.runs]}
        section.notes.append(
            f"scikit-learn: {len(sk.runs)} run(s), as many as fit in {sklearn_budget_s:.0f} s "
            f"(at most {sklearn_repeats}); the test accuracy is checked after every chunk, outside "
            "the clock, and restarting lbfgs for each chunk costs it some efficiency"
        )
    section.notes += [
        f"SoftmaxXP on NumPy, float32, seed 0, trained on the first {data.X.shape[0]:,} rows; "
        "seconds are the sum of History.epoch_time up to the first epoch whose test accuracy "
        "reaches the target (that time includes the per-epoch test evaluation, a few ms)",
        f"SoftmaxXP recipes: {repeats} interleaved runs each",
    ]
    section.data = data_out
    return section


def _recipe_text(p: dict[str, Any]) -> str:
    return (
        f"lr {p['lr']}, momentum {p['momentum']}, lr_decay {p['lr_decay']}, "
        f"batch {p['batch_size']}, {p['epochs']} epochs"
    )


def fast_seconds(section: Section) -> float | None:
    """The FAST preset's median seconds to target, or None when it did not get there."""
    runs = section.data.get("FAST preset", {}).get("runs", [])
    return median_to_target([r["seconds"] for r in runs])


def median_to_target(seconds: list[float | None]) -> float | None:
    """The median seconds to target of the runs that reached it (None: one that did not), or
    None when no more than half of them did."""
    hits = [s for s in seconds if s is not None]
    return statistics.median(hits) if len(hits) * 2 > len(seconds) else None
