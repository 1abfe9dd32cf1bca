"""What a new user tries first: data from other libraries, the usual spellings of dtypes,
backends and devices, raw pixels, labels in the wrong form; each works or says how to fix it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import softmax_xp._backend as backend_module
from softmax_xp import SoftmaxXP, resolve_backend, to_numpy
from softmax_xp.datasets.mnist import DatasetNotFoundError

D, K, N = 4, 3, 30
RNG = np.random.default_rng(0)
X = RNG.normal(size=(N, D))
Y = np.arange(N) % K


def _model(backend, **kwargs) -> SoftmaxXP:
    return SoftmaxXP(D, K, backend=backend.name, device=backend.device, seed=0, **kwargs)


# -- data from other libraries ---------------------------------------------------------------------
def test_bfloat16_torch_features_are_read_exactly(backend):
    torch = pytest.importorskip("torch")
    X16 = torch.tensor(X, dtype=torch.bfloat16)
    exact = X16.float().numpy()  # bfloat16 values are exact in float32
    a, b = _model(backend), _model(backend)
    assert a.train(X16, Y, epochs=2).loss == b.train(exact, Y, epochs=2).loss
    np.testing.assert_array_equal(to_numpy(a.predict_proba(X16)), to_numpy(b.predict_proba(exact)))
    assert to_numpy(X16).dtype == np.float32


def test_long_double_features_are_read(backend):
    a, b = _model(backend, dtype="float64"), _model(backend, dtype="float64")
    loss = a.train(X.astype(np.longdouble), Y, epochs=1).loss
    assert loss == b.train(X, Y, epochs=1).loss


def test_torch_tensors_reach_a_torch_model_without_a_host_copy(monkeypatch):
    torch = pytest.importorskip("torch")
    model = SoftmaxXP(D, K, backend="torch", seed=0)

    def no_host_copy(x):
        raise AssertionError("a torch tensor was copied to the host")

    monkeypatch.setattr(backend_module, "to_numpy", no_host_copy)
    Xt = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    proba = model.predict_proba(Xt)
    assert not proba.requires_grad  # autograd never records the model's arithmetic
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor warns about requires_grad
        model.predict(Xt)


# -- spellings ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("float32", "float32"),
        (np.float32, "float32"),
        (np.dtype("float64"), "float64"),
        ("f4", "float32"),
        ("<f8", "float64"),
        ("double", "float64"),
        ("Float32", "float32"),
        ("torch.float64", "float64"),
    ],
)
def test_dtype_spellings(spelling, name):
    assert SoftmaxXP(D, K, backend="numpy", dtype=spelling).dtype_name == name


def test_dtype_objects_of_other_libraries():
    torch = pytest.importorskip("torch")
    xps = pytest.importorskip("array_api_strict")
    assert SoftmaxXP(D, K, backend="torch", dtype=torch.float64).dtype == torch.float64
    assert SoftmaxXP(D, K, backend="numpy", dtype=torch.float32).dtype_name == "float32"
    strict = SoftmaxXP(D, K, backend="array_api_strict", dtype=xps.float64)
    assert strict.dtype == xps.float64


@pytest.mark.parametrize("spelling", ["float16", "int32", "torch.float16", "f2"])
def test_unsupported_dtypes_are_still_refused(spelling):
    with pytest.raises(ValueError, match=r"Unknown dtype .*use one of 'float32', 'float64'"):
        SoftmaxXP(D, K, backend="numpy", dtype=spelling)


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("cuda", "backend='cupy', or backend='torch' or 'jax' with device='cuda'"),
        ("gpu", "backend='cupy'"),
        ("pytorch", "did you mean backend='torch'"),
        ("np", "did you mean backend='numpy'"),
        ("array-api-strict", "did you mean backend='array_api_strict'"),
    ],
)
def test_near_miss_backend_names_say_which_name_to_use(name, hint):
    with pytest.raises(ValueError, match=rf"Unknown backend '{name}'; valid backends .*{hint}"):
        SoftmaxXP(D, K, backend=name)


def test_backend_names_ignore_case_and_spaces():
    assert SoftmaxXP(D, K, backend=" NumPy ").backend == "numpy"


def test_numpy_accepts_cpu_in_any_spelling():
    torch = pytest.importorskip("torch")
    for device in ("cpu", "CPU", torch.device("cpu")):
        assert SoftmaxXP(D, K, backend="numpy", device=device).device == "cpu"


def test_torch_device_spellings():
    torch = pytest.importorskip("torch")
    assert resolve_backend("torch", device="CPU").device == torch.device("cpu")
    for device in ("gpu", "foo", 2.5):
        with pytest.raises(ValueError, match=r"is not a PyTorch device: pass 'cpu', 'cuda'"):
            resolve_backend("torch", device=device)
    missing = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for device in (missing, f"cuda:{missing}"):
        with pytest.raises(ValueError, match=rf"PyTorch sees no CUDA device {missing} here"):
            resolve_backend("torch", device=device)


def test_a_random_generator_as_seed_says_to_pass_an_int():
    for seed in (np.random.default_rng(0), np.random.RandomState(0)):
        with pytest.raises(TypeError, match=r"seed must be an integer.*seed=int\(rng\.integers"):
            SoftmaxXP(D, K, backend="numpy", seed=seed)


# -- shapes and labels in the wrong form --------------------------------------------------------
def test_a_single_sample_says_to_reshape(backend, arrays):
    model = _model(backend)
    for method in (model.predict, model.predict_proba):
        with pytest.raises(
            ValueError, match=r"got a 1-D array of shape \(4,\)\. .*X\.reshape\(1, -1\)"
        ):
            method(arrays(X[0]))
    with pytest.raises(ValueError, match=r"X\.reshape\(-1, 4\)"):
        model.predict(arrays(X[:2].ravel()))
    assert tuple(model.predict(arrays(X[0][None, :])).shape) == (1,)
    image = SoftmaxXP(784, 10, backend=backend.name, device=backend.device)
    with pytest.raises(ValueError, match=r"of shape \(28, 28\)\? Pass X\.reshape\(1, -1\)"):
        image.predict(arrays(np.zeros((28, 28))))  # np.asarray(PIL.Image.open("digit.png"))


def test_a_column_of_labels_says_to_ravel(backend, arrays):
    model = _model(backend)
    with pytest.raises(ValueError, match=r"got shape \(30, 1\)\. Pass y\.ravel\(\)"):
        model.train(X, arrays(Y[:, None], "int64"), epochs=1)
    with pytest.raises(ValueError, match=r"got shape \(30, 1\)\. Pass y\.ravel\(\)"):
        model.score(X, arrays(Y[:, None], "int64"))
    with pytest.raises(ValueError, match=r"One-hot labels\? .*y\.argmax\(axis=1\)"):
        model.train(X, arrays(np.eye(K)[Y]), epochs=1)


@pytest.mark.parametrize("labels", [np.array(["cat", "dog", "owl"])[Y], ["a", "b", "c"] * 10])
def test_string_labels_point_at_the_classifier(labels):
    model = SoftmaxXP(D, K, backend="numpy")
    with pytest.raises(TypeError, match=r"SoftmaxClassifier, which takes any labels.*np\.unique"):
        model.train(X, labels, epochs=1)


def test_object_features_say_how_to_convert():
    model = SoftmaxXP(D, K, backend="numpy")
    with pytest.raises(TypeError, match=r"dtype object.*X\.astype\('float32'\).*to_numpy"):
        model.train(X.astype(object), Y, epochs=1)


# -- raw pixels ---------------------------------------------------------------------------------
def test_raw_integer_pixels_warn_and_say_to_scale(backend, arrays):
    pixels = (RNG.random((N, D)) * 255).astype(np.uint8)
    model = _model(backend)
    for call in (
        lambda: model.train(arrays(pixels, "uint8"), Y, epochs=1),
        lambda: model.predict(arrays(pixels, "uint8")),
        lambda: model.predict_proba(pixels.astype(np.int64)),
        lambda: model.score(pixels.tolist(), Y),
    ):
        with pytest.warns(
            UserWarning, match=r"integer dtype .* values up to \d+.*pass X / 255"
        ) as w:
            call()
        ours = [r for r in w if "integer dtype" in str(r.message)]  # CuPy may warn of its own
        assert ours and all(r.filename == __file__ for r in ours)  # points at the user's line
    with pytest.warns(UserWarning, match=r"^X_val has integer dtype .*pass X_val / 255"):
        model.train(X, Y, arrays(pixels, "uint8"), Y, epochs=1)


def test_scaled_and_binary_features_do_not_warn(backend, arrays):
    model = _model(backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.train(arrays(X), Y, epochs=1)
        model.train(arrays(X > 0, "bool"), Y, epochs=1)
        model.predict(arrays((X > 0).astype(np.uint8), "uint8"))
        model.predict((RNG.random((N, D)) * 255).astype(np.uint8) / 255)


def test_verbose_must_be_a_non_negative_int_or_bool(capsys):
    model = SoftmaxXP(D, K, backend="numpy", seed=0)
    with pytest.raises(TypeError, match="verbose must be an integer, got 'yes'"):
        model.train(X, Y, epochs=1, verbose="yes")
    with pytest.raises(ValueError, match="verbose must be >= 0, got -1"):
        model.train(X, Y, epochs=1, verbose=-1)
    model.train(X, Y, epochs=1, verbose=True)
    assert capsys.readouterr().out.startswith("epoch 1/1")


def test_repr_names_the_settings_that_make_the_model():
    model = SoftmaxXP(D, K, backend="numpy", seed=7, lr_decay=0.5)
    assert repr(model) == (
        "SoftmaxXP(input_dim=4, num_classes=3, lr=0.1, reg=0.0001, momentum=0.0, lr_decay=0.5, "
        "backend='numpy', dtype='float32', seed=7)"
    )
    pytest.importorskip("torch")
    assert "device='cpu'" in repr(SoftmaxXP(D, K, backend="torch", device="cpu"))


# -- History ------------------------------------------------------------------------------------
def test_history_reads_like_a_dict_of_lists():
    history = SoftmaxXP(D, K, backend="numpy", seed=0).train(X, Y, X, Y, epochs=3)
    assert len(history) == 3  # epochs
    names = ["loss", "val_accuracy", "epoch_time", "val_loss", "threads"]
    assert list(history) == list(history.keys()) == names
    assert dict(history) == history.to_dict() == dict(history.items())
    assert "loss" in history and "acc" not in history
    assert history["loss"][-1] == history.loss[-1]
    with pytest.raises(TypeError, match=r"indexed by name.*history\['loss'\]\[-1\]"):
        history[-1]
    with pytest.raises(KeyError, match="History has 'loss', 'val_accuracy', 'epoch_time', 'val"):
        history["acc"]


# -- files --------------------------------------------------------------------------------------
def test_save_and_load_expand_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    model = SoftmaxXP(D, K, backend="numpy", seed=0)
    assert model.save("~/model.npz") == tmp_path / "model.npz"
    assert model.save(Path("~/m")) == tmp_path / "m.npz"
    assert not (tmp_path / "work" / "~").exists()
    loaded = SoftmaxXP.load("~/model.npz")
    np.testing.assert_array_equal(to_numpy(loaded.W), to_numpy(model.W))
    model.train(X, Y, epochs=1, checkpoint="~/ckpt")
    assert (tmp_path / "ckpt.npz").is_file()
    model.train(X, Y, epochs=2, resume_from="~/ckpt.npz")


def test_a_folder_is_neither_saved_over_nor_loaded_from_its_neighbour(tmp_path):
    model = SoftmaxXP(D, K, backend="numpy", seed=0)
    folder = tmp_path / "models"
    folder.mkdir()
    for path in (folder, f"{folder}/", str(tmp_path / "new") + "/"):
        with pytest.raises(IsADirectoryError, match=r"is a folder; give the file's name, e\.g\."):
            model.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]
    model.save(tmp_path / "models.npz")  # a file beside the folder, of the folder's name
    with pytest.raises(FileNotFoundError, match="is a folder, not a model file"):
        SoftmaxXP.load(folder)


def test_load_mnist_expands_home_and_refuses_a_file(tmp_path, monkeypatch):
    from softmax_xp import load_mnist

    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(Exception, match=str(tmp_path / "mnist")):
        load_mnist("~/mnist")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="it is a file, not a folder"):
        load_mnist(tmp_path / "file")


# -- metrics and functions ----------------------------------------------------------------------
def test_metric_label_errors_say_the_fix():
    from softmax_xp import accuracy, confusion_matrix

    with pytest.raises(TypeError, match=r"dtype float64\. For whole-number floats pass y_true"):
        confusion_matrix([0.0, 1.0], [0, 1], 2)
    with pytest.raises(TypeError, match=r"dtype bool\. For 0/1 labels pass y_pred\.astype\(int\)"):
        accuracy([0, 1], np.array([False, True]))
    with pytest.raises(TypeError, match=r"np\.unique\(labels, return_inverse=True\)"):
        confusion_matrix(["cat", "dog"], [0, 1], 2)
    with pytest.raises(ValueError, match=r"got shape \(2, 1\)\. Pass y_true\.ravel\(\)"):
        accuracy(np.array([[0], [1]]), [0, 1])


def test_metrics_take_labels_of_two_libraries_or_devices(backend, arrays):
    """y_true from a data loader (another library, or the CPU) and y_pred from the model."""
    from softmax_xp import accuracy, confusion_matrix

    torch = pytest.importorskip("torch")
    xps = pytest.importorskip("array_api_strict")
    y_true, y_pred = [0, 1, 2, 2], [0, 2, 2, 1]
    expected = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 1]])
    for other in (torch.tensor(y_true), xps.asarray(y_true, device=xps.Device("device1"))):
        cm = confusion_matrix(other, arrays(y_pred, "int64"), 3)
        np.testing.assert_array_equal(arrays.host(cm), expected)
        assert accuracy(other, arrays(y_pred, "int64")) == 0.5


def test_one_hot_reads_python_labels():
    from softmax_xp import one_hot

    np.testing.assert_array_equal(one_hot([0, 2, 1], 3), np.eye(3)[[0, 2, 1]])


def test_run_arguments_are_checked_before_the_first_epoch(internals):
    model = SoftmaxXP(D, K, backend="numpy", seed=0)
    internals.patch_sgd_epoch(lambda *a, **k: pytest.fail("an epoch ran"))
    with pytest.raises(TypeError, match=r"callback must be a function called as callback\(epoch"):
        model.train(X, Y, epochs=2, callback=5)
    for name in ("checkpoint", "resume_from"):
        with pytest.raises(TypeError, match=rf"{name} must be a file path .*got 5 \(int\)"):
            model.train(X, Y, epochs=2, **{name: 5})


def test_auto_with_a_gpu_device_on_a_cpu_machine_says_why(monkeypatch):
    monkeypatch.delenv("SOFTMAX_XP_BACKEND", raising=False)
    monkeypatch.setattr(backend_module, "_cupy_problem", lambda: "no CUDA device was found")
    with pytest.raises(
        ValueError,
        match=r"device='cuda' needs a GPU, but backend='auto' runs on "
        r"NumPy here \(CuPy: no CUDA device was found\)",
    ):
        SoftmaxXP(D, K, device="cuda")
    assert SoftmaxXP(D, K, device="cpu").backend == "numpy"


def test_unknown_array_api_strict_devices_list_the_devices():
    pytest.importorskip("array_api_strict")
    for device in ("foo", 1):
        with pytest.raises(ValueError, match=r"not an array-api-strict device; .*'device1'"):
            SoftmaxXP(D, K, backend="array_api_strict", device=device)
