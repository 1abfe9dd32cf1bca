"""Per-sample weights: checked on the host side of the data, moved to the model's backend; their
exact sum, so that SGD's mean-1 scaling does not depend on how the rows are split into blocks."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import array_api_compat
import numpy as np

from ._backend import Backend, asarray_on, to_numpy

__all__ = [
    "as_sample_weight",
    "check_class_weight",
    "check_weight_dtype",
    "check_weight_shape",
    "check_weight_total",
    "checked_host_weights",
    "class_weights",
    "exact_mean",
    "exact_sum",
    "host_sample_weight",
]

_DIGIT_BITS = 18  # a 53-bit integer mantissa as three digits of at most 18 bits
_PIECE = 2**30  # values per bincount: sums of 18-bit digits stay below 2**53, exact in float64


def host_sample_weight(
    sample_weight: Any, n_samples: int, name: str = "sample_weight"
) -> np.ndarray:
    """``sample_weight`` as a 1-D host array of ``n_samples`` real numbers (not yet checked for
    finite, ``>= 0``, not all 0). A scalar is one weight for every row. ``name`` is the
    argument's name in messages (``val_sample_weight`` for validation weights)."""
    if array_api_compat.is_array_api_obj(sample_weight) and not isinstance(
        sample_weight, np.ndarray
    ):
        host = to_numpy(sample_weight)
    else:
        try:
            host = np.asarray(sample_weight)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    check_weight_dtype(host.dtype, name)
    if host.ndim == 0:
        host = np.full(n_samples, host, dtype=np.float64)
    check_weight_shape(host.shape, n_samples, name)
    return host


def check_class_weight(class_weight: Any, num_classes: int) -> dict[int, float] | str | None:
    """``class_weight`` checked: None, ``"balanced"``, or a dict from class index in
    ``[0, num_classes)`` to a finite weight ``>= 0`` (classes not in it weigh 1)."""
    if class_weight is None or (isinstance(class_weight, str) and class_weight == "balanced"):
        return class_weight
    if not isinstance(class_weight, dict):
        raise TypeError(
            "class_weight must be None, 'balanced' or a dict {class: weight}, got "
            f"{class_weight!r} ({type(class_weight).__name__})."
        )
    checked = {}
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, int | np.integer):
            raise TypeError(f"class_weight's keys are class indices (ints), got {key!r}.")
        if not 0 <= key < num_classes:
            raise ValueError(
                f"class_weight has the class {key}, but the model has num_classes={num_classes}."
            )
        weight = float(value)
        if not (np.isfinite(weight) and weight >= 0):
            raise ValueError(f"class_weight[{key}] is {value!r}; weights must be finite and >= 0.")
        checked[int(key)] = weight
    return checked


def class_weights(class_weight: dict[int, float] | str, counts: np.ndarray) -> np.ndarray:
    """The weight of each class (float64, one per class): the dict's (1 where it has none), or
    for ``"balanced"`` scikit-learn's ``n_samples / (n_present * count)`` of each class present
    in the labels, whose per-class ``counts`` are given (absent classes, having no rows, get 0)."""
    counts = np.asarray(counts, dtype=np.int64)
    if isinstance(class_weight, str):  # "balanced"
        present = counts > 0
        weights = np.zeros(counts.shape[0])
        weights[present] = counts.sum() / (present.sum() * counts[present])
        return weights
    weights = np.ones(counts.shape[0])
    for key, value in class_weight.items():
        weights[key] = value
    return weights


def check_weight_dtype(dtype: Any, name: str = "sample_weight") -> None:
    """TypeError unless ``dtype`` holds real numbers (bool, integer or floating)."""
    if np.dtype(dtype).kind not in "biuf":
        raise TypeError(f"{name} has dtype {dtype}; it must hold real numbers.")


def check_weight_shape(shape: tuple[Any, ...], n_samples: int, name: str = "sample_weight") -> None:
    """ValueError unless ``shape`` is ``(n_samples,)``: one weight per row."""
    if tuple(shape) != (n_samples,):
        raise ValueError(
            f"{name}.shape == {tuple(shape)}, expected ({n_samples},): one weight per sample."
        )


def as_sample_weight(
    sample_weight: Any, backend: Backend, dtype: Any, n_samples: int, name: str = "sample_weight"
) -> Any:
    """``sample_weight`` checked (1-D, ``n_samples`` long, finite, ``>= 0``, not all 0, each
    weight and their sum within ``dtype``'s range) and moved to ``backend`` as ``dtype``; None
    stays None. A scalar is one weight for every row. One host read of the weights (they are
    small next to X). ``name`` is the argument's name in messages."""
    if sample_weight is None:
        return None
    host = checked_host_weights(sample_weight, n_samples, name)
    dtype_name = _dtype_name(dtype)
    with np.errstate(over="ignore"):
        used = host.astype(dtype_name)
    if not np.all(np.isfinite(used)):
        raise ValueError(f"{name} contains a value too large for {dtype_name}; {_SCALE_DOWN}.")
    check_weight_total(exact_sum(used), dtype_name, name)
    return asarray_on(backend, host, dtype)


def checked_host_weights(
    sample_weight: Any, n_samples: int, name: str = "sample_weight"
) -> np.ndarray:
    """``sample_weight`` as a float64 host array of ``n_samples`` finite weights ``>= 0`` (a
    scalar is one weight for every row); their total and range are checked by
    :func:`as_sample_weight`."""
    host = host_sample_weight(sample_weight, n_samples, name).astype(np.float64, copy=False)
    if not np.all(np.isfinite(host)):
        raise ValueError(f"{name} contains NaN or infinity; weights must be finite.")
    if np.any(host < 0):
        raise ValueError(f"{name} contains negative values; weights must be >= 0.")
    return host


def _dtype_name(dtype: Any) -> str:
    """ "float32" or "float64" for a dtype of any backend."""
    try:
        name: str = np.dtype(dtype).name
        return name
    except TypeError:  # torch's and array-api-strict's dtypes
        return str(dtype).rsplit(".", 1)[-1]


_SCALE_DOWN = "scale the weights down (only their ratios matter), e.g. w / w.max()"


def check_weight_total(total: Fraction, dtype: str, name: str = "sample_weight") -> None:
    """ValueError when weights summing to ``total`` are all zero, or their sum exceeds the
    largest ``dtype`` number (the weighted mean's denominator would overflow)."""
    if total == 0:
        raise ValueError(f"{name} is all zero; at least one sample needs a positive weight.")
    largest = float(np.finfo(dtype).max)
    if total > Fraction(largest):
        raise ValueError(
            f"{name} sums to more than {dtype} can hold ({largest:.3g}); {_SCALE_DOWN}."
        )


def exact_sum(values: Any) -> Fraction:
    """The exact sum of finite real ``values`` (any backend), as a Fraction.

    Each float64 ``v = m 2**e`` with an integer ``m`` below ``2**53``; the integers are cut into
    18-bit digits and summed per exponent with ``bincount``, exactly (no sum reaches ``2**53``).
    Unlike a float sum, the result is the same however the values are split into parts: the sum
    of the parts' exact sums is the whole's.
    """
    v = np.asarray(to_numpy(values), dtype=np.float64).reshape(-1)
    total = Fraction(0)
    for lo in range(0, v.shape[0], _PIECE):
        mantissa, exponent = np.frexp(v[lo : lo + _PIECE])  # v = mantissa 2**exponent
        ints = (mantissa * 2.0**53).astype(np.int64)  # exact: 53 significant bits at most
        exponent = exponent.astype(np.int64) - 53
        low = int(exponent.min())
        bins = exponent - low
        scaled = 0  # the piece's sum in units of 2**low
        mask = (1 << _DIGIT_BITS) - 1
        for shift in (0, _DIGIT_BITS, 2 * _DIGIT_BITS):
            digits = ints >> shift  # arithmetic shift: the top digit keeps the sign
            if shift < 2 * _DIGIT_BITS:
                digits = digits & mask
            sums = np.bincount(bins, weights=digits.astype(np.float64))
            for k in np.flatnonzero(sums):
                scaled += int(sums[k]) << (int(k) + shift)
        total += Fraction(scaled) * Fraction(2) ** low
    return total


def exact_mean(weights: Any) -> float:
    """``sum(weights) / len(weights)``, correctly rounded to float64 (see :func:`exact_sum`)."""
    return float(exact_sum(weights) / weights.shape[0])
