"""Sparse features on every backend that has sparse arrays: a sparse matrix and its dense copy
train to the same weights (SGD and L-BFGS) and predict the same, every path works without
densifying, and bad sparse input is a clear error."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from softmax_xp import ResumeMismatchError, SoftmaxXP, to_numpy

sparse = pytest.importorskip("scipy.sparse")

from benchmarks.text import text_problem  # noqa: E402 - needs scipy

D, K, N = 300, 4, 150  # 150 rows: batches of 32 end with a short one of 22


@pytest.fixture(scope="module")
def text():
    """A small TF-IDF problem (CSR float64) and its dense copy."""
    p = text_problem(N, 60, features=D, classes=K, words=30, vocabulary=600, topical=0.3)
    return p.X, p.y, p.X_test, p.y_test


def on_backend(X, backend):
    """The backend's own sparse matrix of host CSR ``X``: scipy, torch CSR or cupyx."""
    if backend.name == "torch":
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(
                torch.from_numpy(X.indptr), torch.from_numpy(X.indices),
                torch.from_numpy(X.data), size=X.shape, device=backend.device,
            )  # fmt: skip
    if backend.name == "cupy":
        import cupyx.scipy.sparse as cusparse

        return cusparse.csr_matrix(X)
    return X


def model_on(backend, **kwargs):
    args = {"lr": 0.5, "reg": 1e-3, "seed": 0, "dtype": "float64", **kwargs}
    return SoftmaxXP(D, K, backend=backend.name, device=backend.device, **args)


def has_sparse(backend):
    if backend.name not in ("numpy", "torch", "cupy"):
        pytest.skip(f"{backend.name} has no sparse arrays (see test_strict_refuses_sparse)")


def rel(a, b):
    a, b = to_numpy(a), to_numpy(b)
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.parametrize(
    "train_kwargs",
    [
        {},
        {"shuffle": "blocks", "block_rows": 64},
        {"sample_weight": "weights"},
    ],
    ids=["global", "blocks", "weighted"],
)
def test_sgd_on_sparse_gives_the_dense_weights(backend, text, train_kwargs):
    has_sparse(backend)
    X, y, X_test, y_test = text
    if train_kwargs.get("sample_weight") == "weights":
        train_kwargs = {"sample_weight": np.random.default_rng(1).uniform(0, 2, N)}
    Xs = on_backend(X, backend)
    dense, lazy = model_on(backend, momentum=0.9), model_on(backend, momentum=0.9)
    dense.train(X.toarray(), y, epochs=3, batch_size=32, **train_kwargs)
    history = lazy.train(Xs, y, X_test, y_test, epochs=3, batch_size=32, **train_kwargs)
    assert rel(lazy.W, dense.W) < 1e-12 and rel(lazy.b, dense.b) < 1e-12
    np.testing.assert_allclose(history.loss, dense.history_.loss, rtol=1e-12)
    assert history.val_accuracy[-1] == dense.score(X_test.toarray(), y_test)
    assert history.loss[-1] < history.loss[0]


def test_lbfgs_on_sparse_gives_the_dense_weights(backend, text):
    has_sparse(backend)
    pytest.importorskip("scipy.optimize")
    X, y, _, _ = text
    dense, lazy = model_on(backend), model_on(backend)
    dense.train(X.toarray(), y, epochs=50, solver="lbfgs", tol=1e-10)
    lazy.train(on_backend(X, backend), y, epochs=50, solver="lbfgs", tol=1e-10)
    assert rel(lazy.W, dense.W) < 1e-8 and rel(lazy.b, dense.b) < 1e-8
    assert lazy.epoch_ == dense.epoch_


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "predict_log_proba", "decision_function"]
)
def test_inference_on_sparse_matches_dense_to_the_last_chunk(backend, text, method):
    has_sparse(backend)
    X, y, X_test, _ = text
    model = model_on(backend)
    model.train(X.toarray(), y, epochs=2, batch_size=32)
    Xs = on_backend(X_test, backend)
    whole = getattr(model, method)(X_test.toarray())
    for chunk_size in (None, 7):  # 60 rows: 8 chunks of 7 and a last one of 4
        out = getattr(model, method)(Xs, chunk_size=chunk_size)
        assert out.shape == whole.shape
        np.testing.assert_allclose(to_numpy(out), to_numpy(whole), rtol=1e-12, atol=1e-14)


def test_score_on_sparse(backend, text):
    has_sparse(backend)
    X, y, X_test, y_test = text
    model = model_on(backend, lr=2.0, momentum=0.9)
    model.train(on_backend(X, backend), y, epochs=20, batch_size=32)
    expected = model.score(X_test.toarray(), y_test)
    assert model.score(on_backend(X_test, backend), y_test, chunk_size=7) == expected
    assert expected > 0.5  # the problem is learnable (4 classes)


def test_strict_refuses_sparse(text):
    pytest.importorskip("array_api_strict")
    X, y, _, _ = text
    model = SoftmaxXP(D, K, backend="array_api_strict")
    for call in (lambda: model.train(X, y, epochs=1), lambda: model.predict(X)):
        with pytest.raises(TypeError, match=r"array_api_strict backend has no sparse.*toarray"):
            call()


def test_lbfgs_matches_logistic_regression_on_sparse(text):
    """reg <-> C: C = 1 / (reg * n) for three or more classes (see SoftmaxClassifier)."""
    lm = pytest.importorskip("sklearn.linear_model")
    X, y, X_test, _ = text
    reg = 1e-3
    model = SoftmaxXP(D, K, reg=reg, backend="numpy", dtype="float64", seed=0)
    model.train(X, y, epochs=500, solver="lbfgs", tol=1e-10)
    ref = lm.LogisticRegression(C=1 / (reg * N), tol=1e-10, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X_test), ref.predict_proba(X_test), atol=1e-5)


@pytest.mark.parametrize("fmt", ["csc", "coo", "lil", "dok", "csr_array", "int64"])
def test_every_scipy_format_gives_the_csr_weights(text, fmt):
    X, y, _, _ = text
    if fmt == "csr_array":
        other = sparse.csr_array(X)
    elif fmt == "int64":
        other = X.copy()
        other.indices, other.indptr = other.indices.astype(np.int64), other.indptr.astype(np.int64)
    else:
        other = X.asformat(fmt)
    reference, model = (
        SoftmaxXP(D, K, seed=0, backend="numpy"),
        SoftmaxXP(D, K, seed=0, backend="numpy"),
    )
    reference.train(X, y, epochs=2, batch_size=32)
    model.train(other, y, epochs=2, batch_size=32)
    np.testing.assert_array_equal(model.W, reference.W)
    np.testing.assert_array_equal(model.predict(other), reference.predict(X))


def test_torch_coo_and_scipy_on_the_torch_backend(text):
    torch = pytest.importorskip("torch")
    X, y, _, _ = text
    reference = SoftmaxXP(D, K, seed=0, backend="torch", dtype="float64")
    reference.train(X.toarray(), y, epochs=2, batch_size=32)
    coo = torch.from_numpy(X.toarray()).to_sparse()  # COO
    for inp in (coo, X):
        model = SoftmaxXP(D, K, seed=0, backend="torch", dtype="float64")
        model.train(inp, y, epochs=2, batch_size=32)
        assert rel(model.W, reference.W) < 1e-12
    with pytest.raises(TypeError, match="to_sparse_csr"):
        model.predict(torch.from_numpy(X.toarray()).to_sparse_bsr((1, 1)))


def test_sparse_is_never_densified(text, monkeypatch):
    X, y, X_test, y_test = text

    def refuse(self, *args, **kwargs):
        raise AssertionError("a sparse matrix was densified")

    for cls in (sparse.csr_matrix, sparse.csc_matrix, sparse.coo_matrix):
        monkeypatch.setattr(cls, "toarray", refuse)
        monkeypatch.setattr(cls, "todense", refuse)
    model = SoftmaxXP(D, K, seed=0, backend="numpy", dtype="float64")
    model.train(X, y, X_test, y_test, epochs=2, batch_size=32)
    model.train(X, y, X_test, y_test, epochs=2, solver="lbfgs")
    model.predict_proba(X_test)
    model.score(X_test, y_test)


def test_bad_sparse_input_is_a_clear_error(text):
    X, y, _, _ = text
    model = SoftmaxXP(D, K, seed=0, backend="numpy")
    bad = X.copy()
    bad.data[5] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.train(bad, y, epochs=1)
    bad.data[5] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        model.predict(bad)
    with pytest.raises(ValueError, match="contains the label 4, but SoftmaxXP has num_classes=4"):
        model.train(X, np.where(y == 0, 4, y), epochs=1)
    with pytest.raises(ValueError, match="X has 299 features, but SoftmaxXP is expecting 300"):
        model.train(X[:, :-1], y, epochs=1)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        model.train(X, y[:-1], epochs=1)
    with pytest.raises(TypeError, match=r"y is a sparse.*never sparse labels.*y\.toarray\(\)"):
        model.train(X, sparse.csr_matrix(y[:, None]), epochs=1)
    with pytest.raises(TypeError, match="complex"):
        model.train(X.astype(np.complex128), y, epochs=1)
    with pytest.warns(UserWarning, match="integer dtype int64 with values up to 7"):
        model.predict(sparse.csr_matrix(np.eye(3, D, dtype=np.int64) * 7))


def test_checkpoints_resume_and_fingerprint_on_sparse(text, tmp_path):
    """A sparse matrix and its dense copy have one fingerprint: either resumes the other's
    checkpoint; other rows are refused."""
    X, y, _, _ = text
    whole = SoftmaxXP(D, K, seed=0, backend="numpy", dtype="float64", momentum=0.9)
    whole.train(X, y, epochs=4, batch_size=32)
    path = tmp_path / "ckpt.npz"
    SoftmaxXP(D, K, seed=0, backend="numpy", dtype="float64", momentum=0.9).train(
        X.toarray(), y, epochs=2, batch_size=32, checkpoint=path
    )
    resumed = SoftmaxXP(D, K, seed=0, backend="numpy", dtype="float64", momentum=0.9)
    resumed.train(X, y, epochs=4, batch_size=32, resume_from=path)
    assert rel(resumed.W, whole.W) < 1e-12
    order = np.random.default_rng(0).permutation(N)
    with pytest.raises(ResumeMismatchError, match="trained on other data"):
        SoftmaxXP(D, K, seed=0, backend="numpy", dtype="float64", momentum=0.9).train(
            X[order], y[order], epochs=4, batch_size=32, resume_from=path
        )


# -- scikit-learn ------------------------------------------------------------------------------
def test_classifier_on_sparse_matches_dense(text):
    pytest.importorskip("sklearn")
    from softmax_xp import SoftmaxClassifier

    X, y, X_test, y_test = text
    labels = np.array(["a", "b", "c", "d"])[y]
    weights = np.random.default_rng(2).uniform(0.5, 2, N)
    for solver in ("sgd", "lbfgs"):
        args = {"solver": solver, "backend": "numpy", "random_state": 0, "max_iter": 200}
        dense = SoftmaxClassifier(**args).fit(X.toarray(), labels, sample_weight=weights)
        lazy = SoftmaxClassifier(**args).fit(X.tocsc(), labels, sample_weight=weights)
        assert rel(lazy.coef_, dense.coef_) < 1e-8
        np.testing.assert_allclose(
            lazy.predict_proba(X_test), dense.predict_proba(X_test.toarray()), atol=1e-10
        )
        assert list(lazy.predict(X_test)) == list(dense.predict(X_test.toarray()))
        named = np.array(["a", "b", "c", "d"])[y_test]
        assert lazy.score(X_test, named) == dense.score(X_test.toarray(), named)
    dense = SoftmaxClassifier(backend="numpy", random_state=0, dtype="float64")
    lazy = SoftmaxClassifier(backend="numpy", random_state=0, dtype="float64")
    for part in (slice(0, 100), slice(100, N)):
        dense.partial_fit(X[part].toarray(), labels[part], classes=["a", "b", "c", "d"])
        lazy.partial_fit(X[part], labels[part], classes=["a", "b", "c", "d"])
    assert rel(lazy.coef_, dense.coef_) < 1e-12
    assert lazy.__sklearn_tags__().input_tags.sparse


def test_classifier_with_dispatch_runs_sparse_on_numpy(text, monkeypatch):
    """Array API dispatch with a scipy.sparse X: NumPy's namespace, as in scikit-learn."""
    sklearn = pytest.importorskip("sklearn")
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    pytest.importorskip("array_api_compat")
    from softmax_xp import SoftmaxClassifier

    X, y, X_test, _ = text
    with sklearn.config_context(array_api_dispatch=True):
        clf = SoftmaxClassifier(backend="torch", random_state=0, max_iter=3).fit(X, y)
        assert clf.model_.backend == "numpy" and isinstance(clf.coef_, np.ndarray)
        assert isinstance(clf.predict_proba(X_test), np.ndarray)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_lazy_sparse_steps_match_dense_across_renormalisations(
    backend, text, momentum, monkeypatch
):
    """Sparse SGD keeps W as M [P; Q] and forms it every RENORM steps: with RENORM = 8, an
    epoch of 37 batches of 4 rows and a short last one of 2 forms it 4 times inside the epoch
    and once at its end, 7 rows of W at a time; the weights and losses stay the dense loop's."""
    has_sparse(backend)
    import softmax_xp.solvers.sgd_sparse as lazy_sgd

    monkeypatch.setattr(lazy_sgd, "RENORM", 8)
    monkeypatch.setattr(lazy_sgd, "FORM_ROWS", 7)  # 300 rows of W: 42 blocks and one of 6
    calls = []
    real = lazy_sgd.sparse_sgd_epoch
    monkeypatch.setattr(
        lazy_sgd, "sparse_sgd_epoch", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    X, y, _, _ = text
    w = np.random.default_rng(3).uniform(0, 2, N)
    dense, lazy = model_on(backend, momentum=momentum), model_on(backend, momentum=momentum)
    dense.train(X.toarray(), y, epochs=2, batch_size=4, sample_weight=w)
    lazy.train(on_backend(X, backend), y, epochs=2, batch_size=4, sample_weight=w)
    assert len(calls) == 2  # the lazy epoch ran, once per epoch
    assert rel(lazy.W, dense.W) < 1e-12 and rel(lazy.b, dense.b) < 1e-12
    np.testing.assert_allclose(lazy.history_.loss, dense.history_.loss, rtol=1e-12)


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_elastic_net_on_sparse_gives_the_dense_weights(text, solver):
    """The L1 part's proximal step touches every weight: sparse SGD takes the gathering loop
    there (and L-BFGS its W = U - V objective); the weights stay the dense ones."""
    X, y, _, _ = text
    args = {"penalty": "elasticnet", "l1_ratio": 0.5, "reg": 1e-2, "momentum": 0.9}
    dense = SoftmaxXP(D, K, backend="numpy", dtype="float64", seed=0, **args)
    lazy = SoftmaxXP(D, K, backend="numpy", dtype="float64", seed=0, **args)
    dense.train(X.toarray(), y, epochs=3, batch_size=32, solver=solver)
    lazy.train(X, y, epochs=3, batch_size=32, solver=solver)
    assert rel(lazy.W, dense.W) < (1e-12 if solver == "sgd" else 1e-8)
    assert np.count_nonzero(lazy.W == 0) == np.count_nonzero(dense.W == 0) > 0
