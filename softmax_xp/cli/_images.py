"""Digit images from files (PNG, JPEG, .npy) as rows of 784 floats in [0, 1], MNIST-style.

Pictures get MNIST's own preprocessing: transparency composited over white, the ink found
(whichever of dark-on-light or light-on-dark the picture is), its bounding box scaled to fit
20x20 keeping the aspect ratio, and the result centred by its centre of mass in 28x28.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["mnist_style", "read_digit_images"]

SIDE = 28
BOX = 20  # MNIST fits each digit's bounding box into 20x20 ...
CENTRE = 14.0  # ... and puts its centre of mass here (the test set's mean is 14.0, 14.0)
INK = 0.1  # a pixel holds ink when it is this far from the background (on a 0..1 scale)
MAX_PIXELS = 50_000_000  # bigger pictures are refused before they are decoded


def read_digit_images(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one file as an ``(n, 784)`` float32 array in [0, 1]: white digit on black, as in MNIST.

    A PNG/JPEG becomes one MNIST-style image (see :func:`mnist_style`). A ``.npy`` holds one
    image (28x28 or 784) or a stack (n x 28 x 28 or n x 784) already in MNIST's layout; integers
    are read as 0..255, floats as 0..1. A file that is not what it claims, or too large to read
    safely, raises ValueError naming it.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"{str(path)!r} is a folder, not an image file; name its images (e.g. {path}/*.png)."
        )
    if path.exists() and not path.is_file():
        raise ValueError(
            f"{str(path)!r} is not a regular file (a device or a pipe); give an image."
        )
    if not path.is_file():
        raise FileNotFoundError(f"No such image file: {str(path)!r}.")
    if path.suffix.lower() == ".npy":
        return _from_npy(path)
    return _from_picture(path)


# -- .npy ----------------------------------------------------------------------------------------
def _npy_header(path: Path, f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of an open .npy file, checked before any data is read."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(f)
        raise ValueError(f"unsupported .npy version {version}")
    except ValueError as exc:
        raise ValueError(f"{path}: not a .npy file, or its header is damaged ({exc}).") from None


def _from_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        shape, fortran, dtype = _npy_header(path, f)
        pixels_shaped = shape[-2:] == (SIDE, SIDE) or shape[-1:] == (SIDE * SIDE,)
        if dtype.hasobject or dtype.kind not in "uif" or not pixels_shaped:
            raise ValueError(
                f"{path}: expected 28x28 or 784 pixels (or a stack of them) of a numeric dtype, "
                f"got shape {shape} of dtype {dtype}."
            )
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        available = os.fstat(f.fileno()).st_size - f.tell()
        if declared != available:
            raise ValueError(
                f"{path}: the header says {shape} {dtype} = {declared} bytes of data, but the "
                f"file holds {available}; it is truncated or damaged."
            )
        data = np.frombuffer(f.read(declared), dtype=dtype)
    data = data.reshape(shape, order="F" if fortran else "C")
    images = data.reshape(-1, SIDE * SIDE).astype(np.float32)
    if images.shape[0] == 0:
        raise ValueError(f"{path}: holds no images (shape {shape}).")
    if dtype.kind in "ui":
        images /= 255
    if images.size and (images.min() < 0 or images.max() > 1 or not np.isfinite(images).all()):
        raise ValueError(f"{path}: float pixels must be finite and lie in [0, 1].")
    return images


# -- pictures ------------------------------------------------------------------------------------
def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            'Reading PNG/JPEG images needs Pillow: pip install "softmax-xp[plot]".'
        ) from None
    return Image


def _from_picture(path: Path) -> np.ndarray:
    Image = _pillow()
    too_large = "; downscale it (a digit needs no more than a few hundred pixels a side)."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise ValueError(
                        f"{path}: the image is {width}x{height} pixels, more than the "
                        f"{MAX_PIXELS} this reader decodes{too_large}"
                    )
                gray = _grey_on_white(image, Image)
    except Image.DecompressionBombError as exc:
        raise ValueError(
            f"{path}: the image is too large to decode safely ({exc}){too_large}"
        ) from None
    except (OSError, SyntaxError, EOFError) as exc:  # Pillow's ways of saying "damaged"
        raise ValueError(f"{path}: not a readable image ({exc}).") from None
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: {exc}") from None
    return mnist_style(gray).reshape(1, SIDE * SIDE)


# Modes read through Pillow's 8-bit conversion; 16-bit, 32-bit and float modes are read below.
_EIGHT_BIT = {"1", "L", "P", "LA", "PA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"}
_EIGHT_BIT |= {"LAB", "HSV"}
_ALPHA = {"RGBA", "LA", "PA", "RGBa", "La"}


def _grey_on_white(image: Any, Image: Any) -> np.ndarray:
    """The picture as floats in [0, 1], transparent parts composited over white.

    8-bit modes are scaled by 255, 16-bit greys (``I;16``, ``I;16B``, ...) by 65535, and 32-bit
    integer (``I``) and float (``F``) greys by their largest value (left as they are when that
    is at most 1); other modes are refused, naming the mode.
    """
    mode = image.mode
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.float32) / 65535
    if mode in ("I", "F"):
        return _by_largest(np.asarray(image).astype(np.float64), mode)
    if mode not in _EIGHT_BIT:
        raise ValueError(
            f"pictures of mode {mode!r} are not read; save it as an 8-bit grey or RGB PNG "
            "(or a 16-bit grey one)."
        )
    if mode in _ALPHA or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


def _by_largest(pixels: np.ndarray, mode: str) -> np.ndarray:
    """32-bit integer or float grey values in [0, 1], divided by the largest when above 1."""
    if not np.isfinite(pixels).all() or (pixels.size and pixels.min() < 0):
        raise ValueError(
            f"a picture of mode {mode!r} must hold finite values of 0 or more; save it as an "
            "8-bit or 16-bit grey PNG."
        )
    largest = float(pixels.max()) if pixels.size else 0.0
    return (pixels / largest if largest > 1 else pixels).astype(np.float32)


def mnist_style(gray: np.ndarray) -> np.ndarray:
    """A ``28 x 28`` MNIST-style image (white ink on black, in [0, 1]) from a grey picture.

    The background is the median of the border pixels; ink is what differs from it, scaled so the
    strongest ink is 1. The ink's bounding box is resized to fit ``20 x 20`` (aspect ratio kept,
    Lanczos, so thin strokes are anti-aliased as in MNIST) and placed so that its centre of mass
    lies at (14, 14). A picture without ink gives a black image.
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    ink = gray - background if background < 0.5 else background - gray
    strongest = float(ink.max())
    out = np.zeros((SIDE, SIDE), dtype=np.float32)
    if strongest <= 0:
        return out
    ink = np.clip(ink / strongest, 0, 1)
    rows = np.flatnonzero((ink > INK).any(axis=1))
    cols = np.flatnonzero((ink > INK).any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height, width = ink.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    Image = _pillow()
    box = Image.fromarray(ink).resize(size, Image.Resampling.LANCZOS)
    box = np.clip(np.asarray(box, dtype=np.float32), 0, 1)
    total = box.sum()
    if total <= 0:
        return out
    cy = (box.sum(axis=1) * np.arange(box.shape[0])).sum() / total
    cx = (box.sum(axis=0) * np.arange(box.shape[1])).sum() / total
    top = int(np.clip(round(CENTRE - cy), 0, SIDE - box.shape[0]))
    left = int(np.clip(round(CENTRE - cx), 0, SIDE - box.shape[1]))
    out[top : top + box.shape[0], left : left + box.shape[1]] = box
    return out
