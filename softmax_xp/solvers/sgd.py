"""One epoch of mini-batch SGD (with optional heavy-ball momentum) on any array-API backend.

Nothing here reads a device value back to the host: the caller gets the per-batch losses as one
device array and reads them once per epoch.

The loop is written for small batches, where the cost of a step is the number of array calls
rather than their arithmetic (about 200 steps of 256 x 10 arrays per MNIST epoch):

- the logits are turned into a class-major ``(K, n)`` block once per step, so the row-wise max,
  sum and broadcasts run along contiguous rows of length ``n`` instead of rows of length ``K``;
- class sums use matrix products with a ones vector, which cost one call and no Python wrapper;
- the one-hot targets come from one ``take`` of a scaled ``K x K`` identity, the loss picks the
  true-class logit with one flat ``take``, and every index table is built once per epoch;
- the weights, bias and velocity are copied once per epoch and then updated in place.

JAX arrays cannot be updated in place, and its eager calls cost ~11x NumPy's: on JAX,
:func:`sgd_epoch` runs the same epoch as one compiled program (:mod:`.sgd_jax`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from array_api_compat import device as device_of
from array_api_compat import is_jax_namespace, is_torch_namespace

from ._losses import batch_means

Array = Any

__all__ = ["sgd_epoch"]


@dataclass
class _Tables:
    """Per-epoch constants and index tables of :func:`sgd_epoch`."""

    labels: Array  # y[order], (N,)
    pick: Array  # flat index of the true class in each full batch's (K, batch_size) block
    pick_last: Array | None  # the same for the short last batch, if any
    eye: Array  # identity (K, K) in the weights' dtype
    ones_k: Array  # (1, K)
    ones_n: Array  # (batch_size, 1)


def _tables(
    y: Array, order: Array, k: int, batch_size: int, dtype: Any, device: Any, xp: Any
) -> _Tables:
    """Index tables for one epoch: labels in visiting order and the flat true-class positions.

    Each table is one fresh array (no temporaries): on some machines every new page costs more
    than the arithmetic that fills it.
    """
    n = order.shape[0]
    labels = xp.take(y, order, axis=0)
    full = (n // batch_size) * batch_size
    idx_dev = device_of(labels)
    # row i of a batch of width w sits at column i of its (K, w) block: flat index y_i * w + i
    pick = xp.reshape(labels[:full], (-1, batch_size)) * batch_size
    pick += xp.arange(batch_size, dtype=labels.dtype, device=idx_dev)
    pick_last = None
    if n > full:
        pick_last = labels[full:] * (n - full)
        pick_last += xp.arange(n - full, dtype=labels.dtype, device=idx_dev)
    return _Tables(
        labels=labels,
        pick=xp.reshape(pick, (-1,)),
        pick_last=pick_last,
        eye=xp.eye(k, dtype=dtype, device=device),
        ones_k=xp.ones((1, k), dtype=dtype, device=device),
        ones_n=xp.ones((batch_size, 1), dtype=dtype, device=device),
    )


def take_of(xp: Any) -> Any:
    """``take(x, indices, axis=...)`` for indices known to be in range and non-negative.

    ``xp.take`` itself, except on PyTorch, where array-api-compat's take adds a negative-index
    pass (a ``where``) and a Python layer to every call: there ``Tensor.index_select``, the same
    gather.
    """
    if is_torch_namespace(xp):
        return lambda x, indices, axis: x.index_select(axis, indices)
    return xp.take


def _clip_cumulative(w: Array, q: Array, u: Array, zero: Array, xp: Any) -> Array:
    """The cumulative L1 penalty's clip (Tsuruoka et al. 2009) of the weights ``w``, updating
    ``q`` in place.

    ``u`` (0-d) is the total penalty each weight could have received so far, ``q`` the penalty
    each one did: ``w > 0 -> max(0, w - (u + q))``, ``w < 0 -> min(0, w + (u - q))``, then
    ``q += w_new - w``. Returns the new weights (a fresh array).
    """
    shrunk = xp.where(
        w > zero,
        xp.maximum(w - (u + q), zero),
        xp.where(w < zero, xp.minimum(w + (u - q), zero), w),
    )
    q += shrunk - w
    return shrunk


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
    weights: Array | None = None,
    sparse: Any = None,
    l1_ratio: float = 0.0,
    fit_intercept: bool = True,
    layout: str = "row",
    on_step: Callable[[], None] | None = None,
) -> tuple[Array, Array, tuple[Array, Array] | None, Array]:
    """Visit ``X[order]`` in batches of ``batch_size``; return ``(W, b, velocity, batch_losses)``.

    Plain SGD: ``W <- W - lr * dW``. With ``velocity`` (heavy ball):
    ``v <- momentum * v - lr * dW``, ``W <- W + v``; likewise for ``b``. ``dW``, ``db`` and each
    batch's loss (mean cross-entropy plus ``0.5 * reg * ||W||^2`` at the batch's starting weights)
    are those of :func:`softmax_xp.functional.loss_and_grads`. The inputs are never written.

    ``weights`` (optional, shape ``(N,)``, in the rows' order of ``X``) scale each row's loss and
    gradient: a batch ``B`` contributes ``1/|B| sum_{i in B} w_i l_i``. The caller normalises
    them to mean 1 over the whole data set, so each step is an unbiased estimate of the weighted
    mean's gradient ``sum_i w_i g_i / sum_i w_i`` (unit weights give plain SGD exactly), and a
    batch's step does not depend on the weights of the other rows in it. Without ``weights`` the
    loop is the unweighted one, call for call.

    ``l1_ratio`` in [0, 1] makes the penalty the elastic net
    ``reg * (l1_ratio * ||W||_1 + 0.5 * (1 - l1_ratio) * ||W||^2)`` (the bias is never
    penalised); 0, the default, is the L2 loop above, call for call. The L2 part stays in the
    step (``(1 - lr * reg * (1 - l1_ratio)) W``, or in the velocity); the L1 part is a proximal
    step after it, by the cumulative penalty of Tsuruoka et al. (2009), as SGDClassifier does:
    ``u`` is the total L1 penalty ``sum_t lr * reg * l1_ratio`` a weight could have received so
    far and ``q_j`` the penalty weight ``j`` did receive; after each step a positive ``w_j``
    becomes ``max(0, w_j - (u + q_j))``, a negative one ``min(0, w_j + (u - q_j))``, so weights
    reach exactly zero. ``u`` and ``q`` start from zero in every call (an epoch, or a block of
    one). With momentum the prox acts on ``W`` after ``W <- W + v``; the velocity keeps the
    smooth part of the step only.

    ``fit_intercept=False`` trains ``W`` alone: ``b`` and its velocity are returned as given
    (the caller keeps ``b`` at zero); True, the default, is the loop above, call for call.

    A sparse ``X`` comes with ``sparse``, its library's operations
    (:class:`softmax_xp.solvers.sgd_sparse.SparseOps`): the epoch is then
    :func:`~softmax_xp.solvers.sgd_sparse.sparse_sgd_epoch`, whose steps touch only the rows of
    ``W`` of the batch's features, or, where ``sparse.active`` is None, this loop with the
    batch's rows gathered by ``sparse.rows`` (``X_b @ W`` and ``X_b.T @ e.T`` are then the
    sparse library's sparse-dense products). The elastic net (``l1_ratio > 0``) takes that
    loop: its proximal step touches every weight.

    ``layout`` is where the weights live during the epoch, a choice for speed only (the same
    maths; the products may round differently): ``"row"`` keeps ``W`` as it is, ``(d, K)``,
    with logits ``(X_b @ W).T`` (copied to class-major) and weight gradient ``X_b.T @ e.T``;
    ``"class"`` keeps a class-major ``(K, d)`` copy (made once per epoch, turned back once),
    with logits ``W^T @ X_b.T`` and gradient ``e @ X_b``, the layout of ``torch.nn.Linear``. Which
    is faster depends on the library and the machine: :func:`softmax_xp._layout.product_layout`
    chooses. Sparse rows always take ``"row"``. ``on_step`` (optional) is called before each
    step: the thread chooser of :mod:`softmax_xp._threads` times steps through it.
    """
    if is_jax_namespace(xp):
        from .sgd_jax import sgd_epoch_jax

        return sgd_epoch_jax(
            X, y, order, W, b, velocity,
            lr=lr, momentum=momentum, reg=reg, batch_size=batch_size, weights=weights,
            l1_ratio=l1_ratio, fit_intercept=fit_intercept,
        )  # fmt: skip
    if sparse is not None and sparse.active is not None and not l1_ratio:
        from .sgd_sparse import sparse_sgd_epoch

        return sparse_sgd_epoch(
            X, y, order, W, b, velocity, lr=lr, momentum=momentum, reg=reg,
            batch_size=batch_size, xp=xp, ops=sparse, weights=weights,
            fit_intercept=fit_intercept,
        )  # fmt: skip
    n = X.shape[0]
    k = W.shape[1]
    batch_size = min(batch_size, max(n, 1))  # one batch of all rows, without tables of batch_size
    dt, dev = W.dtype, device_of(W)
    tab = _tables(y, order, k, batch_size, dt, dev, xp)
    w_order = None if weights is None else xp.take(xp.astype(weights, dt), order, axis=0)
    steps = -(-n // batch_size)

    def scalar(value: float) -> Array:
        return xp.asarray(value, dtype=dt, device=dev)

    reg_l2 = reg * (1.0 - l1_ratio) if l1_ratio else reg  # the elastic net's L2 strength
    decay = scalar(1.0 - lr * reg_l2)  # (1 - lr reg) W: the L2 part of the step
    lr_reg = scalar(lr * reg_l2)
    mu = scalar(momentum)
    by_class = layout != "row" and sparse is None
    logits_by_class = by_class and layout == "class"
    W = _to_layout(W, by_class, xp)
    bT = xp.reshape(b, (k, 1), copy=True)
    if velocity is not None:
        vW = _to_layout(velocity[0], by_class, xp)
        vbT = xp.reshape(velocity[1], (k, 1), copy=True)
    # Per row: the softmax denominator and the true-class logit; per batch: ||W||^2 at its start.
    parts = xp.empty((2, n), dtype=dt, device=dev)
    sq_norm = xp.empty((steps,), dtype=dt, device=dev)
    l1 = None  # with an L1 part: (u per step, q, zero, ||W||_1 per batch)
    if l1_ratio:
        u = scalar(lr * reg * l1_ratio) * xp.arange(1, steps + 1, dtype=dt, device=dev)
        zero = scalar(0.0)
        l1 = (u, xp.zeros(W.shape, dtype=dt, device=dev), zero, xp.empty_like(sq_norm))

    take = take_of(xp)
    rows_of = (lambda X, index: take(X, index, axis=0)) if sparse is None else sparse.rows
    width, step, ones_n = batch_size, scalar(lr / batch_size), tab.ones_n
    targets = tab.eye * step  # row k of targets is lr/n one_hot(k)
    for t in range(steps):
        if on_step is not None:
            on_step()
        lo = t * batch_size
        hi = min(lo + batch_size, n)
        pick = tab.pick[lo:hi] if hi - lo == batch_size else tab.pick_last
        if hi - lo != width:  # the short last batch: its own step size lr / n
            width = hi - lo
            step, ones_n = scalar(lr / width), ones_n[:width, :]
            targets = tab.eye * step
        Xb = rows_of(X, order[lo:hi])
        if logits_by_class:  # (K, n): class-major logits
            z = W @ Xb.T
        else:
            z = xp.reshape((Xb @ (W.T if by_class else W)).T, (k, width), copy=True)
        z += bT
        z -= xp.max(z, axis=0, keepdims=True)
        e = xp.exp(z)
        s = tab.ones_k @ e  # (1, n): softmax denominators
        parts[0:1, lo:hi] = s
        parts[1, lo:hi] = take(xp.reshape(z, (-1,)), pick, axis=0)
        e *= step / s
        e -= take(targets, tab.labels[lo:hi], axis=1)  # e = lr/n (p - Y), class-major
        if w_order is not None:
            e *= xp.reshape(w_order[lo:hi], (1, width))  # lr/n w_i (p_i - Y_i)
        flat = xp.reshape(W, (-1,))
        sq_norm[t] = flat @ flat
        if l1 is not None:
            l1[3][t] = xp.sum(xp.abs(flat))
        G = e @ Xb if by_class else Xb.T @ e.T  # lr/n X^T (p - Y), in W's layout
        if velocity is None:
            if reg_l2:
                W *= decay
            W -= G
        else:
            vW *= mu
            vW -= G
            if reg_l2:
                vW -= lr_reg * W
            W += vW
        if fit_intercept:
            g_b = e @ ones_n  # (K, 1): lr/n sum_i (p - Y)
            if velocity is None:
                bT -= g_b
            else:
                vbT *= mu
                vbT -= g_b
                bT += vbT
        if l1 is not None:
            W = _clip_cumulative(W, l1[1], l1[0][t], l1[2], xp)
    penalty = scalar(0.5 * reg_l2) * sq_norm
    if l1 is not None:
        penalty = penalty + scalar(reg * l1_ratio) * l1[3]
    losses = batch_means(parts, penalty, n, batch_size, xp, w_order)
    b_out = xp.reshape(bT, (1, k))
    if by_class:  # back to (d, K)
        W = _to_layout(W, by_class, xp)
        vW = None if velocity is None else _to_layout(vW, by_class, xp)
    v_out = None if velocity is None else (vW, xp.reshape(vbT, (1, k)))
    return W, b_out, v_out, losses


def _to_layout(W: Array, by_class: bool, xp: Any) -> Array:
    """A fresh copy of ``W``, transposed (``(d, K) <-> (K, d)``, contiguous) if ``by_class``."""
    if by_class:
        return xp.reshape(W.T, W.T.shape, copy=True)
    return xp.asarray(W, copy=True)
