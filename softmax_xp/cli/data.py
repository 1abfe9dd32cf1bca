"""The data a command reads: MNIST's splits, checked to be usable for a train run."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import MNIST_FILES, DatasetError, load_mnist, load_mnist_test
from ..datasets.mnist import MNIST_SHA256
from .common import VALIDATION_SIZE, CLIError

__all__ = ["check_data_sizes", "is_mnist_test", "load_data"]


def load_data(data_dir: Path | None, download: bool = False, test_only: bool = False) -> Any:
    """MNIST's two splits, or (``test_only``) its test split alone: the two t10k files."""
    try:
        if test_only:
            return load_mnist_test(data_dir, download=download)
        return load_mnist(data_dir, download=download)
    except (DatasetError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None


def check_data_sizes(data_dir: Path | None, n_train: int, n_test: int) -> None:
    """The test set is not empty and the training set has more than the validation images."""
    where = f"--data-dir {data_dir}" if data_dir is not None else "MNIST"
    if n_test == 0:
        raise CLIError(
            f"{where}: the test set ({MNIST_FILES[2]}, {MNIST_FILES[3]}) has no images; "
            "train needs test images to report on."
        )
    if n_train <= VALIDATION_SIZE:
        raise CLIError(
            f"{where}: the training set ({MNIST_FILES[0]}) has {n_train} images; train needs "
            f"more than {VALIDATION_SIZE:,} (the last {VALIDATION_SIZE:,} are held out for "
            "validation)."
        )


def is_mnist_test(X_test: Any, y_test: Any) -> bool:
    """Whether ``(X_test, y_test)`` is MNIST's own test set (not Fashion-MNIST or another set in
    its layout): the IDX files they were read from have MNIST's SHA-256."""
    X, y = np.asarray(X_test), np.asarray(y_test)
    if X.shape != (10_000, 784) or y.shape != (10_000,):
        return False
    pixels = np.rint(X * 255).astype(np.uint8)
    if not np.array_equal(pixels.astype(np.float32) / np.float32(255), X):
        return False  # not bytes over 255: not read from IDX files
    images = np.array([0x803, 10_000, 28, 28], ">u4").tobytes() + pixels.tobytes()
    labels = np.array([0x801, 10_000], ">u4").tobytes() + y.astype(np.uint8).tobytes()
    return (
        hashlib.sha256(images).hexdigest() == MNIST_SHA256["t10k-images-idx3-ubyte"]
        and hashlib.sha256(labels).hexdigest() == MNIST_SHA256["t10k-labels-idx1-ubyte"]
    )
