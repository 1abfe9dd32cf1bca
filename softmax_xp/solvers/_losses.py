"""The per-batch losses an SGD epoch reports, from the parts its steps recorded; shared by the
dense and the sparse epoch so both report the same numbers."""

from __future__ import annotations

from typing import Any

Array = Any

__all__ = ["batch_means"]


def batch_means(
    parts: Array, penalty: Array, n: int, batch_size: int, xp: Any, weights: Array | None = None
) -> Array:
    """Per-batch mean cross-entropy plus each batch's ``penalty`` (L2, or elastic net).

    ``parts`` holds one column per row: its softmax denominator ``s`` (over max-shifted logits)
    and its shifted true-class logit ``z_y``; the row's cross-entropy is ``log(s) - z_y``, times
    its weight when ``weights`` (in visiting order) are given.
    """
    rows = xp.log(parts[0, :]) - parts[1, :]
    if weights is not None:
        rows = rows * weights
    full = n // batch_size
    parts = []
    if full:
        block = xp.reshape(rows[: full * batch_size], (full, batch_size))
        parts.append(xp.sum(block, axis=1) / batch_size)
    if n > full * batch_size:
        parts.append(xp.reshape(xp.mean(rows[full * batch_size :]), (1,)))
    means = parts[0] if len(parts) == 1 else xp.concat(parts)
    return means + penalty
