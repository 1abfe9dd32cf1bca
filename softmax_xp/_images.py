"""Digit images from files (PNG, JPEG, .npy) as rows of 784 floats in [0, 1], MNIST-style."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["read_digit_images"]

SIDE = 28


def read_digit_images(path: str | os.PathLike) -> np.ndarray:
    """Read one file as an ``(n, 784)`` float32 array in [0, 1]: white digit on black, as in MNIST.

    A PNG/JPEG is converted to grayscale, resized to 28x28 and inverted when its background is
    light (a dark digit on white paper). A ``.npy`` holds one image (28x28 or 784) or a stack
    (n x 28 x 28 or n x 784); integers are read as 0..255, floats as 0..1.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such image file: {str(path)!r}.")
    if path.suffix.lower() == ".npy":
        return _from_npy(path)
    return _from_picture(path)


def _from_npy(path: Path) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{path}: not a plain numeric .npy file ({exc}).") from None
    pixels_shaped = data.shape[-2:] == (SIDE, SIDE) or data.shape[-1:] == (SIDE * SIDE,)
    if data.dtype.kind not in "uif" or not pixels_shaped:
        raise ValueError(
            f"{path}: expected 28x28 or 784 pixels (or a stack of them), "
            f"got shape {data.shape} of dtype {data.dtype}."
        )
    images = data.reshape(-1, SIDE * SIDE).astype(np.float32)
    if data.dtype.kind in "ui":
        images /= 255
    if images.size and (images.min() < 0 or images.max() > 1 or not np.isfinite(images).all()):
        raise ValueError(f"{path}: float pixels must be finite and lie in [0, 1].")
    return images


def _from_picture(path: Path) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ImportError(
            'Reading PNG/JPEG images needs Pillow: pip install "softmax-xp[plot]".'
        ) from None
    try:
        with Image.open(path) as image:
            gray = image.convert("L").resize((SIDE, SIDE), Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc}).") from None
    pixels = np.asarray(gray, dtype=np.float32) / 255
    if pixels.mean() > 0.5:
        pixels = 1 - pixels
    return pixels.reshape(1, SIDE * SIDE)
