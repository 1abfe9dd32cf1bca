"""Host random numbers: the array API has no random module, so every backend draws from one
``numpy.random.Generator`` and moves the draws to its device. Same seed, same trajectory."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "HostGenerator",
    "block_plan",
    "clone",
    "get_state",
    "initial_weights",
    "make_rng",
    "permutation",
    "rng_from_state",
]

HostGenerator = np.random.Generator  # the type of every generator here, for other modules' hints


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


def block_plan(
    rng: np.random.Generator, block_sizes: list[int]
) -> tuple[list[int], list[np.ndarray]]:
    """One epoch's visit of row blocks: ``(visit, orders)``.

    The draws, in this order: ``visit = permutation(len(block_sizes))``, the order the blocks are
    visited in; then, for each block in visiting order, ``permutation(block_sizes[i])``, the
    order of its rows. In-memory ``shuffle="blocks"`` and Dask training both draw exactly this,
    so they visit the same rows in the same order.
    """
    visit = [int(i) for i in rng.permutation(len(block_sizes))]
    return visit, [permutation(rng, block_sizes[i]) for i in visit]


def get_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state as a JSON-serialisable dict of strings and ints (for checkpoints)."""
    return dict(rng.bit_generator.state)


def rng_from_state(state: Any) -> np.random.Generator:
    """A PCG64 generator in ``state`` (from :func:`get_state`); ValueError if it is malformed."""
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise ValueError("the RNG state is not a PCG64 state")
    inner = state.get("state")
    numbers = (
        [*inner.values(), state.get("has_uint32"), state.get("uinteger")]
        if isinstance(inner, dict)
        else []
    )
    if len(numbers) != 4 or not all(type(v) is int for v in numbers):
        raise ValueError("the RNG state is malformed")
    bit_generator: np.random.BitGenerator = np.random.PCG64()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ValueError(f"the RNG state is malformed ({exc})") from None
    return np.random.Generator(bit_generator)


def clone(rng: np.random.Generator) -> np.random.Generator:
    """An independent copy of ``rng`` that draws the same numbers."""
    return rng_from_state(get_state(rng))
