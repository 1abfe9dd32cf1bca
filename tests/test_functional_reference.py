"""The functional API agrees with scipy.special and PyTorch on the same inputs, including the
non-finite ones, and behaves the same on every backend (dtypes, lists, empty input, axis=None)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

from softmax_xp import cross_entropy, log_softmax, logsumexp, loss_and_grads, sigmoid, softmax

torch = pytest.importorskip("torch")

INF, NAN = np.inf, np.nan
# Rows with +inf, -inf, NaN and their mixtures, next to ordinary and tiny-tail rows.
ROWS = np.array(
    [
        [INF, 0.0, 1.0],
        [INF, INF, 0.0],
        [INF, -INF, 0.0],
        [-INF, -INF, -INF],
        [-INF, 0.0, 1.0],
        [NAN, 0.0, 1.0],
        [INF, NAN, 0.0],
        [-INF, -INF, NAN],
        [0.0, -40.0, -40.0],
        [1e4, 1e4, -1e4],
        [0.25, 1.23, -0.8],
    ]
)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy's own inf - inf


def _torch(f, z: np.ndarray, *args) -> np.ndarray:
    return f(torch.from_numpy(z), *args).numpy()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_non_finite_rows_match_scipy_and_torch(arrays, dtype):
    z = arrays(ROWS, dtype)
    host = ROWS.astype(dtype)
    tol = {"rtol": 1e-6 if dtype == "float32" else 1e-12, "atol": 1e-15}
    p, logp, lse = (arrays.host(f(z)) for f in (softmax, log_softmax, logsumexp))
    np.testing.assert_allclose(p, scipy.special.softmax(host, axis=-1), **tol)
    np.testing.assert_allclose(p, _torch(torch.softmax, host, -1), **tol)
    np.testing.assert_allclose(logp, _torch(torch.log_softmax, host, -1), **tol)
    np.testing.assert_allclose(lse, scipy.special.logsumexp(host, axis=-1), **tol)
    np.testing.assert_allclose(lse, _torch(torch.logsumexp, host, -1), **tol)
    # A row with +inf or NaN is NaN throughout, never half NaN and half 0 or -inf.
    bad = np.isnan(ROWS).any(axis=1) | np.isposinf(ROWS).any(axis=1)
    assert np.isnan(p[bad]).all() and np.isnan(logp[bad]).all()
    for i in range(len(ROWS)):
        for k in range(3):
            loss = cross_entropy(arrays(ROWS[i : i + 1], dtype), arrays([k], "int64"))
            expected = torch.nn.functional.cross_entropy(
                torch.from_numpy(host[i : i + 1]), torch.tensor([k])
            )
            np.testing.assert_allclose(arrays.host(loss), expected.numpy(), **tol)


def test_logsumexp_keeps_terms_below_the_rounding_of_one(arrays):
    """scipy gh-18295: log(1 + 4.2e-18) is 4.2e-18, which log(sum) rounds to 0."""
    lse = float(arrays.host(logsumexp(arrays([0.0, -40.0]))))
    expected = scipy.special.logsumexp(np.array([0.0, -40.0]))
    assert lse == pytest.approx(np.exp(-40.0), rel=1e-12)
    assert lse == pytest.approx(expected, rel=1e-12)
    logp = arrays.host(log_softmax(arrays([0.0, -40.0])))
    np.testing.assert_allclose(logp, [-np.exp(-40.0), -40.0], rtol=1e-12)
    ties = float(arrays.host(logsumexp(arrays([3.0, 3.0, 3.0]))))
    assert ties == pytest.approx(3 + np.log(3), rel=1e-15)


def test_empty_input(arrays):
    empty = arrays(np.zeros(0))
    assert float(arrays.host(logsumexp(empty))) == -np.inf
    assert float(arrays.host(logsumexp(empty, axis=None))) == -np.inf
    columns = arrays.host(logsumexp(arrays(np.zeros((0, 3))), axis=0))
    np.testing.assert_array_equal(columns, [-np.inf] * 3)
    assert tuple(logsumexp(arrays(np.zeros((0, 3))), axis=0, keepdims=True).shape) == (1, 3)
    assert tuple(logsumexp(arrays(np.zeros((2, 0))), axis=None, keepdims=True).shape) == (1, 1)
    assert tuple(softmax(empty).shape) == (0,)
    assert tuple(log_softmax(arrays(np.zeros((2, 0)))).shape) == (2, 0)


def test_axis_none_reduces_everything(arrays):
    z = np.random.default_rng(0).normal(size=(3, 4))
    lse = logsumexp(arrays(z), axis=None)
    assert tuple(lse.shape) == ()
    assert float(arrays.host(lse)) == pytest.approx(scipy.special.logsumexp(z), rel=1e-12)
    kept = logsumexp(arrays(z), axis=None, keepdims=True)
    assert tuple(kept.shape) == (1, 1)
    p = arrays.host(softmax(arrays(z), axis=None))
    np.testing.assert_allclose(p, scipy.special.softmax(z, axis=None), rtol=1e-12)
    logp = arrays.host(log_softmax(arrays(z), axis=None))
    np.testing.assert_allclose(logp, scipy.special.log_softmax(z, axis=None), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_integer_input_is_promoted_to_the_default_float(backend, arrays, dtype):
    z = arrays([[1, 0, 3], [0, 2, 1]], dtype)
    default = backend.xp.__array_namespace_info__().default_dtypes(device=z.device)
    host = np.array([[1, 0, 3], [0, 2, 1]]).astype(dtype).astype(np.float64)
    rtol = 1e-6
    for f, reference in (
        (softmax, scipy.special.softmax),
        (log_softmax, scipy.special.log_softmax),
        (logsumexp, scipy.special.logsumexp),
    ):
        out = f(z)
        assert out.dtype == default["real floating"]
        np.testing.assert_allclose(arrays.host(out), reference(host, axis=-1), rtol=rtol)
    assert sigmoid(z).dtype == default["real floating"]


def test_complex_input_is_a_type_error(arrays):
    z = arrays([[1.0, 2.0]], "complex128")
    for f in (softmax, log_softmax, logsumexp, sigmoid):
        with pytest.raises(TypeError, match="complex input is not supported"):
            f(z)


def test_lists_and_scalars_are_numpy_input():
    p = softmax([0.25, 1.23, -0.8])
    assert isinstance(p, np.ndarray) and p.dtype == np.float64
    np.testing.assert_allclose(p, scipy.special.softmax([0.25, 1.23, -0.8]), rtol=1e-15)
    np.testing.assert_allclose(
        log_softmax([[1, 2], [3, 5]]),
        scipy.special.log_softmax([[1, 2], [3, 5]], axis=-1),
        rtol=1e-15,
    )
    assert float(logsumexp(3.0)) == 3.0
    assert float(softmax(7)) == 1.0
    assert float(sigmoid(0)) == 0.5
    loss = cross_entropy([[1.0, 2.0], [0.0, 0.0]], [1, 0])
    torch_loss = torch.nn.functional.cross_entropy(
        torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=torch.float64), torch.tensor([1, 0])
    )
    assert float(loss) == pytest.approx(float(torch_loss), rel=1e-12)
    with pytest.raises(TypeError, match="string"):
        softmax("0.5")


def test_cross_entropy_checks_shapes(arrays):
    rng = np.random.default_rng(0)
    logits3d = arrays(rng.normal(size=(2, 7, 3)))
    with pytest.raises(ValueError, match=r"logits must have shape \(N, K\).*\(2, 7, 3\)"):
        cross_entropy(logits3d, arrays(np.zeros((2, 3)), "int64"))
    logits = arrays(rng.normal(size=(4, 3)))
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\) = \(4,\).*\(4, 1\)"):
        cross_entropy(logits, arrays(np.zeros((4, 1)), "int64"))
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\) = \(4,\).*\(3,\)"):
        cross_entropy(logits, arrays(np.zeros(3), "int64"))
    with pytest.raises(TypeError, match="labels must be integers"):
        cross_entropy(logits, arrays(np.zeros(4), "float64"))
    W, b = arrays(rng.normal(size=(5, 3))), arrays(np.zeros((1, 3)))
    X = arrays(rng.normal(size=(4, 5)))
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\) = \(4,\)"):
        loss_and_grads(X, arrays(np.zeros((4, 1)), "int64"), W, b)
    with pytest.raises(ValueError, match=r"X must have shape \(N, d\)"):
        loss_and_grads(arrays(rng.normal(size=(4, 6))), arrays(np.zeros(4), "int64"), W, b)
    with pytest.raises(ValueError, match=r"b must have shape \(1, 3\)"):
        loss_and_grads(X, arrays(np.zeros(4), "int64"), W, arrays(np.zeros((2, 3))))
