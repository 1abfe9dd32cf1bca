"""The chapter's formulas on every backend: values, stability, derivatives, dtypes, purity."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_xp import (
    cross_entropy,
    log_softmax,
    logsumexp,
    loss_and_grads,
    one_hot,
    sigmoid,
    softmax,
    softmax_jacobian,
)

FLOATS = ("float32", "float64")


def test_chapter_example(arrays):
    p = softmax(arrays([0.25, 1.23, -0.8]))
    np.testing.assert_allclose(arrays.host(p), [0.249, 0.664, 0.087], atol=5e-4)


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_rows_are_distributions(arrays, dtype):
    z = np.random.default_rng(0).normal(scale=5, size=(7, 4))
    p = arrays.host(softmax(arrays(z, dtype)))
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    assert ((p >= 0) & (p <= 1)).all()


def test_softmax_axis(arrays):
    z = np.random.default_rng(1).normal(size=(3, 5))
    p0 = arrays.host(softmax(arrays(z), axis=0))
    np.testing.assert_allclose(p0, arrays.host(softmax(arrays(z.T))).T, rtol=1e-12)


def test_two_class_softmax_is_sigmoid_of_difference(arrays):
    z = np.random.default_rng(2).normal(scale=3, size=(50, 2))
    p = arrays.host(softmax(arrays(z)))
    s = arrays.host(sigmoid(arrays(z[:, 0] - z[:, 1])))
    np.testing.assert_allclose(p[:, 0], s, rtol=1e-12)


def test_sigmoid_values_and_extremes(arrays):
    z = [-1000.0, -30.0, 0.0, 2.0, 1000.0]
    expected = [0.0, 1 / (1 + np.exp(30.0)), 0.5, 1 / (1 + np.exp(-2.0)), 1.0]
    np.testing.assert_allclose(arrays.host(sigmoid(arrays(z))), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", FLOATS)
def test_extreme_logits(arrays, dtype):
    z = arrays([[1e4, 0.0, -np.inf], [-np.inf, -np.inf, 5.0], [1e4, 1e4, -1e4]], dtype)
    p = arrays.host(softmax(z))
    np.testing.assert_array_equal(p, [[1, 0, 0], [0, 0, 1], [0.5, 0.5, 0]])
    logp = arrays.host(log_softmax(z))
    np.testing.assert_array_equal(logp[0], [0, -1e4, -np.inf])
    np.testing.assert_allclose(logp[2, :2], np.log(0.5), rtol=1e-6)
    lse = arrays.host(logsumexp(z))
    np.testing.assert_allclose(lse, [1e4, 5.0, 1e4 + np.log(2)], rtol=1e-6)
    loss = float(arrays.host(cross_entropy(z, arrays([0, 2, 1], "int64"))))
    np.testing.assert_allclose(loss, -np.log(0.5) / 3, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # log(0) = -inf is the answer
def test_all_minus_inf_row_logsumexp(arrays):
    out = arrays.host(logsumexp(arrays([[-np.inf, -np.inf]])))
    assert out[0] == -np.inf


def test_logsumexp_against_direct_formula(arrays):
    z = np.random.default_rng(3).normal(size=(4, 6))
    expected = np.log(np.exp(z).sum(axis=1))
    np.testing.assert_allclose(arrays.host(logsumexp(arrays(z))), expected, rtol=1e-12)
    kept = logsumexp(arrays(z), axis=0, keepdims=True)
    assert tuple(kept.shape) == (1, 6)


@pytest.mark.parametrize("dtype", FLOATS)
def test_dtype_and_device_are_kept(backend, arrays, dtype):
    z = arrays(np.ones((2, 3)), dtype)
    y = arrays([0, 2], "int64")
    W = arrays(np.ones((3, 3)), dtype)
    outputs = [
        softmax(z),
        log_softmax(z),
        logsumexp(z),
        sigmoid(z),
        softmax_jacobian(z),
        cross_entropy(z, y, W=W, reg=0.1),
        *loss_and_grads(z, y, W, arrays(np.zeros((1, 3)), dtype), 0.1),
    ]
    for out in outputs:
        assert out.dtype == getattr(backend.xp, dtype)
        assert out.device == z.device


def test_one_hot(backend, arrays):
    y = arrays([2, 0, 1, 2], "int64")
    out = one_hot(y, 3, dtype=backend.xp.float32)
    assert out.dtype == backend.xp.float32
    np.testing.assert_array_equal(arrays.host(out), np.eye(3)[[2, 0, 1, 2]])


def _numerical_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences ``(f(x + e) - f(x - e)) / 2 eps`` for every entry of ``x``."""
    grad = np.zeros(x.shape + np.shape(f(x)))
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = eps
        grad[idx] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


def test_softmax_jacobian_against_finite_differences(arrays):
    z = np.random.default_rng(4).normal(size=4)
    J = arrays.host(softmax_jacobian(arrays(z)))
    numeric = _numerical_grad(lambda v: arrays.host(softmax(arrays(v))), z)  # [j, i] = dp_i/dz_j
    np.testing.assert_allclose(J, numeric.T, atol=1e-9)
    p = arrays.host(softmax(arrays(z)))
    np.testing.assert_allclose(J, np.diag(p) - np.outer(p, p), atol=1e-15)


def test_softmax_jacobian_batched(arrays):
    z = np.random.default_rng(5).normal(size=(2, 3, 4))
    J = arrays.host(softmax_jacobian(arrays(z)))
    assert J.shape == (2, 3, 4, 4)
    single = arrays.host(softmax_jacobian(arrays(z[1, 2])))
    np.testing.assert_allclose(J[1, 2], single, rtol=1e-12)


def test_loss_and_grads_against_finite_differences(arrays):
    rng = np.random.default_rng(6)
    X, W, b = rng.normal(size=(8, 5)), rng.normal(size=(5, 3)), rng.normal(size=(1, 3))
    y = rng.integers(0, 3, size=8)
    reg = 0.3

    def loss(W_, b_):
        return float(arrays.host(loss_and_grads(arrays(X), arrays(y, "int64"), W_, b_, reg)[0]))

    L, dW, db = loss_and_grads(arrays(X), arrays(y, "int64"), arrays(W), arrays(b), reg)
    num_dW = _numerical_grad(lambda w: loss(arrays(w), arrays(b)), W)
    num_db = _numerical_grad(lambda v: loss(arrays(W), arrays(v)), b)
    np.testing.assert_allclose(arrays.host(dW), num_dW, atol=1e-7)
    np.testing.assert_allclose(arrays.host(db), num_db, atol=1e-7)
    assert tuple(db.shape) == (1, 3)

    # The loss itself, from the definitions, without log_softmax.
    z = X @ W + b
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = -np.log(p[np.arange(8), y]).mean() + 0.5 * reg * (W**2).sum()
    np.testing.assert_allclose(float(arrays.host(L)), expected, rtol=1e-12)
    ce = cross_entropy(arrays(z), arrays(y, "int64"), W=arrays(W), reg=reg)
    np.testing.assert_allclose(float(arrays.host(ce)), expected, rtol=1e-12)


def test_gradient_rows_of_dz_sum_to_zero(arrays):
    """Each row of p - onehot sums to 0, so db sums to 0 across classes."""
    rng = np.random.default_rng(7)
    X, W = rng.normal(size=(16, 4)), rng.normal(size=(4, 5))
    y = rng.integers(0, 5, size=16)
    _, _, db = loss_and_grads(arrays(X), arrays(y, "int64"), arrays(W), arrays(np.zeros((1, 5))))
    assert abs(arrays.host(db).sum()) < 1e-12


def test_inputs_are_not_written(arrays):
    rng = np.random.default_rng(8)
    host = {
        "X": rng.normal(size=(6, 3)),
        "W": rng.normal(size=(3, 4)),
        "b": rng.normal(size=(1, 4)),
    }
    y_host = rng.integers(0, 4, size=6)
    for a in (*host.values(), y_host):
        a.flags.writeable = False  # NumPy raises if anything writes into these
    X, W, b, y = arrays(host["X"]), arrays(host["W"]), arrays(host["b"]), arrays(y_host, "int64")
    before = [arrays.host(a).copy() for a in (X, W, b, y)]
    loss_and_grads(X, y, W, b, 0.1)
    softmax(X)
    log_softmax(X)
    logsumexp(X)
    sigmoid(X)
    softmax_jacobian(X)
    cross_entropy(X @ W, y, W=W, reg=0.1)
    for a, copy in zip((X, W, b, y), before, strict=True):
        np.testing.assert_array_equal(arrays.host(a), copy)


def test_loss_and_grads_names_the_arrays_of_another_library(arrays):
    X, W, b = arrays(np.ones((3, 4))), arrays(np.zeros((4, 2))), arrays(np.zeros((1, 2)))
    loss, _, _ = loss_and_grads(X, [0, 1, 1], W, b)  # Python labels are read as cross_entropy's
    np.testing.assert_allclose(float(arrays.host(loss)), np.log(2.0))
    if arrays.backend.name == "numpy":
        return
    with pytest.raises(TypeError, match=r"W: numpy.ndarray, b: numpy.ndarray\. Convert them"):
        loss_and_grads(X, arrays(np.array([0, 1, 1]), "int64"), np.zeros((4, 2)), np.zeros((1, 2)))
