"""In-memory ``shuffle="blocks"``: the block visit Dask training reproduces, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_xp import SoftmaxXP, _random, loss_and_grads, to_numpy

D, K = 7, 4


def blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(K, D))
    y = rng.integers(0, K, size=n)
    return centres[y] + rng.normal(size=(n, D)), y


def reference_blocks_run(X, y, *, seed, epochs, block_rows, batch_size, lr, reg, momentum):
    """The documented visit, written plainly on NumPy: initial weights from the seed; each epoch
    draws the block order, then each visited block's row order; batches restart at every block;
    the epoch loss is the row-weighted mean of the batch losses."""
    rng = _random.make_rng(seed)
    W = _random.initial_weights(rng, (D, K))
    b = np.zeros((1, K))
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    starts = list(range(0, X.shape[0], block_rows))
    losses = []
    for _ in range(epochs):
        visit = rng.permutation(len(starts))
        total = 0.0
        for i in visit:
            Xb, yb = X[starts[i] : starts[i] + block_rows], y[starts[i] : starts[i] + block_rows]
            order = rng.permutation(Xb.shape[0])
            for lo in range(0, Xb.shape[0], batch_size):
                idx = order[lo : lo + batch_size]
                loss, dW, db = loss_and_grads(Xb[idx], yb[idx], W, b, reg)
                total += float(loss) * idx.shape[0]
                vW, vb = momentum * vW - lr * dW, momentum * vb - lr * db
                W, b = W + vW, b + vb
        losses.append(total / X.shape[0])
    return W, b, losses


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize(
    ("n", "block_rows", "batch_size"), [(100, 30, 8), (90, 30, 7), (50, 64, 16)]
)
def test_blocks_mode_follows_the_documented_visit(backend, momentum, n, block_rows, batch_size):
    X, y = blobs(n)
    settings = dict(lr=0.2, reg=1e-3, momentum=momentum)
    model = SoftmaxXP(
        D, K, backend=backend.name, device=backend.device, dtype="float64", seed=3, **settings
    )
    history = model.train(
        X, y, epochs=3, batch_size=batch_size, verbose=0, shuffle="blocks", block_rows=block_rows
    )
    W, b, losses = reference_blocks_run(
        X, y, seed=3, epochs=3, block_rows=block_rows, batch_size=batch_size, **settings
    )
    np.testing.assert_allclose(to_numpy(model.W), W, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(to_numpy(model.b), b, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(history.loss, losses, rtol=1e-10)


def test_blocks_mode_resumes_to_the_same_weights(tmp_path):
    X, y = blobs(100)
    args = dict(batch_size=8, verbose=0, shuffle="blocks", block_rows=30)
    whole = SoftmaxXP(D, K, backend="numpy", seed=5, momentum=0.9)
    whole.train(X, y, epochs=4, **args)
    path = tmp_path / "ckpt.npz"
    first = SoftmaxXP(D, K, backend="numpy", seed=5, momentum=0.9)
    first.train(X, y, epochs=2, checkpoint=path, **args)
    resumed = SoftmaxXP(D, K, backend="numpy", seed=99, momentum=0.9)
    history = resumed.train(X, y, epochs=4, resume_from=path, **args)
    np.testing.assert_array_equal(resumed.W, whole.W)
    assert history.loss == whole.history_.loss


def test_resume_refuses_another_block_layout(tmp_path):
    X, y = blobs(100)
    path = tmp_path / "ckpt.npz"
    model = SoftmaxXP(D, K, backend="numpy", seed=5)
    model.train(X, y, epochs=1, verbose=0, shuffle="blocks", block_rows=30, checkpoint=path)
    for kwargs, here in (({}, "shuffle='global'"), ({"block_rows": 50}, "2 blocks of up to 50")):
        kwargs = {"shuffle": "blocks", **kwargs} if kwargs else kwargs
        with pytest.raises(
            ValueError, match=rf"visited 4 blocks of up to 30 rows, this one .*{here}"
        ):
            SoftmaxXP(D, K, backend="numpy", seed=5).train(
                X, y, epochs=2, verbose=0, resume_from=path, **kwargs
            )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"shuffle": "rows"}, ValueError, "Unknown shuffle 'rows'"),
        ({"shuffle": "blocks"}, ValueError, "needs block_rows"),
        ({"block_rows": 10}, ValueError, "block_rows is used with shuffle='blocks'"),
        ({"shuffle": "blocks", "block_rows": 0}, ValueError, "block_rows must be >= 1"),
        ({"shuffle": "blocks", "block_rows": 2.0}, TypeError, "block_rows must be an integer"),
    ],
)
def test_bad_shuffle_settings_are_refused(kwargs, error, message):
    X, y = blobs(20)
    model = SoftmaxXP(D, K, backend="numpy", seed=0)
    with pytest.raises(error, match=message):
        model.train(X, y, epochs=1, verbose=0, **kwargs)


def test_blocks_mode_weights_each_block_with_its_rows(backend):
    """Sample weights follow their rows into the blocks: each batch steps along
    ``1/|B| sum_i w_i g_i`` with the weights normalised to mean 1 over the data."""
    X, y = blobs(90)
    w = np.random.default_rng(4).uniform(0.5, 1.5, size=90)
    lr, reg, rows, batch = 0.2, 1e-3, 30, 8
    model = SoftmaxXP(
        D, K, backend=backend.name, device=backend.device, dtype="float64", seed=2, lr=lr, reg=reg
    )
    model.train(
        X, y, epochs=2, batch_size=batch, verbose=0, shuffle="blocks", block_rows=rows,
        sample_weight=w,
    )  # fmt: skip
    rng = _random.make_rng(2)
    W, b = _random.initial_weights(rng, (D, K)), np.zeros((1, K))
    w = w / w.mean()
    for _ in range(2):
        for i in rng.permutation(3):
            block = slice(i * rows, (i + 1) * rows)
            Xb, yb, wb = X[block], y[block], w[block]
            order = rng.permutation(rows)
            for lo in range(0, rows, batch):
                idx = order[lo : lo + batch]
                _, dW, db = loss_and_grads(Xb[idx], yb[idx], W, b, 0.0, sample_weight=wb[idx])
                scale = wb[idx].mean()  # weighted mean's gradient -> 1/|B| sum w_i g_i
                W, b = W - lr * (scale * dW + reg * W), b - lr * scale * db
    np.testing.assert_allclose(to_numpy(model.W), W, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(to_numpy(model.b), b, rtol=1e-10, atol=1e-13)
