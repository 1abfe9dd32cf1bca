"""Pictures of every Pillow mode are read by their true range, or refused naming the mode."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_xp.cli._images import read_digit_images

PIL = pytest.importorskip("PIL.Image")


def paper_digit() -> np.ndarray:
    """A dark grey "7" on light grey paper, 0..1 (1 = white), 56 x 56: grey levels, so that a
    reader that clips a mode's range to 8 bits sees one colour."""
    page = np.full((56, 56), 0.85)
    page[10:16, 12:44] = 0.15  # the bar
    for row in range(16, 48):
        col = 40 - (row - 16) // 2
        page[row, col - 3 : col + 3] = 0.15  # the stem
    return page


def picture(mode: str, page: np.ndarray):
    """``page`` as a Pillow image of ``mode``, using the mode's whole range."""
    grey8 = (page * 255).round().astype(np.uint8)
    if mode.startswith("I;16"):
        big = "big" if mode == "I;16B" else "little"
        raw = (page * 65535).round().astype(">u2" if big == "big" else "<u2").tobytes()
        return PIL.frombytes(mode, page.shape[::-1], raw)
    if mode == "I":
        return PIL.fromarray((page * 1_000_000).round().astype(np.int32), mode="I")
    if mode == "F":
        return PIL.fromarray((page * 3.5).astype(np.float32), mode="F")
    if mode == "P-transparent":  # white paper as the transparent palette entry
        image = PIL.fromarray(grey8).convert("P")
        image.info["transparency"] = image.getpixel((0, 0))
        return image
    if mode in ("LA", "RGBA"):
        image = PIL.fromarray(grey8).convert(mode)
        image.putalpha(PIL.fromarray(np.where(page < 0.5, 255, 0).astype(np.uint8)))
        return image  # ink opaque, the paper transparent (composited over white)
    if mode == "1":
        return PIL.fromarray(np.where(page < 0.5, 0, 255).astype(np.uint8)).convert("1")
    return PIL.fromarray(grey8).convert(mode)


MODES = ["1", "L", "P", "P-transparent", "LA", "RGB", "RGBA", "CMYK"]
MODES += ["I;16", "I;16B", "I;16L", "I", "F"]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_reads_as_the_8_bit_grey_picture(tmp_path, mode):
    page = paper_digit()
    PIL.fromarray((page * 255).astype(np.uint8)).save(tmp_path / "reference.png")
    expected = read_digit_images(tmp_path / "reference.png")
    image = picture(mode, page)
    path = tmp_path / f"digit.{'tiff' if mode in ('CMYK', 'I;16B', 'I;16L', 'I', 'F') else 'png'}"
    if mode == "P-transparent":
        image.save(path, transparency=image.info["transparency"])
    else:
        image.save(path)
    got = read_digit_images(path)
    assert got.shape == (1, 784) and got.max() == pytest.approx(1.0, abs=0.02)
    np.testing.assert_allclose(got, expected, atol=0.02)


@pytest.mark.parametrize("mode", ["I", "F"])
def test_negative_values_are_refused_naming_the_mode(tmp_path, mode):
    values = np.full((28, 28), -5, np.int32 if mode == "I" else np.float32)
    PIL.fromarray(values, mode=mode).save(tmp_path / "neg.tiff")
    with pytest.raises(ValueError, match=rf"neg.tiff: a picture of mode '{mode}' must hold"):
        read_digit_images(tmp_path / "neg.tiff")


def test_an_unknown_mode_is_refused_naming_it(tmp_path):
    from types import SimpleNamespace

    from softmax_xp.cli import _images

    image = SimpleNamespace(mode="BGR;24", info={})  # a mode Pillow reads but we do not
    with pytest.raises(ValueError, match=r"pictures of mode 'BGR;24' are not read"):
        _images._grey_on_white(image, PIL)
