"""One SGD epoch on JAX as one compiled program; the L-BFGS objective compiled too.

JAX arrays are immutable and each eager call costs ~10 us of dispatch, so the in-place loop of
:mod:`.sgd` would run ~11x slower than on NumPy. Here the whole epoch (gather, forward, softmax,
gradient, update, momentum, sample weights, the elastic net's cumulative L1 clip, the short last
batch) is one ``jax.jit`` program: one
``lax.scan`` over the batches. The maths is that of :func:`softmax_xp.solvers.sgd.sgd_epoch`, step
for step, in the same batch order (the caller's ``order``, drawn on the host), so the weights
agree with NumPy's to rounding.

Programs are compiled once per shape, dtype and batch size and reused across epochs and models:
the step size, momentum and L2 strength enter as values, so ``lr_decay`` recompiles nothing.
Matrix products run at full precision (no TF32 on GPUs), as on every other backend.

Imported only for the JAX backend.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

Array = Any
Velocity = tuple[Array, Array] | None

__all__ = ["jax_objective", "sgd_epoch_jax"]

_HIGHEST = lax.Precision.HIGHEST


def sgd_epoch_jax(
    X: Array,
    y: Array,
    order: Array,
    W: Array,
    b: Array,
    velocity: Velocity,
    *,
    lr: float,
    momentum: float,
    reg: float,
    batch_size: int,
    xp: Any = None,
    weights: Array | None = None,
    l1_ratio: float = 0.0,
    fit_intercept: bool = True,
) -> tuple[Array, Array, Velocity, Array]:
    """:func:`softmax_xp.solvers.sgd.sgd_epoch` for JAX arrays: ``(W, b, velocity, losses)``.

    Plain SGD: ``W <- (1 - lr reg) W - lr/|B| X_B^T (P_B - Y_B)``, ``b <- b - lr/|B| sum_B (p - y)``.
    With ``velocity`` (heavy ball): ``v <- momentum v - lr/|B| X_B^T (P_B - Y_B) - lr reg W``,
    ``W <- W + v``, likewise for ``b`` (without the L2 term). Each batch's loss is its mean
    (weighted) cross-entropy plus ``0.5 reg ||W||^2`` at the batch's starting weights.
    ``l1_ratio > 0``: the elastic net of :func:`softmax_xp.solvers.sgd.sgd_epoch`, its L2 part
    ``reg (1 - l1_ratio)`` in the step and its L1 part ``reg l1_ratio`` as the cumulative clip
    after it. ``fit_intercept=False``: ``b`` and its velocity stay as given. ``xp`` is
    accepted for the common signature and not used.
    """
    n = X.shape[0]
    batch_size = min(batch_size, max(n, 1))
    last = n - (n // batch_size) * batch_size or batch_size
    reg_l2 = reg * (1.0 - l1_ratio) if l1_ratio else reg
    # The constants as NumPy's epoch makes them: Python floats, rounded once to W's dtype.
    steps = (lr / batch_size, lr / last)
    smooth = (lr * reg_l2, 1.0 - lr * reg_l2, momentum, 0.5 * reg_l2)
    consts = jnp.asarray(
        [*steps, *smooth, lr * reg * l1_ratio, reg * l1_ratio],
        dtype=W.dtype,
        device=W.device,
    )
    if weights is not None:
        weights = weights.astype(W.dtype)
    result: tuple[Array, Array, Velocity, Array] = _epoch(
        X, y, order, W, b, velocity, weights, consts,
        batch_size=batch_size, l1=bool(l1_ratio), intercept=bool(fit_intercept),
    )  # fmt: skip
    return result


@functools.partial(jax.jit, static_argnames=("batch_size", "l1", "intercept"))
def _epoch(
    X: Array,
    y: Array,
    order: Array,
    W: Array,
    b: Array,
    velocity: Velocity,
    weights: Array | None,
    consts: Array,
    *,
    batch_size: int,
    l1: bool,
    intercept: bool,
) -> tuple[Array, Array, Velocity, Array]:
    """The compiled epoch; ``consts`` = ``[lr/B, lr/B_last, lr reg2, 1 - lr reg2, momentum,
    reg2/2, lr reg1, reg1]`` with the L2 and L1 strengths ``reg2``, ``reg1``; ``l1``: clip;
    ``intercept``: train ``b``.

    One loop body serves every batch: a short last batch is padded to ``B`` rows that are then
    masked out (they add exact zeros), which halves the compile time of a second copy of the step.
    """
    n, k, dt = order.shape[0], W.shape[1], W.dtype
    steps = -(-n // batch_size)
    last = n - (steps - 1) * batch_size
    short = last < batch_size
    classes = jnp.arange(k, dtype=y.dtype)
    positions = jnp.arange(batch_size, dtype=order.dtype)

    def step(params: tuple[Any, ...], batch: tuple[Array, Array]) -> Any:
        """One batch of rows ``order[t B : (t + 1) B]``: new params and the batch's loss."""
        (W, b, velocity, q), (rows, t) = params, batch
        W, b, velocity, loss = smooth_step(W, b, velocity, rows, t)
        if not l1:
            return (W, b, velocity, q), loss
        u = consts[6] * (t + 1).astype(dt)  # the L1 penalty a weight could have had so far
        shrunk = jnp.where(
            W > 0, jnp.maximum(W - (u + q), 0), jnp.where(W < 0, jnp.minimum(W + (u - q), 0), W)
        )
        return (shrunk, b, velocity, q + (shrunk - W)), loss

    def smooth_step(W: Array, b: Array, velocity: Velocity, rows: Array, t: Array) -> Any:
        """The smooth part of a step: new ``(W, b, velocity)`` and the batch's loss."""
        Xb = X.at[rows].get(mode="promise_in_bounds")
        yb = y.at[rows].get(mode="promise_in_bounds")
        z = jnp.matmul(Xb, W, precision=_HIGHEST) + b
        z = z - jnp.max(z, axis=1, keepdims=True)
        e = jnp.exp(z)
        s = jnp.sum(e, axis=1, keepdims=True)
        hot = yb[:, None] == classes
        row_loss = jnp.log(s[:, 0]) - jnp.sum(jnp.where(hot, z, 0), axis=1)
        scale = jnp.where(t == steps - 1, consts[1], consts[0]) if short else consts[0]
        dz = e * (scale / s) - jnp.where(hot, scale, 0)  # lr/|B| (p - Y)
        if weights is not None:
            wb = weights.at[rows].get(mode="promise_in_bounds")
            row_loss, dz = row_loss * wb, dz * wb[:, None]
        if short:  # the padding rows of the last batch count for nothing
            real = t * batch_size + positions < n
            row_loss, dz = jnp.where(real, row_loss, 0), jnp.where(real[:, None], dz, 0)
            width = jnp.where(t == steps - 1, last, batch_size).astype(dt)
            loss = jnp.sum(row_loss) / width
        else:
            loss = jnp.mean(row_loss)
        loss = loss + consts[5] * jnp.sum(W * W)
        if l1:
            loss = loss + consts[7] * jnp.sum(jnp.abs(W))
        G = jnp.matmul(Xb.T, dz, precision=_HIGHEST)
        g_b = jnp.sum(dz, axis=0, keepdims=True)
        if velocity is None:
            return consts[3] * W - G, b - g_b if intercept else b, None, loss
        vW, vb = velocity
        vW = consts[4] * vW - G - consts[2] * W
        if intercept:
            vb = consts[4] * vb - g_b
            b = b + vb
        return W + vW, b, (vW, vb), loss

    padded = jnp.concatenate([order, jnp.zeros((steps * batch_size - n,), order.dtype)])
    batches = (jnp.reshape(padded, (steps, batch_size)), jnp.arange(steps))
    q = jnp.zeros_like(W) if l1 else None  # the L1 penalty each weight did receive
    (W, b, velocity, _), losses = lax.scan(step, (W, b, velocity, q), batches)
    return W, b, velocity, losses


def jax_objective(
    loss_and_grads: Callable[..., tuple[Array, Array, Array]],
    X: Array,
    y: Array,
    weights: Array | None,
    reg: float,
) -> Callable[[Array, Array], tuple[Array, Array, Array]]:
    """``objective(W, b) = loss_and_grads(X, y, W, b, reg, sample_weight=weights)``, compiled
    once per shape (the data are arguments of the program, not constants baked into it)."""
    compiled = _compiled(loss_and_grads)
    return lambda W, b: compiled(X, y, weights, W, b, reg=reg)


@functools.cache
def _compiled(loss_and_grads: Callable[..., Any]) -> Callable[..., Any]:
    def objective(X: Array, y: Array, w: Array | None, W: Array, b: Array, reg: float) -> Any:
        return loss_and_grads(X, y, W, b, reg, sample_weight=w, xp=jnp)

    jitted: Callable[..., Any] = jax.jit(objective, static_argnames=("reg",))
    return jitted
