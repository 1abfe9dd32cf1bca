"""PyTorch's OpInfo-style reference samples for softmax, log_softmax, logsumexp, cross_entropy and
the softmax Jacobian, on every backend, with PyTorch (on the host) as the reference: 0-d, 1-D
and empty inputs, strided views (transposed, stepped, broadcast with stride 0), every dim of 3-D
and 4-D input, magnitudes up to float32's largest, -inf masks and NaN, label dtypes, K = 1 and
N = 0, 10000 classes, and tensors that require grad (gradcheck in float64)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from softmax_xp import cross_entropy, log_softmax, logsumexp, sigmoid, softmax, softmax_jacobian

torch = pytest.importorskip("torch")
F = torch.nn.functional

INF, NAN = float("inf"), float("nan")
OPS = [
    (softmax, torch.softmax),
    (log_softmax, torch.log_softmax),
    (logsumexp, torch.logsumexp),
]
IDS = [ours.__name__ for ours, _ in OPS]


def _check(arrays, out, x, expected: torch.Tensor, rtol: float) -> None:
    """Same shape, dtype, device and values (NaN where PyTorch has NaN). PyTorch's log_softmax
    computes ``x - m - log(sum)``, whose error near 0 is absolute (relative error up to 1 in
    float32 where ours is 6e-7): values are compared to ``rtol`` times the largest one, and
    float32 results with PyTorch's float64 ones."""
    assert out.dtype == x.dtype and out.device == x.device
    assert tuple(out.shape) == tuple(expected.shape)
    expected = expected.numpy()
    finite = np.abs(expected[np.isfinite(expected)])
    atol = rtol * finite.max(initial=0)  # log_softmax near 0: PyTorch's error is absolute
    np.testing.assert_allclose(arrays.host(out), expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize(("ours", "theirs"), OPS, ids=IDS)
@pytest.mark.parametrize("dim", [0, -1])
def test_zero_d_and_one_d(arrays, ours, theirs, dim):
    for value in (1.5, [0.25, 1.23, -0.8]):
        host = torch.tensor(value, dtype=torch.float64)
        x = arrays(host.numpy())
        _check(arrays, ours(x, axis=dim), x, theirs(host, dim), 1e-15)


@pytest.mark.parametrize(("ours", "theirs"), OPS, ids=IDS)
@pytest.mark.parametrize("shape", [(0,), (0, 3), (3, 0), (0, 0), (2, 0, 3)])
def test_empty_dims(arrays, ours, theirs, shape):
    host = torch.zeros(shape, dtype=torch.float64)
    x = arrays(host.numpy())
    for dim in range(-1, len(shape)):
        _check(arrays, ours(x, axis=dim), x, theirs(host, dim), 0)


def _views(xp, x):
    """Strided views of a (4, 6, 5) array: transposed, stepped, and broadcast (stride 0)."""
    return {
        "transposed": xp.permute_dims(x, (2, 0, 1)),
        "stepped": x[::2, 1::2, ::2],
        "broadcast": xp.broadcast_to(x[:1, :, :1], (3, 6, 4)),
    }


@pytest.mark.parametrize(("ours", "theirs"), OPS, ids=IDS)
def test_strided_views_every_dim(arrays, ours, theirs):
    host = torch.randn(4, 6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    hosts = {
        "transposed": host.permute(2, 0, 1),
        "stepped": host[::2, 1::2, ::2],
        "broadcast": host[:1, :, :1].expand(3, 6, 4),
    }
    for name, x in _views(arrays.xp, arrays(host.numpy())).items():
        for dim in range(-3, 3):
            _check(arrays, ours(x, axis=dim), x, theirs(hosts[name], dim), 1e-13)


@pytest.mark.parametrize(("ours", "theirs"), OPS, ids=IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_dim_of_4d(arrays, ours, theirs, dtype):
    rng = np.random.default_rng(1)
    z = (rng.normal(size=(2, 3, 4, 5)) * 5).astype(dtype)
    for dim in (-1, 0, 1, 2, 3):
        _check(
            arrays,
            ours(arrays(z, dtype), axis=dim),
            arrays(z, dtype),
            theirs(torch.from_numpy(z.astype(np.float64)), dim).to(getattr(torch, dtype)),
            1e-6 if dtype == "float32" else 1e-13,
        )


@pytest.mark.parametrize(("ours", "theirs"), OPS, ids=IDS)
def test_large_magnitudes_masks_and_nan_float32(arrays, ours, theirs):
    """Rows at +-1e4 and +-3e38 (float32 overflows in exp and in x - m), -inf masks (a whole
    row -inf is NaN for softmax, -inf for logsumexp, as in PyTorch), NaN and +inf."""
    z = np.array(
        [
            [3e38, -3e38, 0.0],
            [-3e38, -3e38, -3e38],
            [3e38, 3e38, 3e38],
            [1e4, -1e4, 1e4],
            [-1e4, -1e4, -1e4],
            [0.0, -INF, 1.0],
            [-INF, -INF, -INF],
            [NAN, 0.0, 1.0],
            [INF, -INF, 0.0],
        ],
        dtype=np.float32,
    )
    x = arrays(z, "float32")
    with warnings.catch_warnings():
        # -3e38 - 3e38 overflows to -inf, the right answer; NumPy (and scipy) say so.
        warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
        out = ours(x)
    expected = theirs(torch.from_numpy(z.astype(np.float64)), -1).float()
    _check(arrays, out, x, expected, 1e-6)


@pytest.mark.parametrize(
    "f", [softmax, log_softmax, logsumexp, sigmoid, softmax_jacobian], ids=lambda f: f.__name__
)
def test_tensors_that_require_grad(f):
    """No warning (torch.asarray of such a tensor warns), the graph is kept, and the first and
    second derivatives pass gradcheck in float64."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f(x).requires_grad
        assert torch.autograd.gradcheck(f, (x,))
        assert torch.autograd.gradgradcheck(f, (x,))
    x32 = torch.randn(3, 4, generator=gen, requires_grad=True)
    assert f(x32).dtype == torch.float32


def test_cross_entropy_gradcheck_with_weight_penalty():
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(4, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    W = torch.randn(2, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    y = torch.tensor([0, 2, 1, 2])
    assert torch.autograd.gradcheck(lambda z, W: cross_entropy(z, y, W=W, reg=0.3), (z, W))


@pytest.mark.parametrize(
    "f", [softmax, log_softmax, logsumexp, sigmoid, softmax_jacobian], ids=lambda f: f.__name__
)
def test_inputs_unchanged_and_read_only_numpy_works(arrays, f):
    host = np.random.default_rng(4).normal(size=(3, 4))
    host.flags.writeable = False
    before = host.copy()
    x = arrays(host)
    kept = arrays.host(x).copy()
    f(x)
    f(host)  # read-only NumPy input, whatever the backend
    np.testing.assert_array_equal(arrays.host(x), kept)
    np.testing.assert_array_equal(host, before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("N", "K"), [(16, 1), (16, 7), (0, 5), (4, 10000)])
@pytest.mark.parametrize("label_dtype", ["int64", "int32", "uint8"])
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # NumPy's 0 / 0
def test_cross_entropy_matches_torch(arrays, dtype, N, K, label_dtype):
    """Random logits and labels; N = 0 is NaN (the mean of nothing), as in PyTorch."""
    rng = np.random.default_rng(5)
    z = (rng.normal(size=(N, K)) * 4).astype(dtype)
    y = rng.integers(0, min(K, 256), size=N)
    expected = F.cross_entropy(torch.from_numpy(z), torch.from_numpy(y))
    out = cross_entropy(arrays(z, dtype), arrays(y, label_dtype))
    assert out.dtype == getattr(arrays.xp, dtype) and tuple(out.shape) == ()
    rtol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(arrays.host(out), expected.numpy(), rtol=rtol)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4), (1, 1)])
def test_softmax_jacobian_matches_torch_autograd(arrays, shape):
    gen = torch.Generator().manual_seed(6)
    z = torch.randn(shape, dtype=torch.float64, generator=gen) * 3
    z.view(-1)[0] = -INF  # a masked logit: its row and column of J are 0
    J = arrays.host(softmax_jacobian(arrays(z.numpy())))
    assert J.shape == shape + shape[-1:]
    rows = z.reshape(-1, shape[-1])
    expected = torch.stack(
        [torch.autograd.functional.jacobian(lambda v: torch.softmax(v, -1), r) for r in rows]
    )
    np.testing.assert_allclose(J, expected.reshape(J.shape).numpy(), rtol=1e-12, atol=1e-17)
