"""The pieces functional.py builds on: input coercion to a real floating array, axis checks,
the shapes of a reduction, and the max-shifted parts that softmax, log_softmax and logsumexp
share."""

from __future__ import annotations

import operator
from typing import Any

from array_api_compat import array_namespace, is_torch_array
from array_api_compat import device as device_of

Array = Any

__all__ = [
    "_as_real_float",
    "_check_axis",
    "_default_float",
    "_is_empty",
    "_is_narrow",
    "_kept_shape",
    "_pieces",
    "_reduced_shape",
    "_scalar_if_0d",
]


def _as_real_float(x: Any, xp: Any = None, name: str = "x") -> tuple[Array, Any]:
    """``(x, xp)`` with ``x`` an array of a real floating dtype.

    Python scalars and (nested) lists become NumPy arrays (through array-api-compat's NumPy
    namespace, imported only then); booleans and integers are promoted to the namespace's default
    floating dtype, as scipy.special does; complex input is a TypeError.
    """
    if xp is None:
        try:
            xp = array_namespace(x)
        except TypeError:
            if isinstance(x, str | bytes):
                raise TypeError(f"{name} must be an array of real numbers, got a string.") from None
            if hasattr(x, "toarray"):  # scipy.sparse and friends
                raise TypeError(
                    f"{name} is a sparse {type(x).__name__}; sparse input is not supported: "
                    f"pass {name}.toarray()."
                ) from None
            from array_api_compat import numpy as host_xp  # only for lists and Python scalars

            x, xp = host_xp.asarray(x), host_xp  # type: ignore[attr-defined]  # array_api_compat.numpy's __all__ is built at runtime
    if not is_torch_array(x):  # torch.asarray of a tensor warns about requires_grad
        x = xp.asarray(x)  # NumPy scalars and subclasses become plain arrays
    if xp.isdtype(x.dtype, "real floating"):
        return x, xp
    if xp.isdtype(x.dtype, "complex floating"):
        raise TypeError(
            f"{name} has complex dtype {x.dtype}; complex input is not supported (pass the real "
            "part, or the absolute value, as a real floating array)."
        )
    if xp.isdtype(x.dtype, ("bool", "integral")):
        return xp.astype(x, _default_float(xp, device_of(x))), xp
    raise TypeError(f"{name} has dtype {x.dtype}; expected real numbers.")


def _is_narrow(x: Array, xp: Any) -> bool:
    """Whether ``x`` is a floating array narrower than float32 (float16, bfloat16): those are
    computed in float32 and rounded once at the end, as PyTorch does."""
    bits: int = xp.finfo(x.dtype).bits
    return bits < 32


def _scalar_if_0d(out: Array) -> Array:
    """``out[()]``: a 0-d result becomes a NumPy scalar on NumPy, as NumPy's own reductions and
    scipy.special return it, and stays a 0-d array on the other libraries."""
    return out[()] if out.ndim == 0 else out


def _check_axis(x: Array, axis: int | tuple[int, ...] | None) -> tuple[int, ...] | None:
    """``axis`` (an int, a tuple of ints or None) as a tuple of distinct non-negative axes of
    ``x``; None (and any axis of a 0-d ``x``) means every axis."""
    if axis is None or x.ndim == 0:
        return None
    axes = axis if isinstance(axis, tuple) else (axis,)
    checked = []
    for a in axes:
        if isinstance(a, bool) or not hasattr(a, "__index__"):
            raise TypeError(f"axis must be an int, a tuple of ints or None, got {axis!r}.")
        a = operator.index(a)
        if not -x.ndim <= a < x.ndim:
            raise ValueError(f"axis {a} is out of range for an array of {x.ndim} dimension(s).")
        checked.append(a % x.ndim)
    if len(set(checked)) != len(checked):
        raise ValueError(f"axis {axis!r} names an axis twice.")
    return tuple(sorted(checked))


def _is_empty(x: Array, axis: tuple[int, ...] | None) -> bool:
    """Whether the reduction along ``axis`` (all axes for None) runs over zero elements."""
    return any(n == 0 for i, n in enumerate(x.shape) if axis is None or i in axis)


def _kept_shape(x: Array, axis: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape of the reduction along ``axis`` with the reduced axes kept as size 1."""
    return tuple(1 if axis is None or i in axis else n for i, n in enumerate(x.shape))


def _reduced_shape(x: Array, axis: tuple[int, ...] | None) -> tuple[int, ...]:
    return () if axis is None else tuple(n for i, n in enumerate(x.shape) if i not in axis)


def _pieces(
    x: Array, axis: tuple[int, ...] | None, xp: Any, b: Array | None = None
) -> tuple[Array, Array, Array, Array]:
    """The shared part of softmax, log_softmax and logsumexp along ``axis`` (kept as size 1).

    Returns ``(m, finite, shifted, rest)``: ``m = max(x)``, ``finite = isfinite(m)``,
    ``shifted = x - m`` and ``rest = sum(exp(x - m)) - 1``, the sum of every term but one
    maximum's (so ``log1p(rest)`` keeps the digits that ``log(1 + tiny)`` would lose). Where ``m``
    is not finite (a row holding NaN or +inf, or only -inf) ``shifted`` is -inf and ``rest`` 0:
    the callers then return NaN (or ``m`` itself for logsumexp), as scipy and PyTorch do.
    Weights ``b`` (broadcast like ``x``) make it ``rest = sum(b exp(x - m)) - 1``, with ``m`` the
    maximum over the terms whose weight is not 0.
    """
    if b is not None:  # a zero weight removes its term, even an infinite or NaN one
        x = xp.where(b != 0, x, xp.asarray(-xp.inf, dtype=x.dtype, device=device_of(x)))
    m = xp.max(x, axis=axis, keepdims=True)
    finite = xp.isfinite(m)
    zero = xp.zeros_like(m)
    minus_inf = xp.asarray(-xp.inf, dtype=x.dtype, device=device_of(x))
    shifted = xp.where(finite, x - xp.where(finite, m, zero), minus_inf)
    is_max = shifted == 0
    if b is None:
        terms, at_max = xp.exp(shifted), xp.astype(is_max, x.dtype)
    else:
        terms, at_max = b * xp.exp(shifted), xp.where(is_max, b, zero)
    others = xp.sum(xp.where(is_max, zero, terms), axis=axis, keepdims=True)
    ties = xp.sum(at_max, axis=axis, keepdims=True) - 1
    rest = xp.where(finite, others + ties, zero)
    return m, finite, shifted, rest


def _default_float(xp: Any, device: Any) -> Any:
    return xp.__array_namespace_info__().default_dtypes(device=device)["real floating"]
