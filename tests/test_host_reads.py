"""Training reads the device once per epoch: loss, finiteness and validation hits together."""

from __future__ import annotations

import numpy as np

import softmax_xp.model as model_module
from softmax_xp import SoftmaxXP


def test_one_host_read_per_epoch_with_validation(backend, arrays, monkeypatch):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(60, 4)), rng.integers(0, 3, size=60)
    model = SoftmaxXP(4, 3, backend=backend.name, device=backend.device, seed=0, dtype="float64")
    Xd, yd = arrays(X), arrays(y, "int64")
    reads = []

    def counting(x):
        reads.append(x)
        return original(x)

    original = model_module.to_numpy
    monkeypatch.setattr(model_module, "to_numpy", counting)
    history = model.train(Xd, yd, Xd[:25, ...], yd[:25], epochs=3, batch_size=16, verbose=0)
    assert len(reads) == 3
    monkeypatch.setattr(model_module, "to_numpy", original)
    assert history.val_accuracy[-1] == model.score(X[:25], y[:25])
    assert len(history.val_accuracy) == 3


def test_hit_counts_stay_exact_in_float32(backend):
    xp = backend.xp
    for count in (0, 4095, 4096, 2**24 + 1, 2**35 + 12345):
        c = xp.asarray(count, dtype=xp.int64, device=backend.device)
        high, low = (xp.astype(p, xp.float32) for p in model_module._split_count(c))
        assert int(high) * 4096 + int(low) == count
