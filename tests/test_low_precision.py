"""float16 and bfloat16 are computed in float32 and rounded once, as PyTorch does: on every backend
that has the dtype, each function is within one unit in the last place of PyTorch's own float32
result rounded to the low dtype (rounding every step lost up to 36 times that: bfloat16 softmax)."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_xp import (
    cross_entropy,
    log_softmax,
    logsumexp,
    loss_and_grads,
    sigmoid,
    softmax,
    softmax_jacobian,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional

LOW = ("float16", "bfloat16")


def _low(backend, name: str):
    dtype = getattr(backend.xp, name, None)
    if dtype is None:
        pytest.skip(f"{backend.name} has no {name}")
    return dtype


def _representable(z: np.ndarray, name: str) -> np.ndarray:
    """``z`` rounded to the low dtype, held exactly in float32 (NumPy has no bfloat16)."""
    return torch.from_numpy(z.astype(np.float32)).to(getattr(torch, name)).float().numpy()


def _host(arrays, x) -> np.ndarray:
    return arrays.host(arrays.xp.astype(x, arrays.xp.float32))


def _assert_one_ulp(arrays, out, dtype, reference: torch.Tensor, name: str) -> None:
    """``out`` keeps the low dtype and device and is within one ulp of ``reference`` (a float32
    result) rounded to the low dtype."""
    assert out.dtype == dtype
    rounded = reference.to(getattr(torch, name)).float().numpy()
    info = torch.finfo(getattr(torch, name))
    tiny = info.smallest_normal * info.eps  # the smallest subnormal: float16's rounding near 0
    np.testing.assert_allclose(_host(arrays, out), rounded, rtol=info.eps, atol=tiny)


@pytest.mark.parametrize("name", LOW)
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (softmax, lambda t: torch.softmax(t, -1)),
        (log_softmax, lambda t: torch.log_softmax(t, -1)),
        (logsumexp, lambda t: torch.logsumexp(t, -1)),
        (sigmoid, torch.sigmoid),
    ],
    ids=["softmax", "log_softmax", "logsumexp", "sigmoid"],
)
def test_elementwise_and_reductions_round_once(backend, arrays, name, ours, theirs):
    dtype = _low(backend, name)
    z = _representable(np.random.default_rng(0).normal(scale=8, size=(64, 100)), name)
    x = arrays(z, dtype)
    out = ours(x)
    assert out.device == x.device
    _assert_one_ulp(arrays, out, dtype, theirs(torch.from_numpy(z)), name)


@pytest.mark.parametrize("name", LOW)
def test_axis_tuples_and_keepdims_round_once(backend, arrays, name):
    dtype = _low(backend, name)
    z = _representable(np.random.default_rng(1).normal(scale=8, size=(3, 4, 5)), name)
    t = torch.from_numpy(z)
    x = arrays(z, dtype)
    _assert_one_ulp(arrays, softmax(x, axis=0), dtype, torch.softmax(t, 0), name)
    expected = torch.logsumexp(t, (0, 2), keepdim=True)
    _assert_one_ulp(arrays, logsumexp(x, axis=(0, 2), keepdims=True), dtype, expected, name)


@pytest.mark.parametrize("name", LOW)
def test_softmax_jacobian_rounds_once(backend, arrays, name):
    dtype = _low(backend, name)
    z = _representable(np.random.default_rng(2).normal(scale=2, size=(4, 6)), name)
    p = torch.softmax(torch.from_numpy(z), -1)
    expected = torch.diag_embed(p) - p[..., :, None] * p[..., None, :]
    _assert_one_ulp(arrays, softmax_jacobian(arrays(z, dtype)), dtype, expected, name)


@pytest.mark.parametrize("name", LOW)
def test_cross_entropy_rounds_once(backend, arrays, name):
    dtype = _low(backend, name)
    rng = np.random.default_rng(3)
    z = _representable(rng.normal(scale=8, size=(64, 10)), name)
    W = _representable(rng.normal(size=(5, 10)), name)
    y = rng.integers(0, 10, size=64)
    expected = F.cross_entropy(torch.from_numpy(z), torch.from_numpy(y))
    out = cross_entropy(arrays(z, dtype), arrays(y, "int64"))
    _assert_one_ulp(arrays, out, dtype, expected, name)
    expected = expected + 0.05 * torch.sum(torch.from_numpy(W) ** 2)
    out = cross_entropy(arrays(z, dtype), arrays(y, "int64"), W=arrays(W, dtype), reg=0.1)
    _assert_one_ulp(arrays, out, dtype, expected, name)


@pytest.mark.parametrize("name", LOW)
def test_loss_and_grads_round_once(backend, arrays, name):
    dtype = _low(backend, name)
    rng = np.random.default_rng(4)
    X = _representable(rng.random((64, 20)), name)
    W = _representable(rng.normal(size=(20, 10)), name)
    b = _representable(rng.normal(size=(1, 10)), name)
    y = rng.integers(0, 10, size=64)
    reg = 0.01
    Wt, bt = (torch.from_numpy(a).requires_grad_(True) for a in (W, b))
    expected = F.cross_entropy(torch.from_numpy(X) @ Wt + bt, torch.from_numpy(y))
    expected = expected + 0.5 * reg * torch.sum(Wt**2)
    expected.backward()
    loss, dW, db = loss_and_grads(
        arrays(X, dtype), arrays(y, "int64"), arrays(W, dtype), arrays(b, dtype), reg
    )
    _assert_one_ulp(arrays, loss, dtype, expected.detach(), name)
    _assert_one_ulp(arrays, dW, dtype, Wt.grad, name)
    _assert_one_ulp(arrays, db, dtype, bt.grad, name)
