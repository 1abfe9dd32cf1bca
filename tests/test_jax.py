"""What only the JAX backend has: device spellings, 32-bit mode, and the compiled SGD epoch."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from softmax_xp import SoftmaxXP, resolve_backend, to_numpy  # noqa: E402
from softmax_xp.solvers import sgd_jax  # noqa: E402
from softmax_xp.solvers.sgd import sgd_epoch  # noqa: E402

X64 = bool(jax.config.jax_enable_x64)


def blobs(n: int = 300, d: int = 6, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    X = rng.normal(scale=2.0, size=(k, d))[y] + rng.normal(size=(n, d))
    return X.astype(np.float32), y


# -- devices ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["cpu", "CPU", "cpu:0", 0, "0", None])
def test_device_spellings(spelling):
    cpu = jax.devices("cpu")[0]
    if spelling in (0, "0", None) and jax.devices()[0].platform != "cpu":
        cpu = jax.devices()[0]  # ids and None name the default platform's devices
    assert resolve_backend("jax", device=spelling).device == cpu
    assert resolve_backend("jax", device=cpu).device == cpu


@pytest.mark.parametrize("spelling", ["cuda:7", "gpu:9", "tpu:5"])
def test_a_device_jax_lacks_is_refused_with_the_devices_there(spelling):
    with pytest.raises(ValueError, match=r"JAX sees no (gpu|tpu) device \d+ here.*cpu:0"):
        SoftmaxXP(4, 2, backend="jax", device=spelling)


@pytest.mark.parametrize("spelling", ["mps", "cuda:x", True, -1])
def test_an_unknown_spelling_says_what_to_pass(spelling):
    with pytest.raises(ValueError, match=r"not a JAX device: pass 'cpu', 'gpu', 'cuda:1'"):
        SoftmaxXP(4, 2, backend="jax", device=spelling)


def test_pickle_and_deepcopy_keep_the_device_by_name():
    model = SoftmaxXP(6, 3, backend="jax", seed=0)
    X, y = blobs()
    model.train(X, y, epochs=2, batch_size=64)
    state = model.__getstate__()
    assert state["_backend"] == ("jax", f"{model.device.platform}:0")
    for twin in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert twin.device == model.device and twin.W.device == model.device
        np.testing.assert_array_equal(to_numpy(twin.W), to_numpy(model.W))
        np.testing.assert_array_equal(to_numpy(twin.predict(X)), to_numpy(model.predict(X)))
    assert "backend='jax', device='cpu:0'" in repr(SoftmaxXP(2, 2, backend="jax", device="cpu"))


def test_auto_never_picks_jax(monkeypatch):
    monkeypatch.delenv("SOFTMAX_XP_BACKEND", raising=False)
    assert resolve_backend("auto").name in ("numpy", "cupy")
    monkeypatch.setenv("SOFTMAX_XP_BACKEND", "jax")
    assert resolve_backend("auto").name == "jax"


# -- 32-bit mode -----------------------------------------------------------------------------------
@pytest.mark.skipif(X64, reason="JAX's 64-bit mode is on: float64 is allowed")
def test_float64_without_x64_says_how_to_enable_it():
    with pytest.raises(ValueError, match=r'jax\.config\.update\("jax_enable_x64", True\)'):
        SoftmaxXP(4, 2, backend="jax", dtype="float64")


def test_labels_and_predictions_use_jax_default_integers():
    model = SoftmaxXP(6, 3, backend="jax", seed=0)
    X, y = blobs()
    model.train(X, y, epochs=1)
    expected = jnp.int64 if X64 else jnp.int32
    assert model.predict(X).dtype == expected


# -- the compiled epoch ----------------------------------------------------------------------------
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("l1_ratio", [0.0, 0.5])
def test_compiled_epoch_is_numpys_epoch(momentum, weighted, l1_ratio):
    """Same order, same batches (the short last one included), same numbers to rounding; with
    an L1 part, the same weights at exactly zero."""
    X, y = blobs(n=203)
    rng = np.random.default_rng(1)
    order = rng.permutation(203)
    W = (0.01 * rng.standard_normal((6, 3))).astype(np.float32)
    b = np.zeros((1, 3), np.float32)
    velocity = (np.full_like(W, 0.01), np.full_like(b, -0.01)) if momentum else None
    weights = rng.uniform(0.2, 2.0, 203).astype(np.float32) if weighted else None
    reg = 0.5 if l1_ratio else 1e-2  # strong enough for the L1 clip to reach zero
    settings = dict(lr=0.3, momentum=momentum, reg=reg, batch_size=32, l1_ratio=l1_ratio)
    want = sgd_epoch(X, y, order, W, b, velocity, weights=weights, xp=np, **settings)

    on = jnp.asarray
    v = None if velocity is None else (on(velocity[0]), on(velocity[1]))
    w = None if weights is None else on(weights)
    got = sgd_epoch(on(X), on(y), on(order), on(W), on(b), v, weights=w, xp=jnp, **settings)
    assert got[3].shape == (7,)  # six batches of 32 and one of 11
    for ours, theirs in zip(
        (got[0], got[1], got[3], *(got[2] or ())),
        (want[0], want[1], want[3], *(want[2] or ())),
        strict=True,
    ):
        np.testing.assert_allclose(to_numpy(ours), theirs, rtol=2e-5, atol=1e-6)
    zeros = to_numpy(got[0]) == 0
    assert np.array_equal(zeros, want[0] == 0) and zeros.any() == bool(l1_ratio)


def test_compiled_once_per_shape_and_reused_across_epochs_and_models():
    X, y = blobs(n=257)
    before = sgd_jax._epoch._cache_size()
    for seed in (0, 1):
        model = SoftmaxXP(6, 3, backend="jax", seed=seed, lr_decay=0.5)  # step size changes
        model.train(X, y, epochs=3, batch_size=64)
        model.partial_train(X, y, epochs=2, batch_size=64)
    assert sgd_jax._epoch._cache_size() == before + 1
    SoftmaxXP(6, 3, backend="jax", seed=0, momentum=0.5).train(X, y, epochs=2, batch_size=64)
    assert sgd_jax._epoch._cache_size() == before + 2  # momentum: a program with velocity


def test_inputs_are_not_changed_and_jax_arrays_are_returned():
    X, y = blobs()
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    model = SoftmaxXP(6, 3, backend="jax", seed=0, momentum=0.9)
    model.train(Xj, yj, Xj, yj, epochs=3, batch_size=50, sample_weight=np.ones(300))
    np.testing.assert_array_equal(to_numpy(Xj), X)
    assert isinstance(model.W, jax.Array) and isinstance(model.predict_proba(Xj), jax.Array)
    assert model.history_.val_accuracy[-1] > 0.8


# -- scikit-learn ----------------------------------------------------------------------------------
def test_sklearn_dispatch_trains_on_jax_and_returns_jax_arrays(monkeypatch):
    sklearn = pytest.importorskip("sklearn")
    from softmax_xp import SoftmaxClassifier

    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    X, y = blobs()
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    with sklearn.config_context(array_api_dispatch=True):
        clf = SoftmaxClassifier(max_iter=5, tol=None, random_state=0).fit(Xj, yj)
        clf.partial_fit(Xj, yj)
        outputs = [clf.predict(Xj), clf.predict_proba(Xj), clf.decision_function(Xj), clf.coef_]
        score = clf.score(Xj, yj)
    assert clf.model_.backend == "jax" and clf.model_.epoch_ == 6
    assert all(isinstance(out, jax.Array) for out in outputs)
    assert outputs[1].dtype == jnp.float32 and score > 0.8
