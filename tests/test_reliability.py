"""No lost work and no surprises: divergence, checkpoints and resume, Ctrl-C, model files, device
out-of-memory and chunked inference."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from softmax_xp import (
    DeviceMemoryError,
    ModelFileError,
    SoftmaxXP,
    TrainingDivergedError,
    _random,
    to_numpy,
)
from softmax_xp._errors import is_out_of_memory
from softmax_xp._io import write_npz_atomic
from softmax_xp.solvers.sgd import sgd_epoch as real_sgd_epoch

D, K = 6, 3


def blobs(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(K, D))
    y = rng.integers(0, K, size=n)
    return centres[y] + rng.normal(size=(n, D)), y


X, Y = blobs()
X_VAL, Y_VAL = blobs(40, seed=1)


def new_model(backend=None, **kwargs) -> SoftmaxXP:
    args = {"lr": 0.3, "reg": 1e-3, "momentum": 0.9, "lr_decay": 0.9, "seed": 7, **kwargs}
    if backend is None:
        return SoftmaxXP(D, K, backend="numpy", **args)
    return SoftmaxXP(D, K, backend=backend.name, device=backend.device, **args)


def fit(model: SoftmaxXP, epochs: int, **kwargs):
    return model.train(X, Y, X_VAL, Y_VAL, epochs=epochs, batch_size=16, verbose=0, **kwargs)


def interrupt_on_call(internals, call: int, error: BaseException) -> None:
    """Make the ``call``-th sgd_epoch of the next training raise ``error``."""
    calls = {"n": 0}

    def sgd_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise error
        return real_sgd_epoch(*args, **kwargs)

    internals.patch_sgd_epoch(sgd_epoch)


def assert_same(a, b, exact: bool) -> None:
    if exact:
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    else:
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-5, atol=1e-7)


# -- divergence -----------------------------------------------------------------------------------
def test_huge_lr_raises_training_diverged_and_keeps_the_last_finite_weights(backend, internals):
    model = new_model(backend, lr=1e30)
    W, b = to_numpy(model.W), to_numpy(model.b)
    with pytest.raises(TrainingDivergedError, match="epoch 1: the loss of batch 2 of 8") as info:
        fit(model, 5)
    error = info.value
    assert isinstance(error, RuntimeError) and "Try a smaller lr, e.g. lr=1e+29" in str(error)
    assert (error.epoch, error.batch, model.epoch_, len(error.history)) == (1, 2, 0, 0)
    np.testing.assert_array_equal(to_numpy(model.W), W)
    np.testing.assert_array_equal(to_numpy(model.b), b)
    np.testing.assert_array_equal(to_numpy(internals.state(model).velocity[0]), 0)


def test_divergence_names_the_first_non_finite_batch_and_keeps_momentum(
    monkeypatch, tmp_path, internals
):
    reference = new_model()
    fit(reference, 2)
    calls = {"n": 0}

    def sgd_epoch(*args, **kwargs):
        W, b, velocity, losses = real_sgd_epoch(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            losses = np.where(np.arange(losses.shape[0]) >= 4, np.nan, losses)
            W = W * np.nan
        return W, b, velocity, losses

    internals.patch_sgd_epoch(sgd_epoch)
    model = new_model()
    with pytest.raises(TrainingDivergedError, match="epoch 3: the loss of batch 5 of 8 is nan"):
        fit(model, 4, checkpoint=tmp_path / "c.npz")
    assert header_of(tmp_path / "c.npz")["epoch"] == 2
    assert (model.epoch_, len(model.history_), model.history_.loss) == (
        2,
        2,
        reference.history_.loss,
    )
    for ours, theirs in zip(
        (model.W, model.b, *internals.state(model).velocity),
        (reference.W, reference.b, *internals.state(reference).velocity),
        strict=True,
    ):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("part", [1, 2, 3])
def test_divergence_of_the_parameters_alone_is_caught(monkeypatch, part, internals):
    """A last batch that overflows W, b or the momentum leaves every batch loss finite."""

    def sgd_epoch(*args, **kwargs):
        W, b, velocity, losses = real_sgd_epoch(*args, **kwargs)
        params = [W, b, *velocity]
        params[part] = params[part] * np.inf
        return params[0], params[1], tuple(params[2:]), losses

    internals.patch_sgd_epoch(sgd_epoch)
    model = new_model()
    with pytest.raises(TrainingDivergedError, match="weights overflowed") as info:
        fit(model, 2)
    assert info.value.batch is None and model.epoch_ == 0
    assert np.isfinite(model.b).all() and np.isfinite(internals.state(model).velocity[1]).all()


# -- checkpoints, resume and Ctrl-C ---------------------------------------------------------------
def test_interrupted_run_resumes_to_the_same_weights(backend, monkeypatch, tmp_path, internals):
    """Ctrl-C in epoch 3, then resume to the same total: the same result as one run (bit for bit
    on NumPy)."""
    exact = backend.name == "numpy"
    reference = new_model(backend)
    full = fit(reference, 5)

    path = tmp_path / "run" / "checkpoint.npz"
    model = new_model(backend)
    interrupt_on_call(internals, 3, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        fit(model, 5, checkpoint=path)
    monkeypatch.undo()
    # The model, its History and the checkpoint all stop at epoch 2.
    assert model.epoch_ == 2 and len(model.history_) == 2
    two = new_model(backend)
    fit(two, 2)
    for ours, theirs in zip(
        (model.W, model.b, *internals.state(model).velocity),
        (two.W, two.b, *internals.state(two).velocity),
        strict=True,
    ):
        assert_same(ours, theirs, exact)
    assert _random.get_state(internals.state(model).rng) == _random.get_state(
        internals.state(two).rng
    )
    assert header_of(path)["epoch"] == 2

    resumed = new_model(backend, seed=123)  # the seed does not matter: the RNG state is restored
    history = fit(resumed, 5, resume_from=path, checkpoint=path)
    assert len(history) == 5 and resumed.epoch_ == 5
    for ours, theirs in zip(
        (resumed.W, resumed.b, *internals.state(resumed).velocity),
        (reference.W, reference.b, *internals.state(reference).velocity),
        strict=True,
    ):
        assert_same(ours, theirs, exact)
    if exact:
        assert history.loss == full.loss and history.val_accuracy == full.val_accuracy
    else:
        np.testing.assert_allclose(history.loss, full.loss, rtol=1e-5)


def test_checkpoint_is_written_every_epoch(tmp_path, internals):
    def epoch_on_disk() -> int:
        return header_of(tmp_path / "ckpt.npz")["epoch"]

    seen = []
    path = tmp_path / "ckpt"  # .npz is appended
    model = new_model()
    fit(model, 3, checkpoint=path, callback=lambda e, h: seen.append((e, len(h), epoch_on_disk())))
    assert seen == [(1, 1, 1), (2, 2, 2), (3, 3, 3)]
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]  # no temporary files left
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["W", "__header__", "b", "vW", "vb"]
        header = json.loads(str(npz["__header__"]))
    assert header["kind"] == "checkpoint" and header["history"]["loss"] == model.history_.loss
    assert header["rng_state"] == _random.get_state(internals.state(model).rng)
    assert (header["lr"], header["batch_size"], header["n_samples"]) == (0.3, 16, len(X))
    fit(new_model(), 4, resume_from=path)  # finds ckpt.npz, as the checkpoint was named


def test_checkpoints_are_synced_to_disk_before_they_replace_the_old_one(monkeypatch, tmp_path):
    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr("softmax_xp._io.os.fsync", lambda fd: (events.append("fsync"), fsync(fd)))
    monkeypatch.setattr(
        "softmax_xp._io.os.replace", lambda a, b: (events.append("replace"), replace(a, b))
    )
    fit(new_model(), 2, checkpoint=tmp_path / "c.npz")
    # the file's data, the rename, then the folder (so the rename itself is durable)
    assert events == ["fsync", "replace", "fsync"] * 2


def test_a_failed_checkpoint_write_keeps_the_previous_one(monkeypatch, tmp_path):
    path = tmp_path / "checkpoint.npz"
    model = new_model()
    fit(model, 1, checkpoint=path)
    before = path.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr("softmax_xp._io.np.savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        fit(model, 3, checkpoint=path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["checkpoint.npz"]


def test_resume_continues_the_epoch_count(tmp_path):
    path = tmp_path / "c.npz"
    fit(new_model(), 2, checkpoint=path)
    model = new_model()
    lines = []
    fit(model, 2, resume_from=path, callback=lambda e, h: lines.append(e))
    assert lines == [] and len(model.history_) == 2  # already done: returns at once
    fit(model, 4, resume_from=path, callback=lambda e, h: lines.append(e))
    assert lines == [3, 4]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lr": 0.5}, r"lr=0.3 \(here 0.5\)"),
        ({"momentum": 0.5}, "momentum=0.9"),
        ({"batch_size": 32}, r"batch_size=16 \(here 32\)"),
        ({"n": 100}, r"n_samples=120 \(here 100\)"),
        ({"epochs": 1}, "has 2 completed epochs, more than epochs=1"),
    ],
)
def test_resume_refuses_a_checkpoint_of_another_run(tmp_path, change, message):
    path = tmp_path / "c.npz"
    fit(new_model(), 2, checkpoint=path)
    model = new_model(**{k: v for k, v in change.items() if k in ("lr", "momentum")})
    W = model.W
    n = change.get("n", len(X))
    with pytest.raises(ValueError, match=message):
        model.train(
            X[:n],
            Y[:n],
            epochs=change.get("epochs", 4),
            batch_size=change.get("batch_size", 16),
            verbose=0,
            resume_from=path,
        )
    assert model.W is W  # nothing restored


def test_model_file_as_resume_from_and_checkpoint_as_model(tmp_path):
    model = new_model()
    fit(model, 2, checkpoint=tmp_path / "checkpoint.npz")
    model_file = model.save(tmp_path / "model.npz")
    with pytest.raises(ModelFileError, match="is a model file, not a checkpoint"):
        fit(new_model(), 3, resume_from=model_file)
    loaded = SoftmaxXP.load(tmp_path / "checkpoint.npz", backend="numpy")
    np.testing.assert_array_equal(loaded.W, model.W)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    with pytest.raises(FileNotFoundError, match=r"No checkpoint at .*missing\.npz"):
        fit(new_model(), 3, resume_from=tmp_path / "missing.npz")


@pytest.mark.parametrize(("written_by", "resumed_by"), [("sgd", "lbfgs"), ("lbfgs", "sgd")])
def test_resume_refuses_a_checkpoint_of_the_other_solver(tmp_path, written_by, resumed_by):
    path = tmp_path / "c.npz"
    fit(new_model(), 2, checkpoint=path, solver=written_by)
    assert header_of(path)["solver"] == written_by
    model = new_model()
    W = model.W
    message = f"written by solver='{written_by}', this run uses solver='{resumed_by}'"
    with pytest.raises(ValueError, match=message):
        fit(model, 4, resume_from=path, solver=resumed_by)
    assert model.W is W and len(model.history_) == 0  # nothing restored
    fit(model, 4, resume_from=path, solver=written_by)  # its own solver resumes it
    assert len(model.history_) >= 2


def test_a_checkpoint_without_a_solver_is_an_sgd_one(tmp_path):
    """Checkpoints written before the solver was recorded were all SGD's: still resumable."""
    path = tmp_path / "c.npz"
    fit(new_model(), 2, checkpoint=path)
    old = rewrite(path, {"solver": DELETE})
    assert "solver" not in header_of(old)
    with pytest.raises(ValueError, match="written by solver='sgd'"):
        fit(new_model(), 4, resume_from=old, solver="lbfgs")
    model = new_model()
    fit(model, 4, resume_from=old)
    assert len(model.history_) == 4
    with pytest.raises(ModelFileError, match="solver is 'adam', not 'sgd' or 'lbfgs'"):
        fit(new_model(), 4, resume_from=rewrite(path, {"solver": "adam"}))


def test_keyboard_interrupt_in_the_first_epoch_leaves_the_initial_weights(monkeypatch, internals):
    model = new_model()
    W, rng_state = model.W, _random.get_state(internals.state(model).rng)
    interrupt_on_call(internals, 1, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        fit(model, 3)
    assert model.W is W and model.epoch_ == 0 and len(model.history_) == 0
    assert (
        _random.get_state(internals.state(model).rng) == rng_state
    )  # the epoch's shuffle was not consumed


# -- model files ----------------------------------------------------------------------------------
@pytest.fixture
def model_file(tmp_path) -> Path:
    model = new_model(momentum=0.0)
    fit(model, 1)
    return model.save(tmp_path / "model.npz")


def header_of(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(str(npz["__header__"]))


DELETE = object()


def rewrite(path: Path, header_change=None, **arrays) -> Path:
    """A copy of the model at ``path`` with its header and arrays changed (``DELETE`` removes an
    entry), validly written."""
    with np.load(path, allow_pickle=False) as npz:
        content = {k: npz[k] for k in npz.files if k != "__header__"}
    header = {k: v for k, v in header_of(path).items() if k not in ("format", "format_version")}
    header.update(header_change or {})
    content.update(arrays)
    header = {k: v for k, v in header.items() if v is not DELETE}
    content = {k: v for k, v in content.items() if v is not DELETE}
    out = path.with_name("tampered.npz")
    write_npz_atomic(out, content, header)
    return out


def test_truncated_files_are_refused(model_file):
    data = model_file.read_bytes()
    for size in (0, 10, len(data) // 3, len(data) // 2, len(data) - 30, len(data) - 1):
        model_file.write_bytes(data[:size])
        with pytest.raises(ModelFileError, match=r"not a readable \.npz file"):
            SoftmaxXP.load(model_file)


def test_a_flipped_byte_is_refused(model_file):
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the weights: the zip checksum catches it
    model_file.write_bytes(bytes(data))
    with pytest.raises(ModelFileError):
        SoftmaxXP.load(model_file)


def test_foreign_files_are_refused(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.ones((D, K)), bias=np.zeros(K))
    with pytest.raises(ModelFileError, match="not a softmax_xp model file"):
        SoftmaxXP.load(tmp_path / "other.npz")
    np.save(tmp_path / "array.npy", np.ones(3))
    with pytest.raises(ModelFileError, match=r"not a readable \.npz"):
        SoftmaxXP.load(tmp_path / "array.npy")
    (tmp_path / "random.npz").write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(ModelFileError):
        SoftmaxXP.load(tmp_path / "random.npz")
    with zipfile.ZipFile(tmp_path / "v3.npz", "w") as z, z.open("__header__.npy", "w") as f:
        np.lib.format.write_array(f, np.ones(3), version=(3, 0))
    with pytest.raises(ModelFileError, match=r"unsupported \.npy version \(3, 0\)"):
        SoftmaxXP.load(tmp_path / "v3.npz")
    with zipfile.ZipFile(tmp_path / "zip.npz", "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ModelFileError, match=r"member 'readme\.txt'"):
        SoftmaxXP.load(tmp_path / "zip.npz")


class _RunsCode:
    marker: Path

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_pickled_objects_are_never_loaded(model_file, tmp_path):
    evil = _RunsCode()
    evil.marker = tmp_path / "code-ran"
    header = np.load(model_file)["__header__"]
    np.savez(
        tmp_path / "evil.npz",
        __header__=header,
        W=np.array([evil], dtype=object),
        b=np.zeros((1, K)),
    )
    with pytest.raises(ModelFileError, match="pickled objects, which are never loaded"):
        SoftmaxXP.load(tmp_path / "evil.npz")
    assert not evil.marker.exists()
    import pickle

    (tmp_path / "pickle.npz").write_bytes(pickle.dumps(evil))
    with pytest.raises(ModelFileError):
        SoftmaxXP.load(tmp_path / "pickle.npz")
    assert not evil.marker.exists()


def test_a_header_claiming_more_data_than_the_file_holds_is_refused(tmp_path, model_file):
    path = tmp_path / "huge.npz"
    header = np.load(model_file)["__header__"]
    with zipfile.ZipFile(path, "w") as z:
        with z.open("__header__.npy", "w") as f:
            np.lib.format.write_array(f, header)
        with z.open("W.npy", "w") as f:  # 40 GB claimed, 64 bytes stored
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 10)}
            )
            f.write(bytes(64))
    with pytest.raises(ModelFileError, match=r"W\.npy claims 40000000000 bytes"):
        SoftmaxXP.load(path)


TAMPERED = [
    (
        "W of the wrong shape",
        {},
        {"W": np.zeros((D + 1, K), np.float32)},
        r"W is float32 of shape \(7, 3\); expected float32 of shape \(6, 3\)",
    ),
    ("b of the wrong dtype", {}, {"b": np.zeros((1, K))}, "b is float64 of shape"),
    ("NaN weights", {}, {"W": np.full((D, K), np.nan, np.float32)}, "W contains NaN or infinity"),
    ("no W", {}, {"W": DELETE}, "the file has no 'W' entry"),
    (
        "future version",
        {"format_version": 2},
        {},
        "format version 2 is not supported .* newer softmax_xp",
    ),
    ("foreign format", {"format": "sklearn"}, {}, "unknown format"),
    ("no input_dim", {"input_dim": DELETE}, {}, "the header has no 'input_dim' entry"),
    (
        "input_dim None",
        {"input_dim": None},
        {},
        "invalid hyperparameters.*input_dim must be an integer",
    ),
    ("num_classes 1", {"num_classes": 1}, {}, "invalid hyperparameters.*num_classes must be >= 2"),
    ("lr NaN", {"lr": float("nan")}, {}, "invalid hyperparameters.*lr must be a finite"),
    ("unknown dtype", {"dtype": "object"}, {}, "invalid hyperparameters.*Unknown dtype"),
    ("unknown kind", {"kind": "optimizer"}, {}, "kind 'optimizer'"),
]


@pytest.mark.parametrize(
    ("description", "header", "arrays", "message"), TAMPERED, ids=[t[0] for t in TAMPERED]
)
def test_tampered_model_files_are_refused(model_file, description, header, arrays, message):
    path = model_file
    if "format" in header or "format_version" in header:
        path = model_file.with_name("edited.npz")
        content = dict(np.load(model_file))
        content["__header__"] = np.asarray(json.dumps({**header_of(model_file), **header}))
        np.savez(path, **content)
    else:
        path = rewrite(model_file, header, **arrays)
    with pytest.raises(ModelFileError, match=message):
        SoftmaxXP.load(path)


def test_a_header_that_is_not_json_is_refused(model_file):
    content = dict(np.load(model_file))
    content["__header__"] = np.asarray("{not json")
    np.savez(model_file, **content)
    with pytest.raises(ModelFileError, match="not valid JSON"):
        SoftmaxXP.load(model_file)
    content["__header__"] = np.asarray([1, 2])
    np.savez(model_file, **content)
    with pytest.raises(ModelFileError, match="no header"):
        SoftmaxXP.load(model_file)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epoch": -1}, "epoch is -1"),
        ({"batch_size": 0}, "batch_size is 0"),
        ({"rng_state": {"bit_generator": "MT19937"}}, "not a PCG64 state"),
        ({"history": {"loss": [1.0]}}, "History in the header is malformed"),
        (
            {"history": {"loss": [1.0], "val_accuracy": [], "epoch_time": [0.1, 0.1]}},
            "'loss' does not hold one number per epoch",
        ),
        ({"vW": DELETE}, "no 'vW' entry"),
        ({"vb": np.zeros((2, K), np.float32)}, r"vb is float32 of shape \(2, 3\)"),
    ],
)
def test_tampered_checkpoints_are_refused(tmp_path, change, message):
    path = tmp_path / "c.npz"
    fit(new_model(), 2, checkpoint=path)
    arrays = {k: v for k, v in change.items() if k in ("vW", "vb")}
    header = {k: v for k, v in change.items() if k not in arrays}
    tampered = rewrite(path, header, **arrays)
    with pytest.raises(ModelFileError, match=message):
        fit(new_model(), 3, resume_from=tampered)


# -- device out-of-memory -------------------------------------------------------------------------
class OutOfMemoryError(Exception):
    """Stands in for cupy.cuda.memory.OutOfMemoryError and torch.OutOfMemoryError."""


def test_out_of_memory_in_train_says_to_lower_batch_size(monkeypatch, internals):
    model = new_model()
    fit(model, 1)
    W = model.W
    interrupt_on_call(internals, 2, OutOfMemoryError("out of memory allocating 4 GiB"))
    with pytest.raises(DeviceMemoryError, match=r"lower batch_size \(now 16\).*4 GiB") as info:
        fit(model, 3)
    assert isinstance(info.value, MemoryError)
    assert isinstance(info.value.__cause__, OutOfMemoryError)
    assert model.epoch_ == 1 and model.W is not W  # the first epoch of the new run is kept


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score"])
def test_out_of_memory_in_inference_says_to_lower_chunk_size(monkeypatch, method, internals):
    model = new_model()

    def logits(*args, **kwargs):
        raise OutOfMemoryError("cudaErrorMemoryAllocation")

    internals.patch_chunk_features(logits)
    args = (X, Y) if method == "score" else (X,)
    with pytest.raises(DeviceMemoryError, match=r"smaller chunk_size \(now 50 rows\)"):
        getattr(model, method)(*args, chunk_size=50)


def test_out_of_memory_in_compute_loss_and_grads(monkeypatch, internals):
    def loss_and_grads(*args, **kwargs):
        raise OutOfMemoryError("out of memory")

    internals.patch_loss_and_grads(loss_and_grads)
    with pytest.raises(DeviceMemoryError, match=r"compute_loss_and_grads .* pass fewer rows"):
        new_model().compute_loss_and_grads(X, Y)


def test_other_errors_pass_through(monkeypatch, internals):
    interrupt_on_call(internals, 1, RuntimeError("something else"))
    with pytest.raises(RuntimeError, match="something else") as info:
        fit(new_model(), 1)
    assert not isinstance(info.value, MemoryError)


def test_out_of_memory_is_recognised_by_name():
    class CudaOOM(OutOfMemoryError):
        pass

    assert is_out_of_memory(OutOfMemoryError()) and is_out_of_memory(CudaOOM())
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not is_out_of_memory(MemoryError()) and not is_out_of_memory(ValueError("memory"))


# -- chunked inference ----------------------------------------------------------------------------
def test_chunked_inference_equals_unchunked(backend, arrays):
    model = new_model(backend)
    fit(model, 2)
    for data in (X, arrays(X)):
        whole = model.predict_proba(data)
        assert tuple(whole.shape) == (len(X), K)
        for chunk_size in (1, 7, len(X) - 1, len(X)):
            np.testing.assert_allclose(
                to_numpy(model.predict_proba(data, chunk_size=chunk_size)),
                to_numpy(whole),
                rtol=1e-5,
                atol=1e-6,
            )
            np.testing.assert_array_equal(
                to_numpy(model.predict(data, chunk_size=chunk_size)), to_numpy(model.predict(data))
            )
            assert model.score(data, Y, chunk_size=chunk_size) == model.score(data, Y)


def test_inference_really_works_in_chunks(internals):
    model = new_model()
    rows = internals.record_chunks()
    model.predict(X, chunk_size=50)
    assert rows == [50, 50, 20]
    rows.clear()
    model.score(X, Y, chunk_size=100)
    assert rows == [100, 20]
    assert internals.default_chunk_rows(SoftmaxXP(784, 10, backend="numpy")) == 65536
    assert internals.default_chunk_rows(SoftmaxXP(10**6, 10, backend="numpy")) == 67
