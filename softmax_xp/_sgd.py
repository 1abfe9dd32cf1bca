"""One epoch of mini-batch SGD (with optional heavy-ball momentum) on any array-API backend.

Nothing here reads a device value back to the host: the caller gets the per-batch losses as one
device array and reads them once per epoch.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import device as device_of

from .functional import loss_and_grads

Array = Any


def sgd_epoch(
    X: Array,
    y: Array,
    order: Array,
    W: Array,
    b: Array,
    velocity: tuple[Array, Array] | None,
    *,
    lr: float,
    momentum: float,
    reg: float,
    batch_size: int,
    xp: Any,
) -> tuple[Array, Array, tuple[Array, Array] | None, Array]:
    """Visit ``X[order]`` in batches of ``batch_size``; return ``(W, b, velocity, batch_losses)``.

    Plain SGD: ``W <- W - lr * dW``. With ``velocity`` (heavy ball):
    ``v <- momentum * v - lr * dW``, ``W <- W + v``; likewise for ``b``.
    """
    n = X.shape[0]
    lr_ = xp.asarray(lr, dtype=W.dtype, device=device_of(W))
    mu_ = xp.asarray(momentum, dtype=W.dtype, device=device_of(W))
    losses = []
    for lo in range(0, n, batch_size):
        idx = order[lo : min(lo + batch_size, n)]
        loss, dW, db = loss_and_grads(
            xp.take(X, idx, axis=0), xp.take(y, idx, axis=0), W, b, reg, xp=xp
        )
        if velocity is None:
            W, b = W - lr_ * dW, b - lr_ * db
        else:
            vW, vb = mu_ * velocity[0] - lr_ * dW, mu_ * velocity[1] - lr_ * db
            W, b, velocity = W + vW, b + vb, (vW, vb)
        losses.append(loss)
    return W, b, velocity, xp.stack(losses)
