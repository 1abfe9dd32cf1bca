"""Dask arrays whose chunks are scipy.sparse matrices (what ``X.map_blocks(csr_matrix)``
gives): trained block by block as the dense chunks are, with the in-memory blocks' weights,
checked, fingerprinted and predicted lazily, on the local scheduler and on a cluster."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_xp import SoftmaxXP

da = pytest.importorskip("dask.array")
sparse = pytest.importorskip("scipy.sparse")

from benchmarks.text import text_problem  # noqa: E402 - needs scipy

D, K, N, ROWS = 300, 4, 150, 40  # blocks of 40, 40, 40 and 30 rows


@pytest.fixture(scope="module")
def text():
    p = text_problem(N, 60, features=D, classes=K, words=30, vocabulary=600, topical=0.3)
    return p.X, p.y, p.X_test, p.y_test


def lazy(X, rows=ROWS):
    """A Dask array of CSR chunks of ``rows`` rows."""
    return da.from_array(X.toarray(), chunks=(rows, D)).map_blocks(sparse.csr_matrix)


def model(**kwargs):
    args = {"lr": 0.5, "reg": 1e-3, "seed": 0, "dtype": "float64", **kwargs}
    return SoftmaxXP(D, K, backend="numpy", **args)


def rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_chunks_train_as_dense_blocks(text, weighted):
    X, y, X_test, y_test = text
    w = np.random.default_rng(0).uniform(0, 2, N) if weighted else None
    dense, blocks = model(momentum=0.9), model(momentum=0.9)
    dense.train(
        X.toarray(), y, X_test.toarray(), y_test, epochs=3, batch_size=16, sample_weight=w,
        shuffle="blocks", block_rows=ROWS,
    )  # fmt: skip
    Xd, yd = lazy(X), da.from_array(y, chunks=ROWS)
    history = blocks.train(
        Xd, yd, lazy(X_test, 25), y_test, epochs=3, batch_size=16, sample_weight=w
    )
    assert rel(blocks.W, dense.W) < 1e-12
    assert history.val_accuracy == dense.history_.val_accuracy


def test_lbfgs_on_sparse_chunks(text):
    X, y, _, _ = text
    dense, blocks = model(), model()
    dense.train(X.toarray(), y, epochs=30, solver="lbfgs", tol=1e-10)
    blocks.train(lazy(X), da.from_array(y, chunks=ROWS), epochs=30, solver="lbfgs", tol=1e-10)
    assert rel(blocks.W, dense.W) < 1e-8


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "predict_log_proba", "decision_function"]
)
def test_lazy_inference_on_sparse_chunks(text, method):
    X, y, X_test, y_test = text
    m = model()
    m.train(X, y, epochs=2, batch_size=16)
    out = getattr(m, method)(lazy(X_test, 25))
    assert isinstance(out, da.Array)
    np.testing.assert_allclose(out.compute(), getattr(m, method)(X_test), rtol=1e-12, atol=1e-14)
    assert m.score(lazy(X_test, 25), y_test) == m.score(X_test, y_test)


def test_sparse_chunks_are_checked(text, tmp_path):
    X, y, _, _ = text
    bad = X.copy()
    bad.data[bad.indptr[45]] = np.nan  # a stored value of row 45: block 1
    with pytest.raises(ValueError, match=r"Input X contains NaN \(block 1, rows 40-79\)"):
        model().train(lazy(bad), da.from_array(y, chunks=ROWS), epochs=1)
    with pytest.raises(ValueError, match="contains NaN"):
        model().predict(lazy(bad)).compute()
    with pytest.raises(ValueError, match=r"contains the label 4 \(block 0"):
        model().train(lazy(X), da.from_array(np.where(y == y[0], 4, y), chunks=ROWS), epochs=1)
    path = tmp_path / "ckpt.npz"
    blocks = {"shuffle": "blocks", "block_rows": ROWS}
    model().train(X, y, epochs=1, checkpoint=path, **blocks)  # of the in-memory CSR
    resumed = model()
    resumed.train(lazy(X), da.from_array(y, chunks=ROWS), epochs=2, resume_from=path)
    assert resumed.epoch_ == 2  # same fingerprint: the Dask blocks are the same data


def test_sparse_chunks_on_a_cluster(text, client):
    X, y, _, _ = text
    local, cluster = model(momentum=0.9), model(momentum=0.9)
    Xd, yd = lazy(X), da.from_array(y, chunks=ROWS)
    import dask

    with dask.config.set(scheduler="threads"):
        local.train(Xd, yd, epochs=2, batch_size=16)
    cluster.train(Xd, yd, epochs=2, batch_size=16)
    assert rel(cluster.W, local.W) < 1e-12
