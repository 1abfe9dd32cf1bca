"""softmax_xp.export: the ONNX graph against the model on MNIST, the skl2onnx converter in a
Pipeline (2 and 10 classes, integer and string labels), skops files, and the errors.

The export libraries are the optional ``[export]`` extra (``nox -s export``); each group of tests
skips without its library, except the checks of the missing-library errors.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from softmax_xp import ModelFileError, SoftmaxXP, load_mnist, softmax, to_numpy
from softmax_xp.export import (
    TARGET_OPSET,
    export_model,
    model_to_onnx,
    register_skl2onnx,
    save_onnx,
    skops_trusted_types,
)

# Probabilities of onnxruntime against the exact softmax of the model's weights: float rounding.
TOL = {"float32": 1e-6, "float64": 1e-12}


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def _session(onx):
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------- missing libraries


@pytest.mark.parametrize(
    ("library", "call", "extra"),
    [
        ("onnx", lambda: model_to_onnx(SoftmaxXP(2, 2, backend="numpy")), "onnx"),
        ("skl2onnx", register_skl2onnx, "onnx"),
    ],
)
def test_a_missing_library_names_the_extra(monkeypatch, library, call, extra):
    monkeypatch.setitem(sys.modules, library, None)  # import raises ImportError
    with pytest.raises(ImportError, match=rf'pip install "softmax-xp\[{extra}\]"'):
        call()


def test_export_model_names_the_extra_before_reading_the_model(monkeypatch, tmp_path):
    path = SoftmaxXP(2, 2, backend="numpy").save(tmp_path / "model.npz")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"softmax-xp\[onnx\]"):
        export_model(path)
    assert not (tmp_path / "model.onnx").exists()


# --------------------------------------------------------------------------- the ONNX graph


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_onnxruntime_gives_the_models_predictions_on_mnist(mnist, dtype):
    pytest.importorskip("onnx")
    (X, y), (X_test, _) = mnist
    model = SoftmaxXP(784, 10, backend="numpy", dtype=dtype, seed=0)
    model.train(X, y, epochs=3)
    label, proba = _session(model_to_onnx(model)).run(None, {"X": X_test.astype(dtype)})
    assert proba.dtype == np.dtype(dtype) and label.dtype == np.int64
    assert proba.shape == (len(X_test), 10) and label.shape == (len(X_test),)
    # Both round float32 logits (|z| ~ 15, rounded to ~6e-6) in their own order: each is within
    # 1e-6 of the exact softmax of the same weights, so within 2e-6 of each other.
    W, b = (np.asarray(a, dtype=np.float64) for a in (model.W, model.b))
    exact = softmax(X_test.astype(np.float64) @ W + b, axis=1)
    assert np.abs(proba - exact).max() < TOL[dtype]
    assert np.abs(proba - model.predict_proba(X_test)).max() < 2 * TOL[dtype]
    np.testing.assert_array_equal(label, model.predict(X_test))


def test_a_model_without_a_bias_exports_its_zero_bias():
    pytest.importorskip("onnx")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(120, 5)) + 2.0, rng.integers(0, 3, size=120)
    model = SoftmaxXP(5, 3, backend="numpy", dtype="float32", seed=0, fit_intercept=False)
    model.train(X, y, epochs=3)
    label, proba = _session(model_to_onnx(model)).run(None, {"X": X.astype("float32")})
    assert np.abs(proba - model.predict_proba(X)).max() < 2 * TOL["float32"]
    np.testing.assert_array_equal(label, model.predict(X))


def test_the_graph_is_matmul_add_softmax_argmax():
    onnx = pytest.importorskip("onnx")
    onx = model_to_onnx(SoftmaxXP(5, 3, backend="numpy", dtype="float64", seed=0))
    graph = onx.graph
    assert [node.op_type for node in graph.node] == ["MatMul", "Add", "Softmax", "ArgMax"]
    assert [(o.domain, o.version) for o in onx.opset_import] == [("", TARGET_OPSET)]
    (x,) = graph.input
    assert x.name == "X" and x.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    dims = x.type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_value == 5  # (any number of rows, d)
    assert [(o.name, o.type.tensor_type.elem_type) for o in graph.output] == [
        ("label", onnx.TensorProto.INT64),
        ("probabilities", onnx.TensorProto.DOUBLE),
    ]
    assert {i.name: tuple(i.dims) for i in graph.initializer} == {"W": (5, 3), "b": (3,)}


def test_the_graph_of_a_model_on_any_backend(backend):
    pytest.importorskip("onnx")
    model = SoftmaxXP(4, 3, backend=backend.name, device=backend.device, seed=0)
    model.b = np.array([[0.5, -0.5, 0.0]])
    X = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    label, proba = _session(model_to_onnx(model)).run(None, {"X": X})
    np.testing.assert_allclose(proba, to_numpy(model.predict_proba(X)), atol=1e-6)
    np.testing.assert_array_equal(label, to_numpy(model.predict(X)))


def test_save_onnx_and_export_model_write_the_graph(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = SoftmaxXP(4, 3, backend="numpy", seed=0)
    written = save_onnx(model, tmp_path / "a.onnx")
    assert onnx.load(written) == model_to_onnx(model)
    npz = model.save(tmp_path / "model.npz")
    assert export_model(npz) == tmp_path / "model.onnx"  # the default: the model's suffix
    assert onnx.load(tmp_path / "model.onnx") == model_to_onnx(model)
    out = export_model(npz, tmp_path / "other.onnx", opset=17)
    assert onnx.load(out).opset_import[0].version == 17
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.onnx",
        "model.npz",
        "model.onnx",
        "other.onnx",
    ]  # fmt: skip  (no temporary file left)


def test_bad_inputs_say_how_to_fix_them(tmp_path):
    pytest.importorskip("onnx")
    model = SoftmaxXP(4, 3, backend="numpy", seed=0)
    with pytest.raises(TypeError, match="must be a SoftmaxXP, got ndarray"):
        model_to_onnx(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="opset must be an integer >= 13"):
        model_to_onnx(model, opset=12)
    with pytest.raises(TypeError, match="path must be a file path"):
        save_onnx(model, 3)
    npz = model.save(tmp_path / "model.npz")
    with pytest.raises(ValueError, match=r"Unknown export format 'pmml'; use one of 'onnx'"):
        export_model(npz, format="pmml")
    with pytest.raises(ValueError, match="is the model file itself"):
        export_model(npz, npz)
    with pytest.raises(FileNotFoundError, match="No model file"):
        export_model(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    with pytest.raises(ModelFileError):
        export_model(tmp_path / "junk.npz")
    assert not (tmp_path / "junk.onnx").exists()


def test_a_classifier_is_pointed_to_register_skl2onnx():
    pytest.importorskip("sklearn")
    pytest.importorskip("onnx")
    from softmax_xp import SoftmaxClassifier

    clf = SoftmaxClassifier(max_iter=1).fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(TypeError, match=r"register_skl2onnx\(\).*clf\.model_"):
        model_to_onnx(clf)


# --------------------------------------------------------------------------- skl2onnx


def _pipeline(X, y, **params):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from softmax_xp import SoftmaxClassifier

    params = {"solver": "sgd", "max_iter": 3, "random_state": 0, **params}
    return make_pipeline(StandardScaler(), SoftmaxClassifier(**params)).fit(X, y)


@pytest.fixture(scope="module")
def skl2onnx():
    skl2onnx = pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    register_skl2onnx()
    return skl2onnx


LABELS = {
    "10 digits": lambda y: y,
    "2 ints": lambda y: np.where(y >= 5, 7, -3),
    "2 strings": lambda y: np.where(y % 2 == 0, "even", "odd"),
    "3 strings": lambda y: np.array(["low", "mid", "high"])[y % 3],
    "bool": lambda y: y >= 5,
}


@pytest.mark.parametrize("labels", LABELS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_skl2onnx_converts_a_pipeline(skl2onnx, mnist, labels, dtype):
    (X, y), (X_test, _) = mnist
    X, X_test = X[:3000].astype(dtype), X_test[:2000].astype(dtype)
    pipe = _pipeline(X, LABELS[labels](y[:3000]))
    onx = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
    label, proba = _session(onx).run(None, {"X": X_test})
    assert proba.dtype == np.dtype(dtype)
    expected = pipe.predict(X_test)
    assert label.tolist() == expected.tolist()  # the classes_, ints (int64) or strings
    # Softmax of the model's logits, also with two classes (not expit(2 z) of coef_). Standardised
    # MNIST features reach ~50 (rare pixels), so float32 logits carry more rounding than on the
    # raw [0, 1] pixels (1e-6 there): 1e-5.
    tol = {"float32": 1e-5, "float64": 1e-12}[dtype]
    assert np.abs(proba - pipe.predict_proba(X_test)).max() < tol
    # The classifier's own graph on the scaled features: the same bound.
    scaled, clf = pipe[0].transform(X_test), pipe[-1]
    onx = skl2onnx.to_onnx(clf, scaled[:1], options={"zipmap": False})
    label, proba = _session(onx).run(None, {"X": scaled})
    assert label.tolist() == expected.tolist()
    assert np.abs(proba - clf.predict_proba(scaled)).max() < tol


def test_two_classes_give_the_softmax_of_the_two_logits(skl2onnx):
    X = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    pipe = _pipeline(X, X[:, 0] + X[:, 1] > 0, lr=1.0, max_iter=20)
    clf = pipe[-1]
    onx = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
    _, proba = _session(onx).run(None, {"X": X})
    z = pipe[0].transform(X) @ np.asarray(clf.model_.W) + np.asarray(clf.model_.b)
    p1 = 1 / (1 + np.exp(-(z[:, 1] - z[:, 0])))
    np.testing.assert_allclose(proba[:, 1], p1, atol=1e-6)
    assert not np.allclose(proba[:, 1], 1 / (1 + np.exp(-2 * (z[:, 1] - z[:, 0]))), atol=1e-3)


def test_skl2onnx_zipmap_and_a_bare_classifier(skl2onnx):
    from softmax_xp import SoftmaxClassifier

    X = np.random.default_rng(0).normal(size=(60, 2)).astype(np.float32)
    y = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0)]
    clf = SoftmaxClassifier(max_iter=5, random_state=0).fit(X, y)
    onx = skl2onnx.to_onnx(clf, X[:1])  # the default: probabilities as a ZipMap
    label, proba = _session(onx).run(None, {"X": X})
    assert label.tolist() == clf.predict(X).tolist()
    assert sorted(proba[0]) == ["a", "b", "c"]
    np.testing.assert_allclose(
        [[row[c] for c in clf.classes_] for row in proba], clf.predict_proba(X), atol=1e-6
    )
    with pytest.raises(ValueError, match=r"ZipMap takes float32.*'zipmap': False"):
        skl2onnx.to_onnx(clf, X[:1].astype(np.float64))


def test_skl2onnx_float_classes_class_indices_and_integer_input(skl2onnx):
    from softmax_xp import SoftmaxClassifier

    X = np.random.default_rng(0).normal(size=(40, 2))
    clf = SoftmaxClassifier(max_iter=3).fit(X, np.where(X[:, 0] > 0, 2.0, 5.0))
    onx = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})
    label, _ = _session(onx).run(None, {"X": X})
    assert label.dtype == np.int64 and label.tolist() == clf.predict(X).tolist()
    onx = skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False, "nocl": True})
    label, _ = _session(onx).run(None, {"X": X})
    assert label.tolist() == np.searchsorted(clf.classes_, clf.predict(X)).tolist()
    X_int = np.round(X * 3).astype(np.int64)  # an integer input is cast to the model's dtype
    onx = skl2onnx.to_onnx(clf, X_int[:1], options={"zipmap": False})
    label, proba = _session(onx).run(None, {"X": X_int})
    assert label.tolist() == clf.predict(X_int.astype(np.float64)).tolist()
    np.testing.assert_allclose(proba, clf.predict_proba(X_int.astype(np.float64)), atol=1e-12)
    clf.classes_ = np.array([0.5, 1.5])  # scikit-learn fits no such labels; refused all the same
    with pytest.raises(ValueError, match="floats that are not integers"):
        skl2onnx.to_onnx(clf, X[:1], options={"zipmap": False})


# --------------------------------------------------------------------------- skops


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_skops_round_trips_a_fitted_classifier(tmp_path, momentum):
    sio = pytest.importorskip("skops.io")
    from softmax_xp import SoftmaxClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = np.array(["cat", "dog", "eel"])[rng.integers(0, 3, 200)]
    clf = SoftmaxClassifier(solver="sgd", max_iter=3, momentum=momentum, random_state=0).fit(X, y)
    path = tmp_path / "clf.skops"
    sio.dump(clf, path)
    assert sorted(sio.get_untrusted_types(file=path)) == skops_trusted_types()
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path)
    twin = sio.load(path, trusted=skops_trusted_types())
    np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(twin.predict(X), clf.predict(X))
    assert twin.model_.backend == clf.model_.backend and twin.model_.epoch_ == 3
    assert twin.model_.history_ == clf.model_.history_
    # The generator and momentum buffers came back too: training goes on identically.
    for est in (clf, twin):
        est.partial_fit(X, y)
    np.testing.assert_array_equal(np.asarray(twin.model_.W), np.asarray(clf.model_.W))


# --------------------------------------------------------------------------- the command


def test_the_export_command_writes_a_graph_onnxruntime_runs(tmp_path, capsys):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from softmax_xp.cli import main

    model = SoftmaxXP(6, 3, backend="numpy", seed=0, dtype="float64")
    path = model.save(tmp_path / "model.npz")
    assert main(["export", "--model", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'model.onnx'}"
    X = np.random.default_rng(0).normal(size=(5, 6))
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    label, proba = session.run(None, {"X": X})
    np.testing.assert_allclose(proba, to_numpy(model.predict_proba(X)), rtol=1e-12)
    np.testing.assert_array_equal(label, to_numpy(model.predict(X)))


def test_the_export_command_without_onnx_is_one_line(tmp_path, monkeypatch, capsys):
    from softmax_xp.cli import main

    path = SoftmaxXP(2, 2, backend="numpy").save(tmp_path / "model.npz")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(SystemExit) as info:
        main(["export", "--model", str(path), "--out", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1
    assert err[0].startswith("softmax-xp export: error:") and "softmax-xp[onnx]" in err[0]
