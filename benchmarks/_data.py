"""The data every section uses: MNIST in the chapter's split, and synthetic MNIST-shaped rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHAPTER_ACCURACY = 0.9227  # the chapter's MNIST test accuracy after 100 epochs
N_TRAIN = 50_000  # the chapter trains on the first 50,000 and validates on the last 10,000


@dataclass
class Mnist:
    """MNIST as the chapter uses it: float32 pixels in [0, 1], int64 labels."""

    X: np.ndarray  # (50000, 784) training rows
    y: np.ndarray
    X_test: np.ndarray  # (10000, 784)
    y_test: np.ndarray

    def head(self, n: int) -> Mnist:
        """The first ``n`` training rows (views) and the whole test set."""
        return Mnist(self.X[:n], self.y[:n], self.X_test, self.y_test)


def mnist() -> Mnist:
    """Load MNIST with the package's loader (the bundled copy; no network)."""
    from softmax_xp.datasets import load_mnist

    (X, y), (X_test, y_test) = load_mnist()
    return Mnist(X[:N_TRAIN], y[:N_TRAIN], X_test, y_test)


def synthetic(n: int, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of ``d`` uniform float32 features in [0, 1) with labels in ``range(k)``."""
    rng = np.random.default_rng(seed)
    return rng.random((n, d), dtype=np.float32), rng.integers(0, k, size=n, dtype=np.int64)
