"""Figures for the chapter: training curves, confusion matrix, weight templates, mistakes.

matplotlib is an optional extra (``pip install "softmax-xp[plot]"``) imported only when a function
runs. Every function returns the matplotlib ``Figure``; given ``path=`` it also saves it as a PNG
(dpi 120) and closes it. Arrays of any backend are accepted: they are copied to the host first.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import array_api_compat
import numpy as np

from softmax_xp._atomic import write_atomic
from softmax_xp._backend import to_numpy

__all__ = [
    "plot_confusion_matrix",
    "plot_misclassified",
    "plot_sigmoid",
    "plot_softmax_example",
    "plot_training_curves",
    "plot_weight_templates",
    "save_png",
]

DPI = 120
_INSTALL = 'matplotlib is required for plotting: pip install "softmax-xp[plot]"'


def _pyplot() -> Any:
    """Import pyplot lazily; pick the non-interactive "Agg" backend on a headless Linux box."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc
    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if headless and "MPLBACKEND" not in os.environ and "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig: Any, path: str | os.PathLike[str] | None) -> Any:
    """Save ``fig`` as a PNG at ``path`` (atomically, creating its folder) and close it; return
    ``fig``."""
    if path is not None:
        try:
            write_atomic(Path(path), lambda f: save_png(fig, f))
        finally:
            close(fig)
    return fig


def save_png(fig: Any, file: Any) -> None:
    """Write ``fig`` as a PNG (dpi 120) to ``file``, a path or an open binary file.

    Examples
    --------
    >>> import io
    >>> from softmax_xp.plots import close, plot_sigmoid, save_png
    >>> fig = plot_sigmoid()
    >>> buffer = io.BytesIO()
    >>> save_png(fig, buffer)
    >>> buffer.getvalue()[:4]
    b'\x89PNG'
    >>> close(fig)
    """
    fig.savefig(file, dpi=DPI, format="png", bbox_inches="tight")


def close(fig: Any) -> None:
    """Close ``fig``, freeing its memory.

    Examples
    --------
    >>> from softmax_xp.plots import close, plot_sigmoid
    >>> close(plot_sigmoid())
    """
    _pyplot().close(fig)


def _host_1d(values: Any) -> np.ndarray:
    """A sequence of numbers (Python floats, 0-d arrays) or an array, as a float64 NumPy vector."""
    if array_api_compat.is_array_api_obj(values):
        return np.asarray(to_numpy(values), dtype=np.float64).ravel()
    return np.asarray([float(to_numpy(v)) for v in values], dtype=np.float64)


def _history_field(history: Any, name: str) -> np.ndarray:
    """``history.name`` or ``history[name]`` (a History, a dict, any object with lists)."""
    values = getattr(history, name, None)
    if values is None and isinstance(history, dict):
        values = history.get(name)
    return _host_1d(values if values is not None else [])


def _class_names(names: Sequence[str] | None, k: int) -> list[str]:
    if names is None:
        return [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} entries, but there are {k} classes.")
    return [str(name) for name in names]


def plot_training_curves(history: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """Two panels: training loss per epoch and validation accuracy per epoch.

    ``history`` has list attributes (or keys) ``loss`` and ``val_accuracy``; an empty
    ``val_accuracy`` leaves a note in the right panel.

    Examples
    --------
    >>> from softmax_xp.plots import plot_training_curves
    >>> history = {"loss": [0.9, 0.5, 0.4], "val_accuracy": [0.86, 0.89, 0.90]}
    >>> fig = plot_training_curves(history)
    >>> [ax.get_title() for ax in fig.axes]
    ['Training loss', 'Validation accuracy']

    Given a path, the figure is saved as a PNG and closed:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "curves.png")
    >>> _ = plot_training_curves(history, path=path)
    >>> os.path.getsize(path) > 0
    True
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    loss = _history_field(history, "loss")
    val = _history_field(history, "val_accuracy")
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")

    ax_loss.plot(np.arange(1, loss.size + 1), loss, marker="o", markersize=3, color="C0")
    ax_loss.set(title="Training loss", xlabel="Epoch", ylabel="Loss (cross-entropy + L2)")
    ax_acc.set(title="Validation accuracy", xlabel="Epoch", ylabel="Accuracy")
    if val.size:
        epochs = np.arange(1, val.size + 1)
        ax_acc.plot(epochs, val, marker="o", markersize=3, color="C1")
        best = int(np.argmax(val))
        ax_acc.annotate(
            f"best {val[best]:.4f} (epoch {best + 1})",
            xy=(epochs[best], val[best]),
            xytext=(0.97, 0.06),
            textcoords="axes fraction",
            ha="right",
            arrowprops={"arrowstyle": "->", "color": "0.4"},
        )
    else:
        ax_acc.text(
            0.5,
            0.5,
            "no validation data\n(pass X_val, y_val to train)",
            ha="center",
            va="center",
            transform=ax_acc.transAxes,
            color="0.4",
        )
        ax_acc.set_xticks([])
        ax_acc.set_yticks([])
    for ax in (ax_loss, ax_acc) if val.size else (ax_loss,):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    return _finish(fig, path)


def plot_confusion_matrix(
    cm: Any,
    class_names: Sequence[str] | None = None,
    path: str | os.PathLike[str] | None = None,
    normalize: bool = False,
    scale: str = "log",
) -> Any:
    """Heatmap of a (K, K) confusion matrix (rows = true, columns = predicted), every cell labelled.

    ``normalize=True`` shows each row divided by its sum (recall on the diagonal). ``scale="log"``
    (the default) colours cells on a logarithmic scale, so that errors a hundred times rarer than
    the correct answers on the diagonal still show; empty cells stay white. ``scale="linear"``
    colours from 0 to the largest cell.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp.metrics import confusion_matrix
    >>> from softmax_xp.plots import plot_confusion_matrix
    >>> cm = confusion_matrix(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2]), 3)
    >>> fig = plot_confusion_matrix(cm, class_names=["a", "b", "c"], normalize=True)
    >>> fig.axes[0].get_title()
    'Confusion matrix (normalized by true class)'
    """
    plt = _pyplot()
    from matplotlib.colors import LogNorm, Normalize

    if scale not in ("log", "linear"):
        raise ValueError(f"scale must be 'log' or 'linear', got {scale!r}.")
    counts = np.asarray(to_numpy(cm))
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"cm must be a square (K, K) matrix, got shape {counts.shape}.")
    k = counts.shape[0]
    names = _class_names(class_names, k)
    if normalize:
        rows = counts.sum(axis=1, keepdims=True).astype(np.float64)
        values = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
        cell = "{:.2f}"
        # the smallest non-zero fraction: one sample of the largest row
        floor = 0.5 / max(float(rows.max()) if rows.size else 1.0, 1.0)
    else:
        values = counts
        cell = "{:d}" if np.issubdtype(counts.dtype, np.integer) else "{:g}"
        floor = 0.5  # a single sample is coloured (lightly), an empty cell is not
    vmax = 1.0 if normalize else max(float(values.max()) if values.size else 0.0, 1.0)
    if scale == "log":
        norm: Normalize = LogNorm(vmin=floor, vmax=max(vmax, 2 * floor))
        shown = np.ma.masked_less_equal(np.asarray(values, dtype=np.float64), 0.0)
    else:
        norm = Normalize(vmin=0.0, vmax=vmax)
        shown = values
    cmap = plt.get_cmap("Blues").with_extremes(bad="white")

    size = max(4.5, 0.55 * k + 2.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size), layout="constrained")
    image = ax.imshow(shown, cmap=cmap, norm=norm, interpolation="nearest")
    label = "fraction of the true class" if normalize else "count"
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=f"{label} ({scale} scale)")
    fontsize = 9 if k <= 12 else 7
    for i in range(k):
        for j in range(k):
            value = values[i, j]
            text = cell.format(value.item() if hasattr(value, "item") else value)
            dark = value > 0 and float(norm(float(value))) > 0.5
            color = "white" if dark else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=fontsize)
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(range(k), names)
    ax.set(xlabel="Predicted label", ylabel="True label")
    ax.set_title("Confusion matrix" + (" (normalized by true class)" if normalize else ""))
    return _finish(fig, path)


def plot_weight_templates(
    W: Any,
    image_shape: tuple[int, int] = (28, 28),
    class_names: Sequence[str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """Each column of W (input_dim x K) as an image, on one colour scale symmetric around 0.

    ``W`` may also be a trained SoftmaxXP, whose ``W`` is drawn. Red pixels push towards the
    class, blue pixels away from it.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp.plots import plot_weight_templates
    >>> W = np.random.default_rng(0).normal(size=(784, 10))
    >>> fig = plot_weight_templates(W)
    >>> len(fig.axes)  # ten templates and the colour bar
    11
    """
    plt = _pyplot()
    weights = np.asarray(to_numpy(getattr(W, "W", W)), dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] != math.prod(image_shape):
        raise ValueError(
            f"W must have shape (prod(image_shape), K) = ({math.prod(image_shape)}, K); "
            f"got {weights.shape}."
        )
    k = weights.shape[1]
    names = _class_names(class_names, k)
    ncols = min(k, 5)
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(2.0 * ncols + 1.0, 2.2 * nrows + 0.4),
        squeeze=False,
        layout="constrained",
    )
    vmax = float(np.abs(weights).max()) or 1.0
    image = None
    for index, ax in enumerate(axes.flat):
        if index >= k:
            ax.remove()
            continue
        template = weights[:, index].reshape(image_shape)
        image = ax.imshow(template, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(names[index])
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
    fig.suptitle("Learned weight templates (red: evidence for the class, blue: against)")
    return _finish(fig, path)


def plot_misclassified(
    X: Any,
    y_true: Any,
    y_pred: Any,
    max_images: int = 25,
    image_shape: tuple[int, int] = (28, 28),
    path: str | os.PathLike[str] | None = None,
) -> Any:
    """The first ``max_images`` samples with ``y_pred != y_true``, in gray, titled with both
    labels; a figure saying so when there are none.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp.plots import plot_misclassified
    >>> X = np.random.default_rng(0).random((4, 784))
    >>> fig = plot_misclassified(X, np.array([0, 1, 2, 3]), np.array([0, 7, 2, 5]))
    >>> fig.get_suptitle()
    'Misclassified samples (2 shown of 2 errors)'
    """
    plt = _pyplot()
    images = np.asarray(to_numpy(X))
    true = np.asarray(to_numpy(y_true)).ravel()
    pred = np.asarray(to_numpy(y_pred)).ravel()
    if not images.shape[0] == true.shape[0] == pred.shape[0]:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"[{images.shape[0]}, {true.shape[0]}, {pred.shape[0]}]"
        )
    wrong = np.flatnonzero(true != pred)
    shown = wrong[: max(int(max_images), 0)]
    if shown.size == 0:
        fig, ax = plt.subplots(figsize=(5, 2.5), layout="constrained")
        ax.text(0.5, 0.5, "No misclassified samples", ha="center", va="center", fontsize=14)
        ax.set_axis_off()
        ax.set_title(f"Misclassified samples (0 of {true.size})")
        return _finish(fig, path)

    ncols = math.ceil(math.sqrt(shown.size))
    nrows = math.ceil(shown.size / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(1.6 * ncols, 1.8 * nrows + 0.5),
        squeeze=False,
        layout="constrained",
    )
    for slot, ax in enumerate(axes.flat):
        if slot >= shown.size:
            ax.remove()
            continue
        i = shown[slot]
        ax.imshow(images[i].reshape(image_shape), cmap="gray", interpolation="nearest")
        ax.set_title(f"true {true[i]} / pred {pred[i]}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Misclassified samples ({shown.size} shown of {wrong.size} errors)")
    return _finish(fig, path)


def plot_sigmoid(path: str | os.PathLike[str] | None = None) -> Any:
    """The logistic sigmoid σ(z) = 1 / (1 + e^{-z}) on [-8, 8], with the 0.5 threshold.

    Examples
    --------
    >>> from softmax_xp.plots import plot_sigmoid
    >>> fig = plot_sigmoid()
    >>> fig.axes[0].get_title()
    'The sigmoid function'
    """
    plt = _pyplot()
    z = np.linspace(-8.0, 8.0, 401)
    sigma = np.exp(-np.logaddexp(0.0, -z))  # 1 / (1 + e^{-z}) without overflow
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot(z, sigma, color="C0", linewidth=2, label=r"$\sigma(z) = 1 / (1 + e^{-z})$")
    ax.axhline(0.5, color="0.5", linestyle="--", linewidth=1, label="σ(z) = 0.5")
    ax.axvline(0.0, color="0.8", linewidth=1)
    ax.set(
        xlabel="z", ylabel="σ(z)", title="The sigmoid function", xlim=(-8, 8), ylim=(-0.05, 1.05)
    )
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    return _finish(fig, path)


def plot_softmax_example(
    z: Sequence[float] = (0.25, 1.23, -0.8), path: str | os.PathLike[str] | None = None
) -> Any:
    """Bars of softmax(z)_i = e^{z_i} / Σ_j e^{z_j}, each labelled with its probability.

    Examples
    --------
    >>> from softmax_xp.plots import plot_softmax_example
    >>> fig = plot_softmax_example([2.0, 1.0, 0.1])
    >>> [text.get_text() for text in fig.axes[0].texts]  # the bars' labels
    ['0.659', '0.242', '0.099']
    """
    plt = _pyplot()
    logits = _host_1d(z)
    shifted = np.exp(logits - logits.max())  # stable: the max is subtracted first
    probs = shifted / shifted.sum()
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    positions = np.arange(logits.size)
    bars = ax.bar(positions, probs, color=[f"C{i % 10}" for i in range(logits.size)])
    ax.bar_label(bars, labels=[f"{p:.3f}" for p in probs], padding=3)
    ax.set_xticks(positions, [f"$z_{{{i + 1}}}$ = {v:g}" for i, v in enumerate(logits)])
    ax.set(
        xlabel="logit",
        ylabel="probability softmax(z)",
        ylim=(0, min(1.0, probs.max()) * 1.15),
        title="Softmax turns logits into probabilities (they sum to 1)",
    )
    ax.grid(True, axis="y", alpha=0.3)
    return _finish(fig, path)
