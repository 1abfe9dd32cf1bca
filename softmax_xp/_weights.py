"""Per-sample weights: checked on the host side of the data, moved to the model's backend."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from ._backend import Backend, asarray_on, to_numpy

__all__ = ["as_sample_weight"]


def as_sample_weight(sample_weight: Any, backend: Backend, dtype: Any, n_samples: int) -> Any:
    """``sample_weight`` checked (1-D, ``n_samples`` long, finite, ``>= 0``, not all 0) and moved
    to ``backend`` as ``dtype``; None stays None. A scalar is one weight for every row. One host
    read of the weights (they are small next to X)."""
    if sample_weight is None:
        return None
    if array_api_compat.is_array_api_obj(sample_weight) and not isinstance(
        sample_weight, np.ndarray
    ):
        host = to_numpy(sample_weight)
    else:
        try:
            host = np.asarray(sample_weight)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sample_weight could not be converted to an array: {exc}") from None
    if host.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight has dtype {host.dtype}; it must hold real numbers.")
    if host.ndim == 0:
        host = np.full(n_samples, host, dtype=np.float64)
    if host.shape != (n_samples,):
        raise ValueError(
            f"sample_weight.shape == {host.shape}, expected ({n_samples},): one weight per sample."
        )
    host = host.astype(np.float64, copy=False)
    if not np.all(np.isfinite(host)):
        raise ValueError("sample_weight contains NaN or infinity; weights must be finite.")
    if np.any(host < 0):
        raise ValueError("sample_weight contains negative values; weights must be >= 0.")
    if not np.any(host > 0):
        raise ValueError("sample_weight is all zero; at least one sample needs a positive weight.")
    return asarray_on(backend, host, dtype)
