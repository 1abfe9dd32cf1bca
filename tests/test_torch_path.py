"""PyTorch's gather in the SGD loop (Tensor.index_select) gives what the standard take gives."""

from __future__ import annotations

import numpy as np
import pytest

import softmax_xp.solvers.sgd as sgd
from softmax_xp import SoftmaxXP


def test_torch_take_path_equals_the_standard_take(monkeypatch):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(70, 5)), rng.integers(0, 4, size=70)

    def train() -> tuple:
        model = SoftmaxXP(5, 4, backend="torch", seed=1, momentum=0.5)
        history = model.train(X, y, epochs=3, batch_size=16, verbose=0)
        return model.W, model.b, history.loss

    fast = train()
    xp = SoftmaxXP(5, 4, backend="torch").xp
    assert sgd.take_of(xp) is not xp.take  # the torch path is the one under test
    monkeypatch.setattr(sgd, "take_of", lambda xp: xp.take)
    standard = train()
    assert torch.equal(fast[0], standard[0]) and torch.equal(fast[1], standard[1])
    assert fast[2] == standard[2]


def test_take_of_gathers_rows_and_columns(arrays):
    xp = arrays.xp
    x = arrays(np.arange(12.0).reshape(3, 4))
    idx = arrays([2, 0, 2], "int64")
    take = sgd.take_of(xp)
    np.testing.assert_array_equal(
        arrays.host(take(x, idx, axis=0)), np.arange(12.0).reshape(3, 4)[[2, 0, 2]]
    )
    np.testing.assert_array_equal(
        arrays.host(take(x, idx, axis=1)), np.arange(12.0).reshape(3, 4)[:, [2, 0, 2]]
    )
