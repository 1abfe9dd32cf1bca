"""Section 5: scikit-learn's LogisticRegression(lbfgs) against our L-BFGS solver and against
SoftmaxClassifier with the FAST recipe, side by side on MNIST (time to a test accuracy)."""

from __future__ import annotations

import contextlib
import importlib.util
import statistics
import time
import warnings
from typing import Any

from softmax_xp import SoftmaxXP
from softmax_xp.presets import FAST, model_args

from ._data import Mnist
from ._report import Section, x
from .accuracy import median_to_target

REG = 1e-4  # the chapter's L2 strength; LogisticRegression's C = 1 / (REG * n)
FAST_TARGET = 0.92


def _logistic_regression(data: Mnist) -> dict[str, Any]:
    """One full LogisticRegression(lbfgs) fit with its defaults (tol 1e-4), timed; its final
    test accuracy sets our L-BFGS target."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1.0 / (REG * data.X.shape[0]), solver="lbfgs", max_iter=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        clf.fit(data.X, data.y)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "iterations": int(clf.n_iter_[0]),
        "accuracy": float(clf.score(data.X_test, data.y_test)),
    }


def _logistic_regression_to(data: Mnist, target: float, chunk: int = 5) -> dict[str, Any]:
    """LogisticRegression(lbfgs) warm-started ``chunk`` iterations at a time until the test
    accuracy reaches ``target`` (scored off the clock)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(
        C=1.0 / (REG * data.X.shape[0]), solver="lbfgs", max_iter=chunk, warm_start=True
    )
    seconds, done, accuracy = 0.0, 0, 0.0
    while done < 1000:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            clf.fit(data.X, data.y)
            seconds += time.perf_counter() - start
        done += int(clf.n_iter_[0])
        accuracy = float(clf.score(data.X_test, data.y_test))
        if accuracy >= target:
            return {"seconds": seconds, "iterations": done, "accuracy": accuracy}
        if clf.n_iter_[0] < chunk:  # converged below the target
            break
    return {"seconds": None, "iterations": done, "accuracy": accuracy, "total_seconds": seconds}


class _Reached(Exception):
    """Raised by a training callback to stop at the target accuracy."""


def _our_lbfgs(data: Mnist, target: float) -> dict[str, Any]:
    """SoftmaxXP(solver="lbfgs") on NumPy, float32, default tol; seconds (sum of epoch_time,
    which includes the per-iteration test evaluation) until the test accuracy reaches
    ``target``, where a callback stops it."""

    def stop(_: int, history: Any) -> None:
        if history.val_accuracy[-1] >= target:
            raise _Reached

    model = SoftmaxXP(784, 10, reg=REG, backend="numpy", dtype="float32", seed=0)
    with contextlib.suppress(_Reached):
        model.train(
            data.X,
            data.y,
            data.X_test,
            data.y_test,
            epochs=1000,
            verbose=0,
            solver="lbfgs",
            callback=stop,
        )
    history = model.history_
    hit = next((i for i, a in enumerate(history.val_accuracy) if a >= target), None)
    return {
        "seconds": None if hit is None else sum(history.epoch_time[: hit + 1]),
        "iterations": None if hit is None else hit + 1,
        "accuracy": history.val_accuracy[-1],
        "total_seconds": sum(history.epoch_time),
        "total_iterations": len(history),
    }


def _classifier_fast(data: Mnist, target: float) -> dict[str, Any]:
    """SoftmaxClassifier with the FAST recipe, one partial_fit per epoch (the same run as
    fit(max_iter=epochs)), timed per call including its input validation; the test accuracy is
    checked between calls, off the clock."""
    import numpy as np

    from softmax_xp import SoftmaxClassifier

    clf = SoftmaxClassifier(
        **model_args(FAST), batch_size=FAST["batch_size"], backend="numpy", random_state=0
    )
    classes = np.arange(10)
    seconds, accuracy = 0.0, 0.0
    for epoch in range(1, 3 * FAST["epochs"] + 1):
        start = time.perf_counter()
        clf.partial_fit(data.X, data.y, classes=classes)
        seconds += time.perf_counter() - start
        accuracy = float(clf.score(data.X_test, data.y_test))
        if accuracy >= target:
            return {"seconds": seconds, "epochs": epoch, "accuracy": accuracy}
    return {"seconds": None, "epochs": None, "accuracy": accuracy, "total_seconds": seconds}


def _median(runs: list[dict[str, Any]]) -> float | None:
    return median_to_target([r["seconds"] for r in runs])


def _s(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.2f}"


def run(
    data: Mnist, repeats: int, sklearn_repeats: int = 1, fast_target: float = FAST_TARGET
) -> Section:
    """Each SoftmaxXP row ``repeats`` times, each scikit-learn row ``sklearn_repeats`` times,
    interleaved round by round; medians and ratios. ``fast_target`` is the accuracy of the
    FAST comparison (0.92 on the full 50,000 rows; --quick's 10,000 rows stop short of it)."""
    section = Section(
        "6. scikit-learn estimator and L-BFGS, MNIST time to test accuracy",
        ["row", "target acc", "median s to target", "reached after", "final test acc", "runs"],
    )
    if importlib.util.find_spec("sklearn") is None:
        section.notes.append("skipped: scikit-learn is not installed (pip install scikit-learn)")
        return section
    rows: dict[str, list[dict[str, Any]]] = {
        "LogisticRegression(lbfgs), full fit": [],
        "SoftmaxXP(solver='lbfgs')": [],
        "LogisticRegression(lbfgs), to target": [],
        "SoftmaxClassifier, FAST recipe": [],
    }
    for round_ in range(max(repeats, sklearn_repeats)):
        if round_ < sklearn_repeats:
            rows["LogisticRegression(lbfgs), full fit"].append(_logistic_regression(data))
            rows["LogisticRegression(lbfgs), to target"].append(
                _logistic_regression_to(data, fast_target)
            )
        if round_ < repeats:
            sk_accuracy = statistics.median(
                r["accuracy"] for r in rows["LogisticRegression(lbfgs), full fit"]
            )
            rows["SoftmaxXP(solver='lbfgs')"].append(_our_lbfgs(data, sk_accuracy))
            rows["SoftmaxClassifier, FAST recipe"].append(_classifier_fast(data, fast_target))
    sk_accuracy = statistics.median(
        r["accuracy"] for r in rows["LogisticRegression(lbfgs), full fit"]
    )
    targets = {
        "LogisticRegression(lbfgs), full fit": "(its own end)",
        "SoftmaxXP(solver='lbfgs')": f"{sk_accuracy:.4f}",
        "LogisticRegression(lbfgs), to target": f"{fast_target}",
        "SoftmaxClassifier, FAST recipe": f"{fast_target}",
    }
    for name, runs in rows.items():
        steps = sorted({r.get("iterations") or r.get("epochs") for r in runs} - {None})
        unit = "epochs" if "FAST" in name else "iterations"
        section.rows.append(
            [
                name,
                targets[name],
                _s(_median(runs)),
                ", ".join(map(str, steps)) + f" {unit}" if steps else "-",
                f"{statistics.median(r['accuracy'] for r in runs):.4f}",
                str(len(runs)),
            ]
        )
    sk_full = _median(rows["LogisticRegression(lbfgs), full fit"])
    ours = _median(rows["SoftmaxXP(solver='lbfgs')"])
    sk_fast = _median(rows["LogisticRegression(lbfgs), to target"])
    fast = _median(rows["SoftmaxClassifier, FAST recipe"])
    lbfgs_ratio = None if None in (sk_full, ours) else ours / sk_full
    fast_speedup = None if None in (sk_fast, fast) else sk_fast / fast
    for what, value, goal, ok in (
        (
            "SoftmaxXP lbfgs time / LogisticRegression time (to its final accuracy)",
            lbfgs_ratio,
            "< 1.00x",
            lbfgs_ratio is not None and lbfgs_ratio < 1.0,
        ),
        (
            f"LogisticRegression time / SoftmaxClassifier FAST time (to {fast_target})",
            fast_speedup,
            ">= 10x",
            fast_speedup is not None and fast_speedup >= 10.0,
        ),
    ):
        section.rows.append([f"target: {what}", goal, x(value), "-", "holds" if ok else "no", "-"])
    section.notes += [
        f"trained on the first {data.X.shape[0]:,} MNIST rows (float32), scored on the 10,000 "
        f"test rows; reg = {REG} for every row (LogisticRegression: C = 1 / (reg n)), "
        "scikit-learn's default tol 1e-4 for both L-BFGS rows, NumPy backend",
        "LogisticRegression full fit: wall time of fit() to convergence; SoftmaxXP lbfgs: sum of "
        "History.epoch_time up to the first iteration whose test accuracy reaches "
        "LogisticRegression's final one, where a callback stops it (that time includes each "
        "iteration's test evaluation)",
        f"time to {fast_target}: LogisticRegression warm-started 5 iterations at a time, "
        "SoftmaxClassifier one partial_fit (one FAST epoch, with scikit-learn's input "
        "validation) at a time; both scored between steps off the clock",
        f"SoftmaxXP rows: {repeats} run(s); scikit-learn rows: {sklearn_repeats} run(s)",
    ]
    section.data = {"rows": rows, "lbfgs_ratio": lbfgs_ratio, "fast_speedup": fast_speedup}
    return section
