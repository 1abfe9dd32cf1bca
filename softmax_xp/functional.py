"""The chapter's mathematics as pure functions on arrays of any array-API backend.

Every function infers the namespace from its inputs (``xp=None`` overrides), creates arrays on
the inputs' device, keeps the inputs' floating dtype and never writes into its inputs. Nothing here
synchronises with the host: losses are returned as 0-d arrays.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace
from array_api_compat import device as device_of

Array = Any

__all__ = [
    "cross_entropy",
    "log_softmax",
    "logsumexp",
    "loss_and_grads",
    "one_hot",
    "sigmoid",
    "softmax",
    "softmax_jacobian",
]


def _shifted(x: Array, axis: int, xp: Any) -> tuple[Array, Array]:
    """``(x - m, m)`` with ``m = max(x, axis)``, where a non-finite max (a row of -inf) becomes 0."""
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    return x - m, m


def softmax(x: Array, /, *, axis: int = -1, xp: Any = None) -> Array:
    """Softmax along ``axis``: ``exp(x - max x) / sum(exp(x - max x))``.

    Subtracting the maximum changes nothing mathematically and keeps ``exp`` from overflowing, so
    logits of 1e4 or -inf give exact results.
    """
    xp = array_namespace(x) if xp is None else xp
    e = xp.exp(_shifted(x, axis, xp)[0])
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(x: Array, /, *, axis: int = -1, xp: Any = None) -> Array:
    """``log(softmax(x)) = (x - m) - log(sum(exp(x - m)))``, computed without forming softmax."""
    xp = array_namespace(x) if xp is None else xp
    shifted, _ = _shifted(x, axis, xp)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def logsumexp(x: Array, /, *, axis: int = -1, keepdims: bool = False, xp: Any = None) -> Array:
    """``log(sum(exp(x))) = m + log(sum(exp(x - m)))`` along ``axis``."""
    xp = array_namespace(x) if xp is None else xp
    shifted, m = _shifted(x, axis, xp)
    out = m + xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
    return out if keepdims else xp.squeeze(out, axis=axis)


def sigmoid(x: Array, /, *, xp: Any = None) -> Array:
    """Logistic function ``1 / (1 + exp(-x))``, evaluated through ``exp(-|x|)`` so it never overflows."""
    xp = array_namespace(x) if xp is None else xp
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softmax_jacobian(x: Array, /, *, xp: Any = None) -> Array:
    """Jacobian of softmax at logits ``x``: ``J = diag(p) - p p^T`` with ``p = softmax(x)``.

    ``x`` of shape ``(..., K)`` gives ``J`` of shape ``(..., K, K)`` with ``J[..., i, j] = dp_i/dx_j``.
    """
    xp = array_namespace(x) if xp is None else xp
    p = softmax(x, axis=-1, xp=xp)
    eye = xp.eye(x.shape[-1], dtype=x.dtype, device=device_of(x))
    return p[..., :, None] * (eye - p[..., None, :])


def _default_float(xp: Any, device: Any) -> Any:
    return xp.__array_namespace_info__().default_dtypes(device=device)["real floating"]


def one_hot(y: Array, /, num_classes: int, *, dtype: Any = None, xp: Any = None) -> Array:
    """One-hot encoding: ``out[i, k] = 1 if y[i] == k else 0``, of shape ``y.shape + (num_classes,)``.

    ``dtype`` defaults to the namespace's default floating dtype on ``y``'s device.
    """
    xp = array_namespace(y) if xp is None else xp
    dev = device_of(y)
    dtype = _default_float(xp, dev) if dtype is None else dtype
    classes = xp.arange(num_classes, dtype=y.dtype, device=dev)
    return xp.astype(y[..., None] == classes, dtype)


def _l2_penalty(W: Array, reg: float, xp: Any) -> Array:
    """``0.5 * reg * ||W||^2`` in ``W``'s dtype."""
    return xp.asarray(0.5 * reg, dtype=W.dtype, device=device_of(W)) * xp.sum(W * W)


def _mean_nll(logp: Array, y: Array, xp: Any) -> Array:
    """``-mean_i logp[i, y_i]``; a boolean mask instead of a gather, and ``where`` so that a
    ``-inf`` log-probability of a wrong class does not turn ``0 * -inf`` into NaN."""
    classes = xp.arange(logp.shape[-1], dtype=y.dtype, device=device_of(y))
    picked = xp.where(y[:, None] == classes, logp, xp.zeros_like(logp))
    return -xp.sum(picked) / logp.shape[0]


def cross_entropy(
    logits: Array, y: Array, /, *, W: Array | None = None, reg: float = 0.0, xp: Any = None
) -> Array:
    """Mean cross-entropy ``-1/N sum_i log softmax(z_i)[y_i]``, plus ``0.5 * reg * ||W||^2`` when
    ``W`` is given. Computed from :func:`log_softmax`, never as ``log(softmax)``. Returns a 0-d array.
    """
    xp = array_namespace(logits, y) if xp is None else xp
    loss = _mean_nll(log_softmax(logits, axis=-1, xp=xp), y, xp)
    if W is not None and reg:
        loss = loss + _l2_penalty(W, reg, xp)
    return loss


def loss_and_grads(
    X: Array,
    y: Array,
    W: Array,
    b: Array,
    reg: float = 0.0,
    *,
    sample_weight: Array | None = None,
    xp: Any = None,
) -> tuple[Array, Array, Array]:
    """Loss and gradients of the L2-regularised softmax classifier on one batch.

    With ``z = X W + b``, ``p = softmax(z)`` and ``Y = one_hot(y)``::

        L     = -1/N sum_i log p[i, y_i] + 0.5 * reg * ||W||^2
        dL/dz = (p - Y) / N
        dW    = X^T dL/dz + reg * W
        db    = sum_i dL/dz[i]

    With ``sample_weight`` ``w`` (shape ``(N,)``, ``w >= 0``, ``sum w > 0``) the mean becomes the
    weighted mean ``-sum_i w_i log p[i, y_i] / sum_i w_i`` and ``dL/dz = w_i (p_i - Y_i) / sum w``:
    a weight of 2 counts a row twice, exactly as if it were duplicated.

    Returns ``(loss, dW, db)`` with ``loss`` a 0-d array, ``dW`` shaped like ``W`` and ``db`` like ``b``.
    """
    xp = array_namespace(X, y, W, b) if xp is None else xp
    n = X.shape[0]
    logp = log_softmax(X @ W + b, axis=-1, xp=xp)
    Y = one_hot(y, W.shape[1], dtype=W.dtype, xp=xp)
    if sample_weight is None:
        nll = _mean_nll(logp, y, xp)
        dz = (xp.exp(logp) - Y) / n
    else:
        w = xp.astype(sample_weight, W.dtype)
        w = xp.reshape(w / xp.sum(w), (n, 1))  # weights summing to 1
        picked = xp.where(Y > 0, logp, xp.zeros_like(logp))
        nll = -xp.sum(w * picked)
        dz = (xp.exp(logp) - Y) * w
    loss = nll + _l2_penalty(W, reg, xp)
    dW = X.T @ dz + xp.asarray(reg, dtype=W.dtype, device=device_of(W)) * W
    db = xp.sum(dz, axis=0, keepdims=True)
    return loss, dW, xp.reshape(db, b.shape)
