"""Inference never returns NaN silently, and a library call is quiet by default."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from softmax_xp import SoftmaxXP, to_numpy


def _model(backend, dtype: str = "float32") -> SoftmaxXP:
    model = SoftmaxXP(4, 3, backend=backend.name, device=backend.device, dtype=dtype, seed=0)
    W = np.array([[1.0, -1.0, 0.5], [1.0, -1.0, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    model.W = W
    return model


@pytest.mark.parametrize("big", [3e38, -3e38])
def test_overflowing_logits_raise_instead_of_nan(backend, big):
    """X = +-3e38 is finite float32, but X @ W overflows: an error, not NaN probabilities."""
    model = _model(backend)
    X = np.array([[0.1, 0.2, 0.3, 0.4], [big, big, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning either: one clear error
        for method in (model.predict, model.predict_proba):
            for chunk_size in (None, 1):
                with pytest.raises(ValueError, match=r"overflowed float32.*Scale X.*float64"):
                    method(X, chunk_size=chunk_size)
        with pytest.raises(ValueError, match="overflowed float32"):
            model.score(X, [0, 1, 2], chunk_size=2)
    # The same features in a float64 model are ordinary numbers.
    wide = _model(backend, "float64")
    proba = to_numpy(wide.predict_proba(X))
    assert np.isfinite(proba).all()
    np.testing.assert_array_equal(to_numpy(wide.predict(X)), proba.argmax(axis=1))


def test_ordinary_inputs_still_predict(backend):
    model = _model(backend)
    X = np.random.default_rng(0).normal(size=(10, 4))
    proba = to_numpy(model.predict_proba(X, chunk_size=3))
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(to_numpy(model.predict(X, chunk_size=3)), proba.argmax(axis=1))


def test_train_is_quiet_by_default(capsys):
    X = np.random.default_rng(0).normal(size=(40, 4))
    y = np.arange(40) % 3
    SoftmaxXP(4, 3, backend="numpy", seed=0).train(X, y, X, y, epochs=2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
