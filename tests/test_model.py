"""SoftmaxXP on every backend: training, cross-backend equivalence, inference, files."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_xp import History, SoftmaxXP, loss_and_grads, to_numpy

# Tolerances of "the same numbers as NumPy" after a few epochs of training.
RTOL = {"float64": 1e-10, "float32": 1e-4}


def blobs(n: int = 600, d: int = 12, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small, learnable problem: Gaussian blobs around k random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(k, d))
    y = rng.integers(0, k, size=n)
    return centres[y] + rng.normal(size=(n, d)), y


def train_on(backend_name: str, device=None, dtype="float64", momentum=0.0, epochs=3):
    X, y = blobs()
    model = SoftmaxXP(
        12,
        4,
        lr=0.2,
        reg=1e-3,
        backend=backend_name,
        device=device,
        dtype=dtype,
        seed=42,
        momentum=momentum,
    )
    history = model.train(
        X[:500], y[:500], X[500:], y[500:], epochs=epochs, batch_size=64, verbose=0
    )
    return model, history


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_same_numbers_as_numpy(backend, dtype, momentum):
    reference, ref_history = train_on("numpy", dtype=dtype, momentum=momentum)
    model, history = train_on(backend.name, backend.device, dtype=dtype, momentum=momentum)
    rtol = RTOL[dtype]
    scale = np.abs(to_numpy(reference.W)).max()
    np.testing.assert_allclose(
        to_numpy(model.W), to_numpy(reference.W), rtol=rtol, atol=rtol * scale
    )
    np.testing.assert_allclose(
        to_numpy(model.b), to_numpy(reference.b), rtol=rtol, atol=rtol * scale
    )
    np.testing.assert_allclose(history.loss, ref_history.loss, rtol=rtol)
    assert history.val_accuracy == pytest.approx(ref_history.val_accuracy, abs=2 / 100)


def test_parameters_live_on_the_backend(backend):
    model = SoftmaxXP(5, 3, backend=backend.name, device=backend.device, seed=0)
    assert model.backend == backend.name
    assert model.W.device == backend.device
    assert tuple(model.W.shape) == (5, 3) and tuple(model.b.shape) == (1, 3)
    assert model.W.dtype == backend.xp.float32
    W = to_numpy(model.W)
    assert 0 < np.abs(W).std() < 0.01  # 0.001 * N(0, 1)
    np.testing.assert_array_equal(to_numpy(model.b), 0)


def test_training_learns(backend):
    _, history = train_on(backend.name, backend.device, epochs=5)
    assert len(history.loss) == len(history.val_accuracy) == len(history.epoch_time) == 5
    assert history.loss[-1] < history.loss[0]
    assert history.val_accuracy[-1] > 0.9
    assert history["loss"] is history.loss
    assert all(t > 0 for t in history.epoch_time)


def test_seed_reproducible_and_different_seeds_differ():
    X, y = blobs()
    runs = []
    for seed in (1, 1, 2):
        model = SoftmaxXP(12, 4, backend="numpy", seed=seed)
        model.train(X, y, epochs=2, verbose=0)
        runs.append(to_numpy(model.W))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_inference(backend):
    model, _ = train_on(backend.name, backend.device)
    X, y = blobs()
    proba = model.predict_proba(X)
    pred = model.predict(X)
    assert tuple(proba.shape) == (600, 4)
    np.testing.assert_allclose(to_numpy(proba).sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(to_numpy(pred), to_numpy(proba).argmax(axis=1))
    assert model.score(X, y) == pytest.approx((to_numpy(pred) == y).mean())
    np.testing.assert_allclose(to_numpy(model.softmax(np.zeros((2, 4)))), 0.25)


def test_compute_loss_and_grads_matches_functional(backend, arrays):
    model = SoftmaxXP(12, 4, backend=backend.name, device=backend.device, dtype="float64", seed=3)
    X, y = blobs(n=40)
    loss, dW, db = model.compute_loss_and_grads(X, y)
    ref = loss_and_grads(arrays(X), arrays(y, "int64"), model.W, model.b, model.reg)
    for got, want in zip((loss, dW, db), ref, strict=True):
        np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=1e-12)


def test_accepts_lists_and_does_not_write_inputs(backend):
    X, y = blobs(n=64)
    X.flags.writeable = False
    y.flags.writeable = False
    X_before = X.copy()
    model = SoftmaxXP(12, 4, backend=backend.name, device=backend.device, seed=0)
    model.train(X.tolist(), y.tolist(), epochs=1, verbose=0)
    model.train(X, y, X, y, epochs=1, verbose=0)
    model.predict(X)
    np.testing.assert_array_equal(X, X_before)


def test_inputs_from_another_backend(backend):
    """A model takes arrays of any backend: they are moved to its own."""
    X, _ = blobs(n=64)
    on_backend = backend.xp.asarray(X, device=backend.device)
    model = SoftmaxXP(12, 4, backend="numpy", seed=0)
    np.testing.assert_array_equal(to_numpy(model.predict(on_backend)), to_numpy(model.predict(X)))


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = blobs(n=100)
    SoftmaxXP(12, 4, backend="numpy", seed=0).train(X, y, X, y, epochs=2, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2") and "val_acc" in lines[1]


def test_fit_is_train():
    assert SoftmaxXP.fit is SoftmaxXP.train
    assert isinstance(History(), History)


def test_save_on_one_backend_load_on_another(backend, tmp_path):
    trained, _ = train_on("numpy", dtype="float32")
    path = trained.save(tmp_path / "model.npz")
    loaded = SoftmaxXP.load(path, backend=backend.name, device=backend.device)
    assert loaded.backend == backend.name
    X, _ = blobs()
    np.testing.assert_array_equal(to_numpy(loaded.predict(X)), to_numpy(trained.predict(X)))
    # ...and back: saved on this backend, loaded on NumPy.
    back = SoftmaxXP.load(loaded.save(tmp_path / "again.npz"), backend="numpy")
    np.testing.assert_array_equal(to_numpy(back.W), to_numpy(trained.W))
    assert (back.lr, back.reg, back.dtype_name) == (trained.lr, trained.reg, "float32")
