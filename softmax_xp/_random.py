"""Host random numbers: the array API has no random module, so every backend draws from one
``numpy.random.Generator`` and moves the draws to its device. Same seed, same trajectory."""

from __future__ import annotations

import numpy as np

__all__ = ["initial_weights", "make_rng", "permutation"]


def make_rng(seed: int | None) -> np.random.Generator:
    """A PCG64 generator; ``seed=None`` draws fresh entropy from the OS."""
    return np.random.default_rng(seed)


def initial_weights(
    rng: np.random.Generator, shape: tuple[int, int], scale: float = 0.001
) -> np.ndarray:
    """``scale * N(0, 1)`` of ``shape``, float64 on the host (the caller casts to its dtype)."""
    return scale * rng.standard_normal(shape)


def permutation(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random permutation of ``range(n)`` as int64."""
    return rng.permutation(n).astype(np.int64, copy=False)
