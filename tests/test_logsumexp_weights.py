"""logsumexp's ``b=`` (weights) and ``return_sign=`` agree with scipy.special.logsumexp on every
backend: scipy's own cases (gh-22903, gh-23548, zero weights, broadcasting, dtypes), random
weights of both signs over every axis, and the non-finite corners. Our default axis is -1,
scipy's None, so the calls here name their axis."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special

from softmax_xp import logsumexp

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log(0), inf - inf: the answers

INF, NAN = math.inf, math.nan


def _both(arrays, a, b, dtype="float64", **kwargs):
    """Ours (on the backend, read back) and scipy's (on the host), with return_sign."""
    ours = logsumexp(arrays(a, dtype), b=arrays(b, dtype), return_sign=True, **kwargs)
    theirs = scipy.special.logsumexp(
        np.asarray(a, dtype), b=np.asarray(b, dtype), return_sign=True, **kwargs
    )
    return [arrays.host(o) for o in ours], [np.asarray(t) for t in theirs]


def _assert_same(ours, theirs, rtol=1e-13):
    for o, t in zip(ours, theirs, strict=True):
        assert o.shape == t.shape
        np.testing.assert_allclose(o, t, rtol=rtol, atol=0)


def test_scipy_weighted_cases(arrays):
    a = np.arange(200.0)
    b = np.arange(200.0, 0.0, -1.0)
    out = arrays.host(logsumexp(arrays(a), b=arrays(b), axis=None))
    np.testing.assert_allclose(out, np.log(np.sum(b * np.exp(a))), rtol=1e-13)
    out = arrays.host(logsumexp(arrays([1000.0, 1000.0]), b=arrays([1.2, 1.2])))
    np.testing.assert_allclose(out, 1000 + math.log(2 * 1.2), rtol=1e-13)
    x, w = np.full((2, 1000), 1e-40), np.stack([np.linspace(1, 1000, 1000)] * 2)
    for axis in (None, 0, 1):
        out = arrays.host(logsumexp(arrays(np.log(x)), b=arrays(w), axis=axis))
        np.testing.assert_allclose(np.exp(out), np.sum(w * x, axis=axis), rtol=1e-12)
    # A zero weight removes its term, however large.
    assert float(arrays.host(logsumexp(arrays([1.0, 10000.0]), b=arrays([1.0, 0.0])))) == 1.0


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([1.0, 1.0, 1.0], [1.0, -1.0, -1.0]),  # negative sum: sign -1
        ([1.0, 1.0], [1.0, -1.0]),  # zero sum: -inf, sign 0
        ([3.06409428, 0.37251854, 3.87471931], [1.88190708, 2.84174795, -0.85016884]),  # gh-22903
        ([3.06409428, 0.37251854, 3.87471931], [1.88190708, 2.84174795, -3.85016884]),
        ([INF], [1.0]),  # gh-23548
        ([INF], [-1.0]),
        ([INF, INF], [1.0, -1.0]),  # inf - inf
        ([INF, 1.0], [0.0, 1.0]),  # a zero weight removes +inf and NaN
        ([NAN, 1.0], [0.0, 1.0]),
        ([NAN, 1.0], [1.0, 1.0]),
        ([-INF, -INF], [1.0, 1.0]),
        ([0.0, 0.0], [0.0, 0.0]),
        ([0.0, -40.0], [1.0, 1.0]),  # gh-18295 with weights
        ([0.0, -40.0], [2.0, -1.0]),
        ([1.0, 2.0], [NAN, 1.0]),
        ([1.0, 2.0], [INF, 1.0]),
        ([5.0, 1.0], [1e-300, 1.0]),
    ],
)
def test_signs_and_non_finite_corners(arrays, a, b):
    ours, theirs = _both(arrays, a, b, axis=None)
    _assert_same(ours, theirs)
    # Without return_sign a negative sum is NaN; otherwise the same log|sum|.
    plain = arrays.host(logsumexp(arrays(a), b=arrays(b), axis=None))
    expected = scipy.special.logsumexp(np.asarray(a), b=np.asarray(b))
    np.testing.assert_allclose(plain, expected, rtol=1e-13, atol=0)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), (1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_random_weights_of_both_signs_every_axis(arrays, axis, keepdims):
    rng = np.random.default_rng(0)
    a = rng.normal(scale=5, size=(3, 4, 5))
    b = rng.normal(size=(3, 4, 5)) + 0.5
    b[0, 1, :2] = 0.0
    a[1, 2, 3] = -INF
    ours, theirs = _both(arrays, a, b, axis=axis, keepdims=keepdims)
    _assert_same(ours, theirs, rtol=1e-11)  # cancelling sums: both lose the same digits


def test_weights_broadcast_and_shapes(arrays):
    out = logsumexp(arrays(np.zeros((4, 1, 2, 1))), b=arrays(np.ones((3, 1, 5))), axis=None)
    assert tuple(out.shape) == ()
    np.testing.assert_allclose(arrays.host(out), math.log(4 * 3 * 2 * 5), rtol=1e-15)
    a = arrays(np.ones((1, 2, 3, 4)))
    for axis, shape in [(2, (1, 2, 4)), ((1, 3), (1, 3))]:
        value, sign = logsumexp(a, b=arrays(np.ones(4)), axis=axis, return_sign=True)
        assert tuple(value.shape) == tuple(sign.shape) == shape
    value, sign = logsumexp(a, axis=-1, return_sign=True)  # return_sign without weights
    np.testing.assert_allclose(arrays.host(value), 1 + math.log(4), rtol=1e-15)
    np.testing.assert_array_equal(arrays.host(sign), np.ones((1, 2, 3)))
    with pytest.raises(ValueError, match=r"b of shape \(4,\) does not broadcast"):
        logsumexp(arrays(np.zeros(3)), b=arrays(np.ones(4)))


@pytest.mark.parametrize("dtype_a", ["float32", "float64", "int16", "int64"])
@pytest.mark.parametrize("dtype_b", ["float32", "float64", "int16", "int64"])
def test_result_dtype(backend, arrays, dtype_a, dtype_b):
    """scipy's rule: the library's own promotion when it gives a floating dtype (NumPy makes
    float32 and int64 float64, int16 float32), else integers count as the default float."""
    xp = backend.xp
    a, b = arrays([2, 1], dtype_a), arrays([1, -1], dtype_b)
    default = xp.__array_namespace_info__().default_dtypes(device=a.device)["real floating"]
    try:
        expected = xp.result_type(a.dtype, b.dtype)
    except TypeError:  # array-api-strict mixes no integers and floats
        expected = default
    if not xp.isdtype(expected, "real floating"):
        floats = [d if xp.isdtype(d, "real floating") else default for d in (a.dtype, b.dtype)]
        expected = xp.result_type(*floats)
    out = logsumexp(a, b=b, axis=None)
    assert out.dtype == expected and out.device == a.device
    rtol = 1e-6 if out.dtype == xp.float32 else 1e-15
    np.testing.assert_allclose(arrays.host(out), math.log(math.e**2 - math.e), rtol=rtol)
    if backend.name == "numpy":
        host = scipy.special.logsumexp(np.asarray([2, 1], dtype_a), b=np.asarray([1, -1], dtype_b))
        assert out.dtype == host.dtype


def test_float32_with_integer_weights_stays_float32_under_a_float64_default():
    """scipy's own test suite runs PyTorch with float64 as the default dtype: float32 logits
    and integer weights still give float32 there (PyTorch's promotion), integers alone float64."""
    torch = pytest.importorskip("torch")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        a, b = torch.tensor([2.0, 1.0], dtype=torch.float32), torch.tensor([1, -1])
        assert logsumexp(a, b=b).dtype == torch.float32
        assert logsumexp(b, b=a).dtype == torch.float32
        assert logsumexp(b, b=b).dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)


def test_inputs_are_not_written(arrays):
    a_host, b_host = np.array([5.0, 4.0]), np.array([3.0, -2.0])
    for h in (a_host, b_host):
        h.flags.writeable = False
    a, b = arrays(a_host), arrays(b_host)
    logsumexp(a, b=b, return_sign=True)
    logsumexp(a_host, b=b_host, return_sign=True)
    np.testing.assert_array_equal(arrays.host(a), [5.0, 4.0])
    np.testing.assert_array_equal(arrays.host(b), [3.0, -2.0])


def test_lists_of_weights():
    out = logsumexp([1000, 1000], b=[1.2, 1.2])
    np.testing.assert_allclose(out, 1000 + math.log(2.4), rtol=1e-15)


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_low_precision_weights_round_once(backend, arrays, name):
    torch = pytest.importorskip("torch")
    dtype = getattr(backend.xp, name, None)
    if dtype is None:
        pytest.skip(f"{backend.name} has no {name}")
    rng = np.random.default_rng(1)
    low = getattr(torch, name)
    a = torch.from_numpy(rng.normal(scale=4, size=(8, 50)).astype(np.float32)).to(low).float()
    b = torch.from_numpy(rng.random((8, 50)).astype(np.float32)).to(low).float()
    b[0] = -b[0]  # a negative sum: sign -1, and NaN without return_sign
    x, w = arrays(a.numpy(), dtype), arrays(b.numpy(), dtype)
    value, sign = logsumexp(x, b=w, return_sign=True)
    assert value.dtype == sign.dtype == dtype
    expected = torch.logsumexp(a + torch.log(b.abs()), -1).to(low).float().numpy()
    host = arrays.host(backend.xp.astype(value, backend.xp.float32))
    np.testing.assert_allclose(host, expected, rtol=torch.finfo(low).eps, atol=0)
    np.testing.assert_array_equal(
        arrays.host(backend.xp.astype(sign, backend.xp.float32)), [-1] + [1] * 7
    )
    plain = arrays.host(backend.xp.astype(logsumexp(x, b=w), backend.xp.float32))
    np.testing.assert_array_equal(plain, [np.nan, *host[1:]])


def test_signs_come_from_comparisons_not_the_namespace_sign(backend, arrays):
    """array-api-compat's CuPy ``sign`` mends NaN with a boolean-mask write, which reads the
    mask's count on the host: a weighted logsumexp must not call it (checked with a namespace
    whose ``sign`` refuses), and still gives scipy's signs, NaN and 0 included."""

    class NoSign:
        def __getattr__(self, name):
            if name == "sign":
                raise AssertionError("xp.sign synchronises on CuPy")
            return getattr(backend.xp, name)

    a = [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [NAN, 1.0, 0.0], [INF, INF, 0.0]]
    b = [[1.0, -1.0, -1.0], [1.0, -1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    value, sign = logsumexp(arrays(a), b=arrays(b), return_sign=True, xp=NoSign())
    expected = scipy.special.logsumexp(np.asarray(a), b=np.asarray(b), axis=-1, return_sign=True)
    np.testing.assert_array_equal(arrays.host(sign), expected[1])
    np.testing.assert_array_equal(arrays.host(value), expected[0])
