"""Training reads the device once per epoch: loss, finiteness and validation hits together."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_xp import SoftmaxXP
from softmax_xp._backend import index_dtype


def test_one_host_read_per_epoch_with_validation(backend, arrays, monkeypatch, internals):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(60, 4)), rng.integers(0, 3, size=60)
    model = SoftmaxXP(4, 3, backend=backend.name, device=backend.device, seed=0, dtype="float64")
    Xd, yd = arrays(X), arrays(y, "int64")
    reads = internals.count_run_host_reads()
    history = model.train(Xd, yd, Xd[:25, ...], yd[:25], epochs=3, batch_size=16, verbose=0)
    assert len(reads) == 3
    internals.monkeypatch.undo()
    assert history.val_accuracy[-1] == model.score(X[:25], y[:25])
    assert len(history.val_accuracy) == 3


def test_hit_counts_stay_exact_in_float32(backend, internals):
    xp, dtype = backend.xp, index_dtype(backend.xp, backend.device)
    counts = [0, 4095, 4096, 2**24 + 1, 2**31 - 1, 2**35 + 12345]
    for count in [c for c in counts if c <= xp.iinfo(dtype).max]:  # int32 on 32-bit JAX
        c = xp.asarray(count, dtype=dtype, device=backend.device)
        high, low = (xp.astype(p, xp.float32) for p in internals.split_count(c))
        assert int(high) * 4096 + int(low) == count


_HOST_READS = ("__bool__", "__int__", "__float__", "__index__", "__complex__", "__array__")


@pytest.mark.parametrize(
    "settings",
    [{}, {"shuffle": "blocks", "block_rows": 20}],
    ids=["global", "blocks"],
)
def test_each_further_epoch_reads_the_device_once(monkeypatch, settings):
    """Every way an array-api-strict array can reach the host (bool(), int(), float(), index,
    NumPy conversion, DLPack) is counted: with sample weights, momentum, a decaying step and
    validation data, each epoch beyond the first adds exactly one read (the rule CuPy needs:
    every host read waits for the GPU), whatever the setup before the first epoch reads."""
    xps = pytest.importorskip("array_api_strict")
    array_type = type(xps.asarray(0))
    reads: list[str] = []
    for name in (*_HOST_READS, "__dlpack__"):
        original = getattr(array_type, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):
            reads.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(array_type, name, counting)
    rng = np.random.default_rng(2)
    device = xps.Device("device1")
    X = xps.asarray(rng.normal(size=(60, 4)), device=device)
    y = xps.asarray(rng.integers(0, 3, size=60), device=device)
    w = xps.asarray(rng.uniform(0.5, 2.0, size=60), device=device)

    def reads_of(epochs: int) -> int:
        model = SoftmaxXP(
            4, 3, backend="array_api_strict", device="device1", seed=0, momentum=0.9,
            lr_decay=0.9, dtype="float64",
        )  # fmt: skip
        del reads[:]
        model.train(
            X, y, X[:25, ...], y[:25], epochs=epochs, batch_size=16, verbose=0, sample_weight=w,
            **settings,
        )  # fmt: skip
        return len(reads)

    assert reads_of(3) - reads_of(1) == 2
