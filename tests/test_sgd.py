"""The optimised SGD epoch against the textbook loop built from ``loss_and_grads``."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_xp.functional import loss_and_grads
from softmax_xp.solvers.sgd import sgd_epoch


def reference_epoch(X, y, order, W, b, velocity, *, lr, momentum, reg, batch_size, xp):
    """One epoch written as the chapter writes it: a gather, ``loss_and_grads``, an update."""
    n, losses = X.shape[0], []
    for lo in range(0, n, batch_size):
        idx = order[lo : min(lo + batch_size, n)]
        loss, dW, db = loss_and_grads(xp.take(X, idx, axis=0), xp.take(y, idx, axis=0), W, b, reg)
        if velocity is None:
            W, b = W - lr * dW, b - lr * db
        else:
            vW, vb = momentum * velocity[0] - lr * dW, momentum * velocity[1] - lr * db
            W, b, velocity = W + vW, b + vb, (vW, vb)
        losses.append(float(loss))
    return W, b, velocity, losses


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("reg", [0.0, 1e-2])
@pytest.mark.parametrize(("n", "batch_size"), [(100, 32), (96, 32), (20, 64)])
def test_sgd_epoch_matches_the_textbook_loop(arrays, momentum, reg, n, batch_size):
    xp = arrays.xp
    rng = np.random.default_rng(0)
    X, y = arrays(rng.normal(size=(n, 7))), arrays(rng.integers(0, 5, size=n), "int64")
    order = arrays(rng.permutation(n), "int64")
    W, b = arrays(rng.normal(size=(7, 5)) * 0.1), arrays(rng.normal(size=(1, 5)) * 0.1)
    velocity = None if momentum == 0 else (arrays(rng.normal(size=(7, 5))), arrays(np.ones((1, 5))))
    kwargs = dict(lr=0.3, momentum=momentum, reg=reg, batch_size=batch_size, xp=xp)
    W_host, b_host = arrays.host(W).copy(), arrays.host(b).copy()

    got = sgd_epoch(X, y, order, W, b, velocity, **kwargs)
    want = reference_epoch(X, y, order, W, b, velocity, **kwargs)

    for mine, theirs in zip(got[:2], want[:2], strict=True):
        np.testing.assert_allclose(arrays.host(mine), arrays.host(theirs), rtol=1e-12, atol=1e-14)
    assert (got[2] is None) == (want[2] is None)
    if got[2] is not None:
        for mine, theirs in zip(got[2], want[2], strict=True):
            np.testing.assert_allclose(arrays.host(mine), arrays.host(theirs), rtol=1e-12)
    np.testing.assert_allclose(arrays.host(got[3]), want[3], rtol=1e-12)
    # sgd_epoch updates its own copies in place, never the caller's arrays
    np.testing.assert_array_equal(arrays.host(W), W_host)
    np.testing.assert_array_equal(arrays.host(b), b_host)


@pytest.mark.parametrize("l1_ratio", [0.0, 0.5])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_in_place_epoch_never_writes_its_inputs(momentum, l1_ratio):
    """The NumPy epoch updates in place (faster than array-api-extra's ``at``): only its own
    copies. Every input is a read-only view, so a write into one raises."""
    rng = np.random.default_rng(0)

    def read_only(a: np.ndarray) -> np.ndarray:
        view = a.view()
        view.flags.writeable = False
        return view

    X, y = rng.normal(size=(50, 4)), rng.integers(0, 3, size=50)
    W, b = rng.normal(size=(4, 3)), rng.normal(size=(1, 3))
    velocity = (np.ones((4, 3)), np.ones((1, 3))) if momentum else None
    weights = rng.uniform(0.5, 2.0, size=50)
    inputs = [X, y, rng.permutation(50), W, b, *(velocity or ()), weights]
    before = [a.copy() for a in inputs]
    views = [read_only(a) for a in inputs]
    v = None if velocity is None else (views[5], views[6])
    W_out, b_out, v_out, losses = sgd_epoch(
        *views[:5], v, lr=0.1, momentum=momentum, reg=1e-2, batch_size=16, xp=np,
        weights=views[-1], l1_ratio=l1_ratio,
    )  # fmt: skip
    for a, was in zip(inputs, before, strict=True):
        np.testing.assert_array_equal(a, was)
    assert not np.array_equal(W_out, W) and losses.shape == (4,)
    for out in (W_out, b_out, *(v_out or ())):
        assert out.flags.writeable  # the epoch's own arrays
