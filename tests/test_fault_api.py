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


def test_out_of_memory_in_epoch_2_leaves_epoch_1_in_the_model_and_checkpoint(
    tmp_path, monkeypatch, internals
):
    sgd_epoch = internals.sgd_epoch

    calls = {"n": 0}

    def second_epoch_fails(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise MemoryError("Unable to allocate 1.2 GiB for an array")
        return sgd_epoch(*args, **kwargs)

    internals.patch_sgd_epoch(second_epoch_fails)
    X, y = data()
    path = tmp_path / "checkpoint.npz"
    model = new_model()
    with pytest.raises(MemoryError):
        model.train(X, y, epochs=3, batch_size=16, checkpoint=path)
    saved = read_checkpoint(path)
    assert model.epoch_ == saved.epoch == 1 and len(model.history_) == 1
    np.testing.assert_array_equal(to_numpy(model.W), saved.W)


@pytest.mark.parametrize("code", ["ENOSPC", "EACCES", "EROFS"])
def test_a_failed_rename_keeps_the_previous_checkpoint_and_names_the_file(
    tmp_path, monkeypatch, code
):
    import errno
    import os

    X, y = data()
    path = tmp_path / "checkpoint.npz"
    model = new_model()
    model.train(X, y, epochs=1, batch_size=16, checkpoint=path)
    before = path.read_bytes()
    number = getattr(errno, code)

    def replace(source, target):
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match=rf"cannot write {path}: {os.strerror(number)}") as info:
        model.train(X, y, epochs=2, batch_size=16, checkpoint=path)
    assert info.value.errno == number
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["checkpoint.npz"]


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


@pytest.mark.parametrize("where", ["read-only folder", "a folder", "under a file"])
def test_a_checkpoint_that_cannot_be_written_fails_before_training(
    tmp_path, monkeypatch, where, internals
):
    """Not after the first epoch (minutes, on a large data set): at once, naming the file."""
    import errno
    import os

    X, y = data()
    path = tmp_path / "checkpoint.npz"
    if where == "read-only folder":
        real_open = os.open

        def read_only(name, *args, **kwargs):
            if str(name).endswith(".tmp"):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), name)
            return real_open(name, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only)
        error, message = OSError, rf"cannot write {path}: Read-only file system"
    elif where == "a folder":
        path.mkdir()
        error, message = IsADirectoryError, rf"cannot write {path}: it is a folder"
    else:
        (tmp_path / "runs").write_text("a file")
        path = tmp_path / "runs" / "checkpoint.npz"
        error, message = NotADirectoryError, r"runs or a folder above it is a file"
    internals.patch_sgd_epoch(lambda *a, **k: pytest.fail("trained"))
    model = new_model()
    with pytest.raises(error, match=message):
        model.train(X, y, epochs=2, checkpoint=path)
    assert model.epoch_ == 0
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


@pytest.mark.parametrize("write", ["save", "checkpoint"])
def test_a_target_that_is_a_folder_is_named_as_such(tmp_path, write):
    X, y = data()
    target = tmp_path / "model.npz"
    target.mkdir()
    model = new_model()
    message = "is a folder; give the file's name" if write == "save" else "it is a folder$"
    with pytest.raises(IsADirectoryError, match=message):
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


# -- the training data's fingerprint --------------------------------------------------------------
def checkpointed(tmp_path, X, y, backend="numpy"):
    path = tmp_path / "checkpoint.npz"
    new_model(backend).train(X, y, epochs=1, batch_size=16, checkpoint=path)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("features", "the feature values differ"),
        ("labels", "the labels differ"),
        ("row order", "the labels differ"),
    ],
)
def test_resume_on_other_data_of_the_same_size_is_refused(tmp_path, change, message):
    X, y = data()
    path = checkpointed(tmp_path, X, y)
    if change == "features":
        X = X.copy()
        X[7, 2] += 0.5
    elif change == "labels":
        y = (y + 1) % K
    else:
        X, y = X[::-1].copy(), y[::-1].copy()
    model = new_model()
    with pytest.raises(ValueError, match=f"trained on other data: {message}"):
        model.train(X, y, epochs=2, batch_size=16, resume_from=path)
    assert model.epoch_ == 0


def test_resume_on_the_same_data_passes_the_fingerprint_on_every_backend(backend, tmp_path):
    """Sums differ in their last bits between backends: a NumPy checkpoint resumes anywhere."""
    X, y = data()
    path = checkpointed(tmp_path, X, y)
    model = new_model(backend.name)
    model.train(X, y, epochs=2, batch_size=16, resume_from=path)
    assert model.epoch_ == 2


def test_a_checkpoint_without_a_fingerprint_still_resumes(tmp_path):
    """Checkpoints written before the fingerprint (or by a Dask run) are not checked."""
    from softmax_xp._io import read_npz, write_npz_atomic

    X, y = data()
    path = checkpointed(tmp_path, X, y)
    arrays, header = read_npz(path)
    assert header["data"]["rows"] == N
    header = {k: v for k, v in header.items() if k not in ("data", "format", "format_version")}
    write_npz_atomic(path, arrays, header)
    model = new_model()
    model.train(X[::-1].copy(), y, epochs=2, batch_size=16, resume_from=path)
    assert model.epoch_ == 2


@pytest.mark.parametrize(
    "data_entry",
    [{"rows": N}, {"rows": N + 1, "labels": 0, "features": [0.0] * 8}, "abc", [1, 2]],
)
def test_a_malformed_fingerprint_is_a_model_file_error(tmp_path, data_entry):
    from softmax_xp._io import ModelFileError, read_npz, write_npz_atomic

    X, y = data()
    path = checkpointed(tmp_path, X, y)
    arrays, header = read_npz(path)
    header = {k: v for k, v in header.items() if k not in ("format", "format_version")}
    write_npz_atomic(path, arrays, {**header, "data": data_entry})
    with pytest.raises(ModelFileError, match="fingerprint"):
        read_checkpoint(path)


# -- damaged model files and checkpoints, byte by byte --------------------------------------------
@pytest.mark.parametrize("kind", ["model", "checkpoint"])
def test_every_cut_and_every_flipped_bit_is_refused_or_harmless(tmp_path, kind):
    """Cut anywhere (each of the first and last 64 bytes, every 7th between): a ModelFileError. Flip a bit
    anywhere: a ModelFileError, or (in zip fields that hold no content, such as timestamps) the
    very same content; never another model."""
    from softmax_xp._io import ModelFileError
    from softmax_xp._modelfile import read_model

    X, y = data()
    path = tmp_path / f"{kind}.npz"
    if kind == "model":
        new_model().save(path)
        load = read_model
    else:
        new_model().train(X, y, epochs=1, batch_size=16, checkpoint=path)
        load = read_checkpoint

    def content(loaded):
        if kind == "model":
            return repr(loaded)
        fields = (loaded.W, loaded.b, *loaded.velocity)
        return repr(([f.tolist() for f in fields], loaded.hyperparameters, loaded.epoch,
                     loaded.history, loaded.rng_state, loaded.data))  # fmt: skip

    original = path.read_bytes()
    reference = content(load(path))
    damaged = tmp_path / "damaged.npz"
    size = len(original)
    positions = sorted({*range(64), *range(0, size, 7), *range(size - 64, size)})
    for cut in positions:
        damaged.write_bytes(original[:cut])
        with pytest.raises(ModelFileError):
            load(damaged)
    harmless = 0
    for position in positions:
        flipped = bytearray(original)
        flipped[position] ^= 1 << (position % 8)
        damaged.write_bytes(bytes(flipped))
        try:
            loaded = load(damaged)
        except ModelFileError:
            continue
        assert content(loaded) == reference, f"a flipped bit at byte {position} changed the model"
        harmless += 1
    assert harmless < len(positions) // 2  # most bytes are content the zip CRC-32 covers


# -- devices --------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["garbage", "cuda:7", "7", "meta"])
def test_a_torch_device_that_is_not_here_is_a_value_error_listing_those_that_are(device):
    """Before: a raw RuntimeError, or (cuda on a CPU build) 'does not support float32'."""
    torch = pytest.importorskip("torch")
    if device in ("cuda:7", "7") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a CUDA device 7")
    with pytest.raises(ValueError, match=r"(?i)this machine has: cpu"):
        SoftmaxXP(D, K, backend="torch", device=device)


def test_a_torch_device_given_by_name_or_object_works():
    torch = pytest.importorskip("torch")
    for device in ("cpu", torch.device("cpu")):
        assert SoftmaxXP(D, K, backend="torch", device=device).device == torch.device("cpu")


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("callback", 5, r"callback must be a function called as callback\(epoch, history\)"),
        ("checkpoint", 5, r"checkpoint must be a file path \(a str or pathlib.Path\), got 5"),
        ("resume_from", ["c.npz"], r"resume_from must be a file path .*got \['c.npz'\]"),
    ],
)
def test_run_hooks_of_the_wrong_type_fail_before_training(
    monkeypatch, argument, value, message, internals
):

    internals.patch_sgd_epoch(lambda *a, **k: pytest.fail("trained"))
    X, y = data()
    with pytest.raises(TypeError, match=message):
        new_model().train(X, y, epochs=1, **{argument: value})
