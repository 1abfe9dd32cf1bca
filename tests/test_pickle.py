"""A SoftmaxXP pickles and deep-copies on every backend; the copy is independent."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from softmax_xp import SoftmaxXP


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_copy_predicts_the_same_and_is_independent(arrays, how, momentum):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), rng.integers(0, 3, size=60)
    model = SoftmaxXP(4, 3, backend=arrays.backend.name, device=arrays.device,
                      dtype="float64", seed=1, momentum=momentum)  # fmt: skip
    model.train(X, y, epochs=2, batch_size=16, verbose=0)
    twin = pickle.loads(pickle.dumps(model)) if how == "pickle" else copy.deepcopy(model)

    assert twin.backend == model.backend and str(twin.device) == str(model.device)
    assert type(twin.W) is type(model.W) and twin.W.dtype == model.W.dtype
    np.testing.assert_array_equal(
        arrays.host(twin.predict_proba(X)), arrays.host(model.predict_proba(X))
    )
    assert twin.history_.loss == model.history_.loss and twin.epoch_ == model.epoch_

    before = arrays.host(model.W).copy()
    twin.W = twin.W * 0.0 + 7.0  # rebinding the copy's weights
    twin.train(X, y, epochs=1, batch_size=16, verbose=0)  # and training the copy
    np.testing.assert_array_equal(arrays.host(model.W), before)
    assert model.epoch_ == 2

    # both continue the same way: the copy kept the momentum and the RNG state
    again = copy.deepcopy(model)
    model.train(X, y, epochs=1, batch_size=16, verbose=0)
    again.train(X, y, epochs=1, batch_size=16, verbose=0)
    np.testing.assert_array_equal(arrays.host(again.W), arrays.host(model.W))


def test_unpickling_where_the_backend_is_missing_says_so(monkeypatch):
    model = SoftmaxXP(4, 3, backend="numpy", seed=1)
    state = model.__getstate__()
    state["_backend"] = ("cupy", 0)
    monkeypatch.setattr("softmax_xp._backend._cupy_problem", lambda: "CuPy is not installed")
    with pytest.raises(Exception, match="Backend 'cupy' is unavailable"):
        SoftmaxXP.__new__(SoftmaxXP).__setstate__(state)
