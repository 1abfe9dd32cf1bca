"""The chapter's mathematics as pure functions on arrays of any array-API backend.

Every function infers the namespace from its inputs (``xp=None`` overrides), creates arrays on
the inputs' device, keeps the inputs' floating dtype and never writes into its inputs. Nothing here
synchronises with the host: losses are returned as 0-d arrays. Every backend behaves alike, and as
scipy.special and PyTorch do: integer input is promoted to the default floating dtype, complex
input is a TypeError, Python lists and scalars are read as NumPy arrays (array-api-compat's NumPy
namespace, imported only for them), non-finite logits give NaN rows rather than half-NaN ones,
and a 0-d softmax, log_softmax or logsumexp result is a NumPy scalar on NumPy (``out[()]``).
Floating dtypes narrower than float32 (float16, bfloat16) are computed in float32 and the result is
rounded once to the input's dtype, as PyTorch does: rounding every intermediate step would lose
several times the dtype's own precision.
"""

from __future__ import annotations

import operator
from typing import Any

from array_api_compat import array_namespace, is_array_api_obj
from array_api_compat import device as device_of

from ._reduce import (
    _as_real_float,
    _check_axis,
    _default_float,
    _is_empty,
    _is_narrow,
    _kept_shape,
    _pieces,
    _reduced_shape,
    _scalar_if_0d,
)

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


def softmax(x: Array, /, *, axis: int | tuple[int, ...] | None = -1, xp: Any = None) -> Array:
    """Softmax along ``axis`` (all elements for None): ``exp(x - m) / sum(exp(x - m))``,
    ``m = max(x)``.

    Subtracting the maximum changes nothing mathematically and keeps ``exp`` from overflowing, so
    logits of 1e4 or -inf give exact results. A row holding NaN or +inf, or only -inf, is all NaN
    (as in scipy.special and PyTorch). Lists and integers are accepted (see :func:`logsumexp`).

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp import softmax
    >>> softmax(np.array([0.25, 1.23, -0.8])).round(3)
    array([0.249, 0.664, 0.087])

    Each row of a batch of logits sums to one; huge logits do not overflow:

    >>> softmax(np.array([[1.0, 1.0], [1e4, 0.0]]))
    array([[0.5, 0.5],
           [1. , 0. ]])
    """
    x, xp = _as_real_float(x, xp)
    axis = _check_axis(x, axis)
    if _is_empty(x, axis):
        return xp.asarray(x, copy=True)
    if _is_narrow(x, xp):
        return xp.astype(softmax(xp.astype(x, xp.float32), axis=axis, xp=xp), x.dtype)
    _, finite, shifted, rest = _pieces(x, axis, xp)
    one = xp.ones_like(rest)
    p = xp.exp(shifted) / xp.where(finite, rest + one, one)
    return _scalar_if_0d(
        xp.where(finite, p, xp.asarray(xp.nan, dtype=x.dtype, device=device_of(x)))
    )


def log_softmax(x: Array, /, *, axis: int | tuple[int, ...] | None = -1, xp: Any = None) -> Array:
    """``log(softmax(x)) = (x - m) - log1p(sum(exp(x - m)) - 1)``, computed without forming
    softmax; rows holding NaN or +inf, or only -inf, are all NaN (as in PyTorch).

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp import log_softmax
    >>> log_softmax(np.array([0.0, 0.0])).round(4)
    array([-0.6931, -0.6931])
    >>> float(log_softmax(np.array([0.0, -800.0]))[1])  # log(softmax) would give -inf
    -800.0
    """
    x, xp = _as_real_float(x, xp)
    axis = _check_axis(x, axis)
    if _is_empty(x, axis):
        return xp.asarray(x, copy=True)
    if _is_narrow(x, xp):
        return xp.astype(log_softmax(xp.astype(x, xp.float32), axis=axis, xp=xp), x.dtype)
    _, finite, shifted, rest = _pieces(x, axis, xp)
    out = shifted - xp.log1p(rest)
    return _scalar_if_0d(
        xp.where(finite, out, xp.asarray(xp.nan, dtype=x.dtype, device=device_of(x)))
    )


def logsumexp(
    x: Array,
    /,
    *,
    axis: int | tuple[int, ...] | None = -1,
    keepdims: bool = False,
    b: Array | None = None,
    return_sign: bool = False,
    xp: Any = None,
) -> Array | tuple[Array, Array]:
    """``log(sum(exp(x))) = m + log1p(sum(exp(x - m)) - 1)`` along ``axis`` (all for None).

    ``m = max(x)``'s own term is kept out of the sum, so ``logsumexp([0, -40])`` is 4.2e-18,
    not 0 (scipy gh-18295). An empty reduction gives -inf; +inf gives +inf, NaN gives NaN. Python
    lists and scalars are read as NumPy arrays; integer input is promoted to the default floating
    dtype; complex input is a TypeError.

    As in scipy.special.logsumexp, weights ``b`` (broadcast against ``x``) give
    ``log|sum(b exp(x))|``; a zero weight removes its term. A negative sum is NaN unless
    ``return_sign``, which returns ``(log|sum|, sign(sum))`` (sign 0 for a sum of 0, whose log
    is -inf).

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp import logsumexp
    >>> round(float(logsumexp(np.array([0.0, 0.0]))), 6)  # log 2
    0.693147
    >>> float(logsumexp([0.0, -40.0]))  # the small term is not lost
    4.248354255291589e-18
    >>> value, sign = logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    >>> round(float(value), 4), float(sign)  # log|e - e^2| and the sign of e - e^2
    (1.5413, -1.0)
    """
    if b is not None or return_sign:
        return _weighted_logsumexp(x, b, axis, keepdims, return_sign, xp)
    x, xp = _as_real_float(x, xp)
    axis = _check_axis(x, axis)
    if _is_empty(x, axis):
        out = xp.full(_kept_shape(x, axis), -xp.inf, dtype=x.dtype, device=device_of(x))
    elif _is_narrow(x, xp):
        wide = logsumexp(xp.astype(x, xp.float32), axis=axis, keepdims=True, xp=xp)
        out = xp.astype(wide, x.dtype)
    else:
        m, _, _, rest = _pieces(x, axis, xp)
        out = m + xp.log1p(rest)  # rest is 0 where m is +-inf or NaN: the answer is m
    return out if keepdims else _scalar_if_0d(xp.reshape(out, _reduced_shape(x, axis)))


def _weighted_logsumexp(
    x: Array,
    b: Any,
    axis: int | tuple[int, ...] | None,
    keepdims: bool,
    return_sign: bool,
    xp: Any,
) -> Array | tuple[Array, Array]:
    """:func:`logsumexp` with weights ``b`` (1 for None) and the sign of ``sum(b exp(x))``."""
    x_in = x
    x, xp = _as_real_float(x, xp)
    if b is None:
        b = xp.ones_like(x)
    elif not is_array_api_obj(b):
        b = xp.asarray(b, device=device_of(x))
    b_in = b
    b, _ = _as_real_float(b, xp, "b")
    dtype = _weighted_dtype(getattr(x_in, "dtype", x.dtype), b_in.dtype, x, b, xp)
    try:
        x, b = xp.broadcast_arrays(xp.astype(x, dtype), xp.astype(b, dtype))
    except (ValueError, RuntimeError) as error:
        raise ValueError(
            f"b of shape {tuple(b.shape)} does not broadcast against x of shape "
            f"{tuple(x.shape)}: pass weights of x's shape, or one that broadcasts to it."
        ) from error
    axis = _check_axis(x, axis)
    if _is_narrow(x, xp):
        wide = _weighted_logsumexp(
            xp.astype(x, xp.float32), xp.astype(b, xp.float32), axis, True, True, xp
        )
        out, sign = (xp.astype(a, dtype) for a in wide)
    elif _is_empty(x, axis):
        out = xp.full(_kept_shape(x, axis), -xp.inf, dtype=dtype, device=device_of(x))
        sign = xp.zeros_like(out)
    else:
        m, finite, _, rest = _pieces(x, axis, xp, b)
        # The sum over exp(x - m) is 1 + rest where m is finite; at m = +inf it is the sum of
        # sign(b) * inf over the +inf terms (NaN for inf - inf); 0 at m = -inf; NaN at NaN.
        zero = xp.zeros_like(m)
        at_max = (x == m) & (b != 0)
        at_inf = xp.sum(
            xp.where(at_max, _sign(b, xp) * x, xp.zeros_like(x)), axis=axis, keepdims=True
        )
        total = xp.where(finite, rest + 1, xp.where(m > 0, at_inf, xp.where(m < 0, zero, m)))
        sign = _sign(total, xp)
        # log|1 + rest| as log1p of rest, or of |1 + rest| - 1 = -2 - rest for a negative sum
        magnitude = m + xp.log1p(xp.where(rest > -1, rest, -2 - rest))
        out = xp.where(finite, magnitude, xp.where(xp.isnan(total), total, m))
    if not return_sign:  # the log of a negative sum
        out = xp.where(sign < 0, xp.asarray(xp.nan, dtype=dtype, device=device_of(x)), out)
    if not keepdims:
        out, sign = (_scalar_if_0d(xp.reshape(a, _reduced_shape(x, axis))) for a in (out, sign))
    return (out, sign) if return_sign else out


def _sign(x: Array, xp: Any) -> Array:
    """``sign(x)``, NaN for NaN, from two comparisons: array-api-compat's CuPy ``sign`` mends NaN
    with a boolean-mask write, which reads the mask's count on the host (a synchronisation)."""
    s = xp.astype(x > 0, x.dtype) - xp.astype(x < 0, x.dtype)
    return xp.where(xp.isnan(x), x, s)


def _weighted_dtype(x_dtype: Any, b_dtype: Any, x: Array, b: Array, xp: Any) -> Any:
    """The dtype of ``x`` and ``b`` together, as scipy chooses it: the library's own promotion
    of the input dtypes (NumPy makes float32 and int64 float64, PyTorch float32) when that is a
    floating dtype, else that of their floating versions ``x`` and ``b`` (integers count as the
    default floating dtype; array-api-strict does not mix integers and floats)."""
    try:
        native = xp.result_type(x_dtype, b_dtype)
    except TypeError:
        native = None
    if native is not None and xp.isdtype(native, "real floating"):
        return native
    return xp.result_type(x, b)


def sigmoid(x: Array, /, *, xp: Any = None) -> Array:
    """Logistic function ``1 / (1 + exp(-x))``, evaluated through ``exp(-|x|)`` so it never overflows
    (``-|x|`` written as a ``where``, so that autograd's derivative at 0 is 1/4, not 0).

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp import sigmoid, softmax
    >>> sigmoid(np.array([-1000.0, 0.0, 2.0])).round(4)
    array([0.    , 0.5   , 0.8808])

    With two classes, softmax is the sigmoid of the difference of the logits:

    >>> bool(np.isclose(softmax(np.array([0.5, 2.5]))[1], sigmoid(np.array(2.5 - 0.5))))
    True
    """
    x, xp = _as_real_float(x, xp)
    if _is_narrow(x, xp):
        return xp.astype(sigmoid(xp.astype(x, xp.float32), xp=xp), x.dtype)
    e = xp.exp(xp.where(x >= 0, -x, x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softmax_jacobian(x: Array, /, *, xp: Any = None) -> Array:
    """Jacobian of softmax at logits ``x``: ``J = diag(p) - p p^T`` with ``p = softmax(x)``.

    ``x`` of shape ``(..., K)`` gives ``J`` of shape ``(..., K, K)`` with ``J[..., i, j] = dp_i/dx_j``.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp import softmax_jacobian
    >>> softmax_jacobian(np.array([0.0, 0.0]))
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])

    Its rows sum to zero, because the probabilities always sum to one:

    >>> J = softmax_jacobian(np.array([[0.25, 1.23, -0.8]]))
    >>> J.shape, bool(np.allclose(J.sum(axis=-1), 0.0))
    ((1, 3, 3), True)
    """
    x, xp = _as_real_float(x, xp)
    if x.ndim == 0:
        raise ValueError("softmax_jacobian needs logits of shape (..., K), got a 0-d array.")
    if _is_narrow(x, xp):
        return xp.astype(softmax_jacobian(xp.astype(x, xp.float32), xp=xp), x.dtype)
    p = softmax(x, axis=-1, xp=xp)
    eye = xp.eye(x.shape[-1], dtype=x.dtype, device=device_of(x))
    return p[..., :, None] * (eye - p[..., None, :])


def _common_namespace(**arrays: Array) -> Any:
    """The one namespace of ``arrays``; a TypeError naming each array's library when they mix."""
    try:
        return array_namespace(*arrays.values())
    except TypeError:
        kinds = ", ".join(
            f"{name}: {type(a).__module__}.{type(a).__name__}" for name, a in arrays.items()
        )
        raise TypeError(
            f"{', '.join(arrays)} must be arrays of one library; got {kinds}. Convert them to one "
            "library (and device) first, or pass xp= to choose the namespace."
        ) from None


def one_hot(y: Array, /, num_classes: int, *, dtype: Any = None, xp: Any = None) -> Array:
    """One-hot encoding: ``out[i, k] = 1 if y[i] == k else 0``, of shape ``y.shape + (num_classes,)``.

    ``dtype`` defaults to the namespace's default floating dtype on ``y``'s device. Python
    labels (``one_hot([0, 2, 1], 3)``) are read as a NumPy array.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp import one_hot
    >>> one_hot(np.array([0, 2, 1]), 3)
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]])
    """
    if xp is None and isinstance(y, list | tuple | int):
        from array_api_compat import numpy as host_xp  # only for Python labels

        y = host_xp.asarray(y)  # type: ignore[attr-defined]  # array_api_compat.numpy's __all__ is built at runtime
    xp = array_namespace(y) if xp is None else xp
    if isinstance(num_classes, bool) or not hasattr(num_classes, "__index__"):
        raise TypeError(f"num_classes must be an integer, got {num_classes!r}.")
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0, got {num_classes!r}.")
    dtype = _default_float(xp, device_of(y)) if dtype is None else dtype
    y, classes = _class_indices(y, operator.index(num_classes), xp)
    return xp.astype(y[..., None] == classes, dtype)


def _class_indices(y: Array, num_classes: int, xp: Any) -> tuple[Array, Array]:
    """``(y, arange(num_classes))`` in one integer dtype that holds every class: labels of a
    narrow dtype (uint8 with 300 classes) are widened to the namespace's default integer dtype
    (int64; int32 on JAX without its 64-bit mode), so no class number wraps around and matches a
    wrong label."""
    narrow = num_classes > 128 and xp.isdtype(y.dtype, "integral")  # int8 holds 0..127
    if narrow and xp.iinfo(y.dtype).max < num_classes - 1:
        info = xp.__array_namespace_info__()
        y = xp.astype(y, info.default_dtypes(device=device_of(y))["indexing"])
    return y, xp.arange(num_classes, dtype=y.dtype, device=device_of(y))


def _l2_penalty(W: Array, reg: float, xp: Any) -> Array:
    """``0.5 * reg * ||W||^2`` in ``W``'s dtype."""
    return xp.asarray(0.5 * reg, dtype=W.dtype, device=device_of(W)) * xp.sum(W * W)


def _mean_nll(logp: Array, y: Array, xp: Any) -> Array:
    """``-mean_i logp[i, y_i]``; a boolean mask instead of a gather, and ``where`` so that a
    ``-inf`` log-probability of a wrong class does not turn ``0 * -inf`` into NaN."""
    y, classes = _class_indices(y, logp.shape[-1], xp)
    picked = xp.where(y[:, None] == classes, logp, xp.zeros_like(logp))
    return -xp.sum(picked) / logp.shape[0]


def _check_labels(y: Array, n: int, against: str, xp: Any) -> None:
    """Labels must be integers of shape ``(N,)``, one per row of ``against``, in its namespace."""
    try:
        integral = xp.isdtype(y.dtype, "integral")
    except (TypeError, ValueError):  # array-api-strict on a dtype of another library
        integral = False
    if not integral and array_namespace(y) is not xp and "int" in str(y.dtype):
        raise TypeError(
            f"labels are a {type(y).__module__}.{type(y).__name__}, of another library than "
            f"{against}: pass them as an array of the same library (and device)."
        )
    if not integral:
        raise TypeError(f"labels must be integers (class indices), got dtype {y.dtype}.")
    if tuple(y.shape) != (n,):
        raise ValueError(
            f"labels must have shape (N,) = ({n},), one per row of {against}; "
            f"got shape {tuple(y.shape)}."
        )


def cross_entropy(
    logits: Array, y: Array, /, *, W: Array | None = None, reg: float = 0.0, xp: Any = None
) -> Array:
    """Mean cross-entropy ``-1/N sum_i log softmax(z_i)[y_i]``, plus ``0.5 * reg * ||W||^2`` when
    ``W`` is given. Computed from :func:`log_softmax`, never as ``log(softmax)``. Returns a 0-d array.

    A label outside ``[0, K)`` makes the loss NaN (checking it would need a host read; PyTorch
    raises), never a plausible number.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp import cross_entropy
    >>> logits = np.array([[2.0, 0.0], [0.0, 2.0]])
    >>> round(float(cross_entropy(logits, np.array([0, 1]))), 4)  # -log(e^2 / (e^2 + 1))
    0.1269
    >>> W = np.ones((3, 2))
    >>> round(float(cross_entropy(logits, np.array([0, 1]), W=W, reg=0.1)), 4)  # + 0.5 * 0.1 * 6
    0.4269
    """
    logits, xp = _as_real_float(logits, xp, "logits")
    if not is_array_api_obj(y):  # a list of labels
        y = xp.asarray(y, device=device_of(logits))
    if logits.ndim != 2:
        raise ValueError(
            f"logits must have shape (N, K), got a {logits.ndim}-D array of shape "
            f"{tuple(logits.shape)}."
        )
    _check_labels(y, logits.shape[0], f"logits of shape {tuple(logits.shape)}", xp)
    if _is_narrow(logits, xp):
        W = None if W is None else xp.astype(W, xp.float32)  # float32 is plenty for the result
        wide = cross_entropy(xp.astype(logits, xp.float32), y, W=W, reg=reg, xp=xp)
        return xp.astype(wide, logits.dtype)
    loss = _mean_nll(log_softmax(logits, axis=-1, xp=xp), y, xp)
    y, _ = _class_indices(y, logits.shape[-1] + 1, xp)  # K itself must fit for y < K
    valid = xp.all((y >= 0) & (y < logits.shape[-1]))
    loss = xp.where(valid, loss, xp.asarray(xp.nan, dtype=loss.dtype, device=device_of(loss)))
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
    l1_ratio: float = 0.0,
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

    ``l1_ratio`` in [0, 1] makes the penalty the elastic net
    ``reg * (l1_ratio * ||W||_1 + 0.5 * (1 - l1_ratio) * ||W||^2)`` and adds
    ``reg * l1_ratio * sign(W)`` to ``dW`` (the subgradient that is 0 at 0); 0 is the L2 loss.

    Returns ``(loss, dW, db)`` with ``loss`` a 0-d array, ``dW`` shaped like ``W`` and ``db`` like ``b``,
    all of ``W``'s dtype (float16 and bfloat16 are computed in float32 and rounded once).

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp import loss_and_grads
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> y = np.array([0, 1, 1])
    >>> W, b = np.zeros((2, 3)), np.zeros((1, 3))
    >>> loss, dW, db = loss_and_grads(X, y, W, b, reg=1e-4)
    >>> round(float(loss), 4), dW.shape  # log 3: every class equally likely at W = 0
    (1.0986, (2, 3))
    >>> db.round(4) + 0.0  # the mean of p - onehot(y) over the batch
    array([[ 0.    , -0.3333,  0.3333]])

    The gradient agrees with finite differences of the loss:

    >>> W_h = W + np.array([[1e-6, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> bool(abs((loss_and_grads(X, y, W_h, b, reg=1e-4)[0] - loss) / 1e-6 - dW[0, 0]) < 1e-5)
    True
    """
    if not is_array_api_obj(y):  # a list of labels
        xp = _common_namespace(X=X, W=W, b=b) if xp is None else xp
        y = xp.asarray(y, device=device_of(X))
    xp = _common_namespace(X=X, y=y, W=W, b=b) if xp is None else xp
    if X.ndim != 2 or W.ndim != 2 or X.shape[1] != W.shape[0]:
        raise ValueError(
            f"X must have shape (N, d) and W shape (d, K); got X {tuple(X.shape)} and "
            f"W {tuple(W.shape)}."
        )
    if tuple(b.shape) not in ((1, W.shape[1]), (W.shape[1],)):
        raise ValueError(f"b must have shape (1, {W.shape[1]}), got {tuple(b.shape)}.")
    _check_labels(y, X.shape[0], f"X of shape {tuple(X.shape)}", xp)
    if xp.isdtype(W.dtype, "real floating") and _is_narrow(W, xp):
        X, W32, b = (xp.astype(a, xp.float32) for a in (X, W, b))
        wide = loss_and_grads(
            X, y, W32, b, reg, sample_weight=sample_weight, xp=xp, l1_ratio=l1_ratio
        )
        return tuple(xp.astype(a, W.dtype) for a in wide)
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
    l2 = reg * (1.0 - l1_ratio)
    loss = nll + _l2_penalty(W, l2, xp)
    dW = X.T @ dz + xp.asarray(l2, dtype=W.dtype, device=device_of(W)) * W
    if l1_ratio:  # the elastic net's L1 part and its subgradient
        l1 = xp.asarray(reg * l1_ratio, dtype=W.dtype, device=device_of(W))
        loss, dW = loss + l1 * xp.sum(xp.abs(W)), dW + l1 * xp.sign(W)
    db = xp.sum(dz, axis=0, keepdims=True)
    return loss, dW, xp.reshape(db, b.shape)
