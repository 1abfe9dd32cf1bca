"""Per-sample weights: a weight of k counts a row k times, in the loss and in both solvers."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_xp import SoftmaxXP, loss_and_grads
from softmax_xp.solvers.sgd import sgd_epoch


def problem(n=40, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(n, d)), rng.integers(0, k, size=n)
    W, b = rng.normal(size=(d, k)) * 0.3, rng.normal(size=(1, k)) * 0.1
    return X, y, W, b, rng.integers(0, 4, size=n)  # integer weights, some zero


def test_weighted_loss_equals_repeated_rows(arrays):
    X, y, W, b, w = problem()
    repeated = [arrays(X.repeat(w, axis=0)), arrays(y.repeat(w), "int64")]
    got = loss_and_grads(
        arrays(X), arrays(y, "int64"), arrays(W), arrays(b), 0.1, sample_weight=arrays(w)
    )
    want = loss_and_grads(*repeated, arrays(W), arrays(b), 0.1)
    for mine, theirs in zip(got, want, strict=True):
        np.testing.assert_allclose(arrays.host(mine), arrays.host(theirs), rtol=1e-12, atol=1e-15)


def test_unit_weights_change_nothing(arrays):
    X, y, W, b, _ = problem()
    args = arrays(X), arrays(y, "int64"), arrays(W), arrays(b), 0.1
    got = loss_and_grads(*args, sample_weight=arrays(np.full(40, 3.0)))
    for mine, theirs in zip(got, loss_and_grads(*args), strict=True):
        np.testing.assert_allclose(arrays.host(mine), arrays.host(theirs), rtol=1e-13)


def reference_weighted_epoch(X, y, w, order, W, b, *, lr, reg, batch_size, xp):
    """The documented rule: a batch B steps along 1/|B| sum_{i in B} w_i g_i + reg W, with w
    normalised to mean 1 over the whole data set."""
    n, losses = X.shape[0], []
    w = w / xp.mean(w)
    for lo in range(0, n, batch_size):
        idx = order[lo : min(lo + batch_size, n)]
        wb = xp.take(w, idx, axis=0)
        scale = float(xp.sum(wb)) / idx.shape[0]  # loss_and_grads divides by sum(wb), not |B|
        Xb, yb = xp.take(X, idx, axis=0), xp.take(y, idx, axis=0)
        loss, dW, db = loss_and_grads(Xb, yb, W, b, 0.0, sample_weight=wb)
        losses.append(scale * float(loss) + 0.5 * reg * float(xp.sum(W * W)))
        W, b = W - lr * (scale * dW + reg * W), b - lr * scale * db
    return W, b, losses


@pytest.mark.parametrize(("n", "batch_size"), [(40, 16), (40, 64)])
def test_weighted_sgd_epoch_follows_the_documented_rule(arrays, n, batch_size):
    xp = arrays.xp
    X, y, W, b, w = problem(n=n)
    rng = np.random.default_rng(1)
    order = arrays(rng.permutation(n), "int64")
    Xd, yd, wd = arrays(X), arrays(y, "int64"), arrays(w.astype(float))
    kwargs = dict(lr=0.3, reg=1e-2, batch_size=batch_size, xp=xp)
    W1, b1, _, losses = sgd_epoch(
        Xd, yd, order, arrays(W), arrays(b), None, momentum=0.0, weights=wd / xp.mean(wd), **kwargs
    )
    W2, b2, want = reference_weighted_epoch(Xd, yd, wd, order, arrays(W), arrays(b), **kwargs)
    np.testing.assert_allclose(arrays.host(W1), arrays.host(W2), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(arrays.host(b1), arrays.host(b2), rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(arrays.host(losses), want, rtol=1e-12)


def test_unit_weights_give_plain_sgd_exactly(arrays):
    X, y, _W, _b, _ = problem()
    models = []
    for weights in (None, np.ones(40), np.full(40, 2.5)):
        model = SoftmaxXP(5, 3, backend=arrays.backend.name, device=arrays.device,
                          dtype="float64", seed=3, momentum=0.9)  # fmt: skip
        model.train(X, y, epochs=3, batch_size=16, verbose=0, sample_weight=weights)
        models.append(model)
    for other in models[1:]:
        np.testing.assert_allclose(arrays.host(other.W), arrays.host(models[0].W), rtol=1e-13)
        assert other.history_.loss == pytest.approx(models[0].history_.loss, rel=1e-13)


def test_full_batch_sgd_with_weights_equals_repeated_rows(arrays):
    """One batch holding the whole data set: weights and duplicated rows give the same step."""
    X, y, _, _, w = problem()
    fits = []
    for Xf, yf, weights in ((X, y, w), (X.repeat(w, axis=0), y.repeat(w), None)):
        model = SoftmaxXP(5, 3, backend=arrays.backend.name, device=arrays.device,
                          dtype="float64", seed=3)  # fmt: skip
        model.train(Xf, yf, epochs=5, batch_size=1000, verbose=0, sample_weight=weights)
        fits.append(model)
    np.testing.assert_allclose(arrays.host(fits[0].W), arrays.host(fits[1].W), rtol=1e-10)
    np.testing.assert_allclose(fits[0].history_.loss, fits[1].history_.loss, rtol=1e-10)


@pytest.mark.parametrize(
    ("weights", "error", "match"),
    [
        (np.ones(39), ValueError, r"sample_weight.shape == \(39,\), expected \(40,\)"),
        (np.full(40, np.nan), ValueError, "NaN or infinity"),
        (-np.ones(40), ValueError, "negative"),
        (np.zeros(40), ValueError, "all zero"),
        (np.array(["a"] * 40), TypeError, "real numbers"),
    ],
)
def test_bad_sample_weight(weights, error, match):
    X, y, *_ = problem()
    with pytest.raises(error, match=match):
        SoftmaxXP(5, 3, backend="numpy", seed=0).train(X, y, verbose=0, sample_weight=weights)


def test_exact_sum_does_not_depend_on_the_split():
    """The sum SGD's mean-1 scaling uses: exact, so the blocks of a Dask X add up to the whole."""
    from fractions import Fraction

    from softmax_xp._weights import exact_mean, exact_sum

    rng = np.random.default_rng(0)
    values = rng.uniform(0, 3, size=1001) * 10.0 ** rng.integers(-300, 300, size=1001)
    values[:3] = [5e-324, 0.0, 2.0**60]  # the smallest subnormal, zero, a large power of 2
    want = sum(map(Fraction, values.tolist()))
    assert exact_sum(values) == want
    assert exact_sum(values[:400]) + exact_sum(values[400:]) == want
    assert exact_sum(-values) == -want and exact_sum(np.zeros(0)) == 0
    assert exact_mean(values) == float(want / 1001)
    tenths = np.full(10, 0.1)
    assert exact_mean(tenths) == 0.1 and sum(tenths.tolist()) / 10 != 0.1  # a float sum drifts
