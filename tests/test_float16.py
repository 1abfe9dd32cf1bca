"""float16 computed in float32 and rounded once, checked without PyTorch (test_low_precision.py
needs it; the GPU check's machine has only NumPy, scipy and CuPy): on every backend that has
float16, each function keeps the dtype and device and is within one unit in the last place of the
float64 result (scipy or the formula) rounded to float16."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

from softmax_xp import (
    cross_entropy,
    log_softmax,
    logsumexp,
    loss_and_grads,
    sigmoid,
    softmax,
    softmax_jacobian,
)

INFO = np.finfo(np.float16)
TINY = float(INFO.smallest_subnormal)  # float16's rounding step near 0


def _float16(backend):
    dtype = getattr(backend.xp, "float16", None)
    if dtype is None:
        pytest.skip(f"{backend.name} has no float16")
    return dtype


def _data(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """Random values that float16 holds exactly, as float64."""
    z = np.random.default_rng(seed).normal(scale=scale, size=shape)
    return z.astype(np.float16).astype(np.float64)


def _assert_one_ulp(arrays, out, like, expected) -> None:
    """``out`` is float16 on ``like``'s device and within one ulp of float64 ``expected``."""
    assert out.dtype == like.dtype and out.device == like.device
    host = arrays.host(arrays.xp.astype(out, arrays.xp.float64))
    rounded = np.asarray(expected).astype(np.float16).astype(np.float64)
    np.testing.assert_allclose(host, rounded, rtol=float(INFO.eps), atol=TINY)


@pytest.mark.parametrize(
    ("ours", "reference"),
    [
        (softmax, lambda z: scipy.special.softmax(z, axis=-1)),
        (log_softmax, lambda z: scipy.special.log_softmax(z, axis=-1)),
        (logsumexp, lambda z: scipy.special.logsumexp(z, axis=-1)),
        (sigmoid, scipy.special.expit),
    ],
    ids=["softmax", "log_softmax", "logsumexp", "sigmoid"],
)
def test_float16_functions_round_once(backend, arrays, ours, reference):
    dtype = _float16(backend)
    z = _data(0, (64, 100), scale=8)
    x = arrays(z, dtype)
    _assert_one_ulp(arrays, ours(x), x, reference(z))


def test_float16_axes_weights_and_jacobian_round_once(backend, arrays):
    dtype = _float16(backend)
    z, w = _data(1, (3, 4, 5), scale=8), _data(2, (3, 4, 5)) + 2.0
    x, b = arrays(z, dtype), arrays(w, dtype)
    _assert_one_ulp(arrays, softmax(x, axis=0), x, scipy.special.softmax(z, axis=0))
    expected = scipy.special.logsumexp(z, axis=(0, 2), keepdims=True)
    _assert_one_ulp(arrays, logsumexp(x, axis=(0, 2), keepdims=True), x, expected)
    value, sign = logsumexp(x, b=b, axis=-1, return_sign=True)
    want, want_sign = scipy.special.logsumexp(z, b=w, axis=-1, return_sign=True)
    _assert_one_ulp(arrays, value, x, want)
    _assert_one_ulp(arrays, sign, x, want_sign)
    z2 = _data(3, (4, 6), scale=2)
    p = scipy.special.softmax(z2, axis=-1)
    expected = p[..., :, None] * (np.eye(6) - p[..., None, :])
    x2 = arrays(z2, dtype)
    _assert_one_ulp(arrays, softmax_jacobian(x2), x2, expected)


def test_float16_losses_and_gradients_round_once(backend, arrays):
    dtype = _float16(backend)
    n, d, k, reg = 64, 20, 10, 0.01
    X, W, b = np.abs(_data(4, (n, d))), _data(5, (d, k)), _data(6, (1, k))
    y = np.random.default_rng(7).integers(0, k, size=n)
    Wd, yd = arrays(W, dtype), arrays(y, "int64")
    z = (X @ W + b).astype(np.float16).astype(np.float64)  # logits that float16 holds
    nll = -np.mean(scipy.special.log_softmax(z, axis=-1)[np.arange(n), y])
    _assert_one_ulp(arrays, cross_entropy(arrays(z, dtype), yd), Wd, nll)
    logp = scipy.special.log_softmax(X @ W + b, axis=-1)
    nll = -np.mean(logp[np.arange(n), y])
    loss, dW, db = loss_and_grads(arrays(X, dtype), yd, Wd, arrays(b, dtype), reg)
    G = (np.exp(logp) - np.eye(k)[y]) / n
    _assert_one_ulp(arrays, loss, Wd, nll + 0.5 * reg * np.sum(W * W))
    _assert_one_ulp(arrays, dW, Wd, X.T @ G + reg * W)
    _assert_one_ulp(arrays, db, Wd, np.sum(G, axis=0, keepdims=True))
