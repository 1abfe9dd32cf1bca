"""Pictures of digits as people make them: tightly cropped, dark on white, or transparent PNGs.

Test-set digits re-rendered that way must be read about as well as the same digits given as
arrays, by a model trained here in a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from softmax_xp import SoftmaxXP, load_mnist, to_numpy
from softmax_xp.cli._images import read_digit_images

Image = pytest.importorskip("PIL.Image")
N_TEST = 200


@pytest.fixture(scope="module")
def model_and_digits():
    (X, y), (X_test, y_test) = load_mnist()
    model = SoftmaxXP(784, 10, lr=0.5, backend="numpy", seed=0)
    model.train(X[:12000], y[:12000], epochs=3, batch_size=64)
    return model, X_test[:N_TEST], y_test[:N_TEST]


def _cropped(x: np.ndarray, scale: int) -> np.ndarray:
    """The digit cut to its ink's bounding box and enlarged ``scale`` times, 0..255 ink."""
    digit = (x.reshape(28, 28) * 255).astype(np.uint8)
    rows, cols = np.flatnonzero(digit.any(axis=1)), np.flatnonzero(digit.any(axis=0))
    tight = Image.fromarray(digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
    return np.asarray(tight.resize((tight.width * scale, tight.height * scale), Image.BICUBIC))


def _dark_on_white(x: np.ndarray, path: Path) -> Path:
    Image.fromarray(255 - _cropped(x, 4)).save(path)
    return path


def _transparent(x: np.ndarray, path: Path) -> Path:
    """Black ink whose opacity is the digit, on a fully transparent background."""
    alpha = _cropped(x, 3)
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., 3] = alpha
    Image.fromarray(rgba).save(path)
    return path


@pytest.mark.parametrize("render", [_dark_on_white, _transparent])
def test_rendered_digits_are_read_like_the_arrays(model_and_digits, tmp_path, render):
    model, X, y = model_and_digits
    arrays_accuracy = float((to_numpy(model.predict(X)) == y).mean())
    images = np.concatenate(
        [read_digit_images(render(x, tmp_path / f"{i}.png")) for i, x in enumerate(X)]
    )
    assert images.shape == (N_TEST, 784) and images.min() >= 0 and images.max() <= 1
    pictures_accuracy = float((to_numpy(model.predict(images)) == y).mean())
    assert arrays_accuracy > 0.8
    assert pictures_accuracy >= arrays_accuracy - 0.05, (pictures_accuracy, arrays_accuracy)


def test_a_picture_without_ink_is_black(tmp_path):
    Image.new("L", (40, 30), 255).save(tmp_path / "blank.png")
    assert (read_digit_images(tmp_path / "blank.png") == 0).all()


def test_ink_is_boxed_into_20x20_and_centred(tmp_path):
    """A dark bar 10 wide and 100 tall on white becomes 2x20 of white ink around (14, 14)."""
    picture = np.full((300, 200), 255, np.uint8)
    picture[50:150, 120:130] = 0
    Image.fromarray(picture).save(tmp_path / "bar.png")
    image = read_digit_images(tmp_path / "bar.png").reshape(28, 28)
    rows, cols = np.flatnonzero(image.max(axis=1) > 0.5), np.flatnonzero(image.max(axis=0) > 0.5)
    assert len(rows) == 20 and 1 <= len(cols) <= 3
    total = image.sum()
    centre = (image.sum(axis=1) @ np.arange(28) / total, image.sum(axis=0) @ np.arange(28) / total)
    np.testing.assert_allclose(centre, (14, 14), atol=0.6)
