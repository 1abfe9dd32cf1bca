"""The data a command reads: MNIST's splits, checked to be usable for a train run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..datasets import MNIST_FILES, DatasetError, load_mnist, load_mnist_test
from .common import VALIDATION_SIZE, CLIError

__all__ = ["check_data_sizes", "load_data"]


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
