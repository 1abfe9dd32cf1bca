"""Every figure renders, has the expected axes and titles, and saves a PNG."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from softmax_xp import SoftmaxXP, plots
from softmax_xp._backend import to_numpy
from softmax_xp.metrics import confusion_matrix

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _is_png(path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def test_training_curves(tmp_path):
    history = SimpleNamespace(loss=[1.2, 0.8, 0.5, 0.4], val_accuracy=[0.7, 0.8, 0.85, 0.9])
    fig = plots.plot_training_curves(history, path=tmp_path / "curves.png")
    assert _is_png(tmp_path / "curves.png")
    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_title() == "Training loss" and acc_ax.get_title() == "Validation accuracy"
    assert loss_ax.get_xlabel() == acc_ax.get_xlabel() == "Epoch"
    np.testing.assert_allclose(loss_ax.lines[0].get_ydata(), history.loss)
    np.testing.assert_allclose(acc_ax.lines[0].get_xdata(), [1, 2, 3, 4])


def test_training_curves_without_validation_and_from_dict():
    fig = plots.plot_training_curves({"loss": [1.0, 0.5], "val_accuracy": []})
    acc_ax = fig.axes[1]
    assert not acc_ax.lines
    assert any("no validation data" in text.get_text() for text in acc_ax.texts)


def test_confusion_matrix_figure(tmp_path):
    cm = np.array([[50, 2, 0], [3, 40, 7], [0, 1, 60]])
    fig = plots.plot_confusion_matrix(cm, class_names=["a", "b", "c"], path=tmp_path / "cm.png")
    assert _is_png(tmp_path / "cm.png")
    ax = _image_axes(fig)[0]
    assert ax.get_xlabel() == "Predicted label" and ax.get_ylabel() == "True label"
    assert ax.get_title() == "Confusion matrix"
    texts = {t.get_text(): t.get_color() for t in ax.texts}
    assert len(ax.texts) == 9 and texts["60"] == "white" and texts["2"] == "black"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]


def _cell_rgb(fig, i, j):
    image = _image_axes(fig)[0].images[0]
    return np.asarray(image.to_rgba(image.get_array()))[i, j, :3]


@pytest.mark.parametrize("normalize", [False, True])
def test_confusion_matrix_shows_rare_errors(normalize):
    """MNIST-like counts: 1000 right per class, a few errors. The errors must be coloured, not
    near-white as on a linear scale, and an empty cell must stay white."""
    cm = np.diag([1000, 1100, 950]) + np.array([[0, 10, 0], [1, 0, 30], [0, 0, 0]])
    fig = plots.plot_confusion_matrix(cm, normalize=normalize)
    white = np.ones(3)
    ten, one, empty = _cell_rgb(fig, 0, 1), _cell_rgb(fig, 1, 0), _cell_rgb(fig, 0, 2)
    assert np.abs(ten - white).max() > 0.25  # 1% of its row: clearly blue
    assert np.abs(one - white).max() > 0.03  # a single error is still tinted
    assert np.abs(ten - white).max() > np.abs(one - white).max()
    np.testing.assert_allclose(empty, white)
    linear = plots.plot_confusion_matrix(cm, normalize=normalize, scale="linear")
    assert np.abs(_cell_rgb(linear, 0, 1) - white).max() < 0.1  # why log is the default
    with pytest.raises(ValueError, match="scale"):
        plots.plot_confusion_matrix(cm, scale="sqrt")


def test_confusion_matrix_figure_normalized_from_backend(arrays):
    cm = confusion_matrix(arrays([0, 0, 1, 2], "int64"), arrays([0, 1, 1, 2], "int64"), 4)
    fig = plots.plot_confusion_matrix(cm, normalize=True)
    ax = _image_axes(fig)[0]
    assert "normalized" in ax.get_title()
    cells = [t.get_text() for t in ax.texts]
    assert cells[:2] == ["0.50", "0.50"] and cells[-1] == "0.00"  # empty row 3 stays 0


def test_weight_templates_png(tmp_path):
    W = np.random.default_rng(0).normal(size=(784, 10))
    fig = plots.plot_weight_templates(W, path=tmp_path / "W.png")
    assert _is_png(tmp_path / "W.png")
    assert [ax.get_title() for ax in _image_axes(fig)] == [str(k) for k in range(10)]


def test_weight_templates_on_every_backend(arrays):
    W = arrays(np.random.default_rng(1).normal(size=(784, 10)))
    fig = plots.plot_weight_templates(W, class_names=[f"digit {k}" for k in range(10)])
    image_axes = _image_axes(fig)
    assert len(image_axes) == 10
    assert image_axes[3].get_title() == "digit 3"
    vmin, vmax = image_axes[0].images[0].get_clim()
    assert vmin == -vmax > -np.inf  # symmetric around 0
    assert vmax == pytest.approx(np.abs(arrays.host(W)).max())
    assert image_axes[0].images[0].get_array().shape == (28, 28)


def test_weight_templates_of_a_model(backend):
    model = SoftmaxXP(784, 10, backend=backend.name, seed=0)
    image = _image_axes(plots.plot_weight_templates(model))[4].images[0].get_array()
    np.testing.assert_array_equal(image, to_numpy(model.W)[:, 4].reshape(28, 28))


def test_weight_templates_shape_mismatch():
    with pytest.raises(ValueError, match="784"):
        plots.plot_weight_templates(np.zeros((100, 10)))


def test_misclassified(tmp_path, arrays):
    X = arrays(np.random.default_rng(2).random((12, 784)))
    y_true = arrays([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1], "int64")
    y_pred = arrays([0, 1, 5, 3, 4, 5, 6, 7, 8, 9, 0, 7], "int64")
    fig = plots.plot_misclassified(X, y_true, y_pred)
    titles = [ax.get_title() for ax in _image_axes(fig)]
    assert titles == ["true 2 / pred 5", "true 1 / pred 7"]


def test_misclassified_png_and_limit(tmp_path):
    rng = np.random.default_rng(3)
    X, y_true = rng.random((40, 28, 28)), np.zeros(40, dtype=np.int64)
    fig = plots.plot_misclassified(X, y_true, y_true + 1, max_images=6, path=tmp_path / "m.png")
    assert _is_png(tmp_path / "m.png")
    assert len(_image_axes(fig)) == 6
    assert all(ax.get_title() == "true 0 / pred 1" for ax in _image_axes(fig))


def test_misclassified_none(tmp_path):
    y = np.arange(5)
    fig = plots.plot_misclassified(np.zeros((5, 784)), y, y, path=tmp_path / "none.png")
    assert _is_png(tmp_path / "none.png")
    assert not _image_axes(fig)
    assert any("No misclassified" in t.get_text() for ax in fig.axes for t in ax.texts)


def test_sigmoid(tmp_path):
    fig = plots.plot_sigmoid(path=tmp_path / "sigmoid.png")
    assert _is_png(tmp_path / "sigmoid.png")
    (ax,) = fig.axes
    assert ax.get_xlabel() == "z" and ax.get_ylabel() == "σ(z)" and ax.get_title()
    z, s = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
    assert z[0] == -8 and z[-1] == 8
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-z)))
    assert any(np.allclose(line.get_ydata(), 0.5) for line in ax.lines[1:])


def test_softmax_example(tmp_path):
    fig = plots.plot_softmax_example(path=tmp_path / "softmax.png")
    assert _is_png(tmp_path / "softmax.png")
    (ax,) = fig.axes
    heights = [patch.get_height() for patch in ax.patches]
    np.testing.assert_allclose(heights, [0.249, 0.664, 0.087], atol=5e-4)
    assert [t.get_text() for t in ax.texts] == ["0.249", "0.664", "0.087"]
    assert "1.23" in ax.get_xticklabels()[1].get_text()
    assert ax.get_title() and ax.get_ylabel() and ax.get_xlabel()


def test_missing_matplotlib_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "softmax-xp\[plot\]"'):
        plots.plot_sigmoid()
