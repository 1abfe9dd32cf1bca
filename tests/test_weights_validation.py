"""Weighted validation rows (``SoftmaxXP.train(..., val_sample_weight=...)``): a held-out row of
weight k counts as k copies of it in the validation accuracy and loss, on every backend and
for both solvers; unweighted validation is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_xp import SoftmaxXP, to_numpy

D, K = 5, 3


def problem(n=60, n_val=30, seed=0):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(n, D)), rng.integers(0, K, size=n)
    Xv, yv = rng.normal(size=(n_val, D)), rng.integers(0, K, size=n_val)
    return X, y, Xv, yv, rng.integers(0, 4, size=n_val).astype(float)  # some weights 0


def model_on(backend):
    return SoftmaxXP(D, K, lr=0.3, backend=backend.name, device=backend.device,
                     dtype="float64", seed=0)  # fmt: skip


def by_hand(model, Xv, yv, w):
    """The weighted accuracy and mean cross-entropy of the model's weights, in NumPy."""
    W, b = np.asarray(to_numpy(model.W)), np.asarray(to_numpy(model.b))
    z = Xv @ W + b
    logp = z - z.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    right = z.argmax(axis=1) == yv
    return (w * right).sum() / w.sum(), -(w * logp[np.arange(yv.shape[0]), yv]).sum() / w.sum()


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_weighted_validation_is_the_weighted_mean(backend, solver):
    X, y, Xv, yv, w = problem()
    model = model_on(backend)
    history = model.train(X, y, Xv, yv, epochs=1, batch_size=16, solver=solver,
                          val_sample_weight=w)  # fmt: skip
    accuracy, loss = by_hand(model, Xv, yv, w)
    assert history.val_accuracy[-1] == pytest.approx(accuracy, rel=1e-12)
    assert history.val_loss[-1] == pytest.approx(loss, rel=1e-10)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_a_weight_of_k_is_k_copies_of_a_validation_row(backend, solver):
    X, y, Xv, yv, w = problem()
    counts = w.astype(int)
    weighted = model_on(backend).train(X, y, Xv, yv, epochs=3, batch_size=16, solver=solver,
                                       val_sample_weight=w)  # fmt: skip
    copies = model_on(backend).train(X, y, Xv.repeat(counts, axis=0), yv.repeat(counts),
                                     epochs=3, batch_size=16, solver=solver)  # fmt: skip
    np.testing.assert_allclose(weighted.val_accuracy, copies.val_accuracy, rtol=1e-14)
    np.testing.assert_allclose(weighted.val_loss, copies.val_loss, rtol=1e-10)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_unit_validation_weights_are_no_weights(backend, solver):
    X, y, Xv, yv, _ = problem()
    plain = model_on(backend).train(X, y, Xv, yv, epochs=3, batch_size=16, solver=solver)
    ones = model_on(backend).train(X, y, Xv, yv, epochs=3, batch_size=16, solver=solver,
                                   val_sample_weight=np.ones(yv.shape[0]))  # fmt: skip
    assert ones.val_accuracy == plain.val_accuracy  # exact: integer hits, then one division
    np.testing.assert_allclose(ones.val_loss, plain.val_loss, rtol=1e-12)
    np.testing.assert_array_equal(ones.loss, plain.loss)  # the training is not touched


@pytest.mark.parametrize(
    ("weights", "error", "match"),
    [
        (np.ones(7), ValueError, r"val_sample_weight.shape == \(7,\), expected \(30,\)"),
        (-np.ones(30), ValueError, "val_sample_weight contains negative values"),
        (np.full(30, np.nan), ValueError, "val_sample_weight contains NaN or infinity"),
        (np.zeros(30), ValueError, "val_sample_weight is all zero"),
        (np.array(["a"] * 30), TypeError, "val_sample_weight has dtype"),
    ],
    ids=["length", "negative", "nan", "all-zero", "dtype"],
)
def test_bad_validation_weights_are_refused_before_training(weights, error, match):
    X, y, Xv, yv, _ = problem()
    model = SoftmaxXP(D, K, backend="numpy", seed=0)
    with pytest.raises(error, match=match):
        model.train(X, y, Xv, yv, epochs=2, val_sample_weight=weights)
    assert model.epoch_ == 0


def test_validation_weights_need_validation_rows():
    X, y, *_ = problem()
    with pytest.raises(ValueError, match="val_sample_weight weighs the rows of X_val"):
        SoftmaxXP(D, K, backend="numpy").train(X, y, epochs=1, val_sample_weight=np.ones(60))


def test_weighted_sparse_validation_is_the_dense_one():
    sparse = pytest.importorskip("scipy.sparse")
    X, y, Xv, yv, w = problem()
    dense = SoftmaxXP(D, K, backend="numpy", dtype="float64", seed=0)
    dense.train(X, y, Xv, yv, epochs=2, val_sample_weight=w)
    lazy = SoftmaxXP(D, K, backend="numpy", dtype="float64", seed=0)
    lazy.train(X, y, sparse.csr_array(Xv), yv, epochs=2, val_sample_weight=w)
    assert lazy.history_.val_accuracy == dense.history_.val_accuracy
    np.testing.assert_allclose(lazy.history_.val_loss, dense.history_.val_loss, rtol=1e-12)


def test_dask_validation_weights_are_refused_clearly():
    da = pytest.importorskip("dask.array")
    X, y, Xv, yv, w = problem()
    model = SoftmaxXP(D, K, backend="numpy", seed=0)
    with pytest.raises(NotImplementedError, match="not supported with a Dask X_val yet"):
        model.train(da.from_array(X, chunks=20), da.from_array(y, chunks=20),
                    da.from_array(Xv, chunks=10), da.from_array(yv, chunks=10), epochs=1,
                    val_sample_weight=w)  # fmt: skip
    # An in-memory X_val is weighted with a Dask X as without one.
    lazy = SoftmaxXP(D, K, backend="numpy", dtype="float64", seed=0)
    lazy.train(da.from_array(X, chunks=20), da.from_array(y, chunks=20), Xv, yv, epochs=1,
               val_sample_weight=w)  # fmt: skip
    assert lazy.history_.val_accuracy[-1] == pytest.approx(by_hand(lazy, Xv, yv, w)[0])
