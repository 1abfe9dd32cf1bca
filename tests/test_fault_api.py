"""Fault injection on the Python API: a callback that raises at the first or the last epoch, a
batch size far above the number of rows, a checkpoint or model path that is a folder or lies
under a file."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from softmax_xp import SoftmaxXP
from softmax_xp._backend import to_numpy
from softmax_xp._modelfile import read_checkpoint

D, K, N = 6, 3, 40


def data():
    rng = np.random.default_rng(0)
    return rng.random((N, D)).astype(np.float32), rng.integers(0, K, N)


def new_model(backend="numpy", **kwargs):
    return SoftmaxXP(D, K, backend=backend, seed=0, momentum=0.5, **kwargs)


@pytest.mark.parametrize("error", [RuntimeError("callback failed"), KeyboardInterrupt()])
@pytest.mark.parametrize("at", [1, 3])
def test_a_callback_that_raises_leaves_the_model_and_checkpoint_at_that_epoch(tmp_path, error, at):
    """The callback runs after the epoch is committed and checkpointed: the model, its History
    and the checkpoint all hold that epoch, and resuming finishes the run as if unbroken."""
    X, y = data()
    path = tmp_path / "checkpoint.npz"

    def callback(epoch, history):
        if epoch == at:
            raise error

    model = new_model()
    with pytest.raises(type(error)):
        model.train(X, y, epochs=3, batch_size=16, checkpoint=path, callback=callback)
    saved = read_checkpoint(path)
    assert model.epoch_ == saved.epoch == at and len(model.history_) == at
    np.testing.assert_array_equal(to_numpy(model.W), saved.W)
    resumed = new_model()
    resumed.train(X, y, epochs=3, batch_size=16, resume_from=path)
    reference = new_model()
    reference.train(X, y, epochs=3, batch_size=16)
    np.testing.assert_array_equal(to_numpy(resumed.W), to_numpy(reference.W))


def test_a_batch_size_far_above_the_rows_is_one_batch_of_all_rows(backend):
    """``batch_size=10**30`` on 40 rows is full-batch SGD, with no table of 10**30 entries
    (before: 'Maximum allowed dimension exceeded'; 10**8 allocated gigabytes)."""
    X, y = data()
    whole, huge = new_model(backend.name), new_model(backend.name)
    whole.train(X, y, epochs=2, batch_size=N)
    tracemalloc.start()
    try:
        huge.train(X, y, epochs=2, batch_size=10**30)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(to_numpy(huge.W), to_numpy(whole.W), rtol=1e-6)
    np.testing.assert_allclose(huge.history_.loss, whole.history_.loss, rtol=1e-6)
    if backend.name == "numpy":
        assert peak < 2**20


@pytest.mark.parametrize("write", ["save", "checkpoint"])
def test_a_target_that_is_a_folder_is_named_as_such(tmp_path, write):
    X, y = data()
    target = tmp_path / "model.npz"
    target.mkdir()
    model = new_model()
    with pytest.raises(IsADirectoryError, match=rf"cannot write {target}: it is a folder$"):
        if write == "save":
            model.save(target)
        else:
            model.train(X, y, epochs=1, checkpoint=target)
    assert list(tmp_path.iterdir()) == [target] and list(target.iterdir()) == []


def test_a_target_under_a_file_is_named_as_such(tmp_path):
    (tmp_path / "runs").write_text("a file")
    target = tmp_path / "runs" / "one" / "model.npz"
    with pytest.raises(NotADirectoryError, match=r"runs/one or a folder above it is a file"):
        new_model().save(target)
    assert (tmp_path / "runs").read_text() == "a file"
