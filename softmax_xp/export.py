"""Export a trained model to other runtimes: an ONNX graph, skl2onnx, and skops files.

- :func:`model_to_onnx` / :func:`save_onnx`: a :class:`~softmax_xp.SoftmaxXP` as an ONNX graph,
  ``probabilities = Softmax(X W + b)`` and ``label = ArgMax(X W + b)``, in the model's dtype.
- :func:`export_model`: the same from a model file (what ``softmax-xp export`` calls).
- :func:`register_skl2onnx`: a converter for :class:`~softmax_xp.SoftmaxClassifier`, so
  ``skl2onnx.to_onnx`` converts it, alone or in a Pipeline.
- :func:`skops_trusted_types`: the types to trust when loading a ``SoftmaxClassifier`` saved
  with ``skops.io.dump``.

The libraries are optional: ``pip install "softmax-xp[onnx]"`` (onnx, onnxruntime, skl2onnx) and
``pip install "softmax-xp[skops]"``, or ``"softmax-xp[export]"`` for both. They are imported
when a function needs them; a missing one raises ImportError naming the extra. Only the model's
public API (``W``, ``b``, ``dtype_name``, ``classes_``, ``model_``) is used.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._atomic import write_atomic
from ._backend import to_numpy
from .model import SoftmaxXP

__all__ = [
    "TARGET_OPSET",
    "export_model",
    "model_to_onnx",
    "register_skl2onnx",
    "save_onnx",
    "skops_trusted_types",
]

TARGET_OPSET = 21
"""The default ONNX opset (onnx >= 1.16, onnxruntime >= 1.20); Softmax, ArgMax, MatMul, Add and
Gather have float32 and float64 CPU kernels in onnxruntime at this opset."""

FORMATS = ("onnx",)
_MIN_OPSET = 13  # Softmax-13: softmax along one axis (older opsets flatten the trailing axes)
_ALIAS = "SoftmaxXPSoftmaxClassifier"
_EXTRA = {"onnx": "onnx", "skl2onnx": "onnx", "onnxruntime": "onnx", "skops": "skops"}


def _require(name: str) -> Any:
    """Import the optional library ``name``, or raise ImportError naming the extra to install."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        extra = _EXTRA[name.split(".")[0]]
        raise ImportError(
            f'{name} is required for this export: pip install "softmax-xp[{extra}]" '
            f'(or "softmax-xp[export]" for ONNX and skops).'
        ) from exc


def _check_opset(opset: Any) -> int:
    if opset is None:
        return TARGET_OPSET
    if type(opset) is not int or opset < _MIN_OPSET:
        raise ValueError(
            f"opset must be an integer >= {_MIN_OPSET} (Softmax along one axis), got {opset!r}; "
            f"leave it out for {TARGET_OPSET}."
        )
    return opset


def _linear_softmax(
    x: str, w: str, b: str, out: dict[str, str]
) -> list[tuple[str, list[str], list[str], dict[str, int]]]:
    """The nodes ``logits = x @ w + b``, ``probabilities = Softmax(logits)``,
    ``index = ArgMax(logits)`` (the first of ties, as ``predict`` picks), as
    ``(op_type, [inputs], [outputs], attributes)``; ``out`` names ``matmul``, ``logits``,
    ``probabilities`` and ``index``."""
    return [
        ("MatMul", [x, w], [out["matmul"]], {}),
        ("Add", [out["matmul"], b], [out["logits"]], {}),
        ("Softmax", [out["logits"]], [out["probabilities"]], {"axis": -1}),
        ("ArgMax", [out["logits"]], [out["index"]], {"axis": 1, "keepdims": 0}),
    ]


def model_to_onnx(model: SoftmaxXP, *, opset: int | None = None) -> Any:
    """An ONNX graph of ``model``: input ``X`` (n x d), outputs ``label`` (int64, n) and
    ``probabilities`` (n x K), in the model's dtype (float32 or float64).

    ``probabilities = Softmax(X W + b)`` along the classes and ``label = ArgMax(X W + b)``, the
    same numbers as ``model.predict_proba`` and ``model.predict`` (float rounding aside).
    Needs ``onnx`` (``pip install "softmax-xp[onnx]"``); onnxruntime runs the graph.

    Parameters
    ----------
    model
        A :class:`~softmax_xp.SoftmaxXP` on any backend (its weights are copied to the host).
        For a :class:`~softmax_xp.SoftmaxClassifier` use :func:`register_skl2onnx`, which maps
        the labels to ``classes_``, or pass ``clf.model_`` for class indices.
    opset
        The ONNX opset, >= 13; default :data:`TARGET_OPSET`.

    Returns
    -------
    onnx.ModelProto
        Checked with ``onnx.checker``; save it with :func:`save_onnx` or ``onnx.save``.

    Examples
    --------
    >>> import numpy as np, onnxruntime
    >>> from softmax_xp import SoftmaxXP
    >>> model = SoftmaxXP(4, 3, backend="numpy", seed=0)
    >>> model.b = [[0.0, 1.0, -1.0]]
    >>> onx = model_to_onnx(model)
    >>> [i.name for i in onx.graph.input], [o.name for o in onx.graph.output]
    (['X'], ['label', 'probabilities'])
    >>> session = onnxruntime.InferenceSession(onx.SerializeToString())
    >>> X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    >>> label, proba = session.run(None, {"X": X})
    >>> label.tolist() == model.predict(X).tolist()
    True
    >>> bool(np.abs(proba - model.predict_proba(X)).max() < 1e-6)
    True
    """
    if not isinstance(model, SoftmaxXP):
        hint = (
            " For a SoftmaxClassifier, call register_skl2onnx() and then "
            "skl2onnx.to_onnx(clf, X[:1]) (labels of classes_), or pass clf.model_ (indices)."
            if hasattr(model, "model_")
            else ""
        )
        raise TypeError(f"model must be a SoftmaxXP, got {type(model).__name__}.{hint}")
    opset = _check_opset(opset)
    onnx = _require("onnx")
    helper = onnx.helper
    dtype = np.dtype(model.dtype_name)
    elem = helper.np_dtype_to_tensor_dtype(dtype)
    W = np.ascontiguousarray(to_numpy(model.W), dtype=dtype)
    b = np.ascontiguousarray(to_numpy(model.b), dtype=dtype).reshape(-1)
    names = {"matmul": "XW", "logits": "logits", "probabilities": "probabilities", "index": "label"}
    nodes = [
        helper.make_node(op, inputs, outputs, name=op, **attrs)
        for op, inputs, outputs, attrs in _linear_softmax("X", "W", "b", names)
    ]
    n, d, k = "N", model.input_dim, model.num_classes
    graph = helper.make_graph(
        nodes,
        "softmax_xp",
        [helper.make_tensor_value_info("X", elem, [n, d])],
        [
            helper.make_tensor_value_info("label", onnx.TensorProto.INT64, [n]),
            helper.make_tensor_value_info("probabilities", elem, [n, k]),
        ],
        initializer=[onnx.numpy_helper.from_array(W, "W"), onnx.numpy_helper.from_array(b, "b")],
        doc_string="probabilities = Softmax(X W + b); label = ArgMax(X W + b)",
    )
    opsets = [helper.make_opsetid("", opset)]
    onx = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="softmax_xp",
        producer_version=__version__,
        ir_version=helper.find_min_ir_version_for(opsets),  # the oldest runtime that can run it
    )
    onnx.checker.check_model(onx, full_check=True)
    return onx


def save_onnx(model: SoftmaxXP, path: str | os.PathLike[str], *, opset: int | None = None) -> Path:
    """Write :func:`model_to_onnx`'s graph of ``model`` to ``path`` atomically (a temporary file
    beside it, fsync, rename, as model files are written); return ``path``.

    Examples
    --------
    >>> import onnx
    >>> from softmax_xp import SoftmaxXP
    >>> path = save_onnx(SoftmaxXP(4, 3, backend="numpy", seed=0), "model.onnx")
    >>> [o.name for o in onnx.load(path).graph.output]
    ['label', 'probabilities']
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a file path (a str or pathlib.Path), got {path!r}.")
    data = model_to_onnx(model, opset=opset).SerializeToString()
    return write_atomic(path, lambda file: file.write(data))


def export_model(
    model_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
    format: str = "onnx",
    *,
    opset: int | None = None,
) -> Path:
    """Export the model file ``model_path`` (written by :meth:`~softmax_xp.SoftmaxXP.save`, or a
    checkpoint) to ``format``; return the path written (default: ``model_path`` with the
    format's suffix, ``model.npz`` -> ``model.onnx``). This is ``softmax-xp export``.

    Raises
    ------
    ValueError
        An unknown format, an output path equal to the model file, or a bad opset.
    FileNotFoundError
        No such model file; :class:`~softmax_xp.ModelFileError` for a file that is not a model.
    ImportError
        The format's library is missing (the message names the extra to install).

    Examples
    --------
    >>> from softmax_xp import SoftmaxXP
    >>> path = SoftmaxXP(4, 3, backend="numpy", seed=0).save("model.npz")
    >>> export_model(path).name
    'model.onnx'
    """
    if format not in FORMATS:
        raise ValueError(
            f"Unknown export format {format!r}; use one of {', '.join(map(repr, FORMATS))}."
        )
    if not isinstance(model_path, str | os.PathLike):
        raise TypeError(f"model_path must be a file path, got {model_path!r}.")
    model_path = Path(model_path)
    out = model_path.with_suffix(f".{format}") if out_path is None else Path(out_path)
    if out.resolve() == model_path.resolve():
        raise ValueError(
            f"The output {out} is the model file itself; give another output path (--out)."
        )
    if not model_path.is_file():
        raise FileNotFoundError(f"No model file {model_path}: save one with SoftmaxXP.save().")
    _check_opset(opset)
    _require("onnx")  # before reading the model: the missing extra is the first thing to fix
    model = SoftmaxXP.load(model_path, backend="numpy")
    return save_onnx(model, out, opset=opset)


# --------------------------------------------------------------------------- skl2onnx


def _label_kind(classes: np.ndarray) -> str:
    """``"int64"`` or ``"string"``: the labels skl2onnx classifiers output for ``classes``
    (integers, booleans and integral floats as int64; text as strings)."""
    kind = classes.dtype.kind
    if kind in "biu":
        return "int64"
    if kind == "f":
        if np.all(classes == np.round(classes)):
            return "int64"
        raise ValueError(
            f"classes_ {classes.tolist()} are floats that are not integers; ONNX classifiers "
            "output int64 or string labels. Fit with integer or string labels."
        )
    if kind in "USO" and all(isinstance(c, str) for c in classes.tolist()):
        return "string"
    raise ValueError(
        f"classes_ of dtype {classes.dtype} cannot be ONNX labels (int64 or strings); "
        "fit with integer or string labels."
    )


def _labels(scope: Any, clf: Any) -> np.ndarray:
    """The labels the graph outputs: ``classes_``, or their indices with option ``nocl=True``."""
    if scope.get_options(clf, {"nocl": False})["nocl"]:
        return np.arange(len(clf.classes_), dtype=np.int64)
    return np.asarray(clf.classes_)


def _compute_dtype(model: SoftmaxXP, input_type: Any) -> tuple[Any, bool]:
    """The numpy dtype the converted graph computes in: the input's (float32 or float64, as
    skl2onnx does), or the model's for another input type, which is then cast."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    if isinstance(input_type, DoubleTensorType):
        return np.dtype(np.float64), False
    if isinstance(input_type, FloatTensorType):
        return np.dtype(np.float32), False
    return np.dtype(model.dtype_name), True


def _shape_calculator(operator: Any) -> None:
    """skl2onnx shape calculator: ``label`` (N,) int64 or string, ``probabilities`` (N, K)."""
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    if len(operator.inputs) != 1 or len(operator.outputs) != 2:
        raise RuntimeError(
            f"SoftmaxClassifier takes one input and gives two outputs (label, probabilities); "
            f"got {len(operator.inputs)} and {len(operator.outputs)}."
        )
    clf = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    labels = _label_kind(_labels(operator.scope_inst, clf))
    dtype, _ = _compute_dtype(clf.model_, operator.inputs[0].type)
    if dtype == np.float64 and operator.scope_inst.get_options(clf, {"zipmap": True})["zipmap"]:
        raise ValueError(
            "ONNX's ZipMap takes float32 probabilities, and this graph computes in float64: "
            "convert with options={'zipmap': False} (two tensors) or from float32 input."
        )
    proba = DoubleTensorType if dtype == np.float64 else FloatTensorType
    operator.outputs[0].type = (Int64TensorType if labels == "int64" else StringTensorType)([n])
    operator.outputs[1].type = proba([n, len(clf.classes_)])


def _converter(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter: Softmax(X W + b) of ``model_``'s own weights (so two classes give the
    softmax of two logits) and the labels ``classes_[ArgMax(X W + b)]`` (a Gather)."""
    from onnx import TensorProto
    from onnx.helper import np_dtype_to_tensor_dtype

    clf = operator.raw_operator
    model = clf.model_
    x = operator.inputs[0].full_name
    dtype, cast = _compute_dtype(model, operator.inputs[0].type)
    elem = np_dtype_to_tensor_dtype(dtype)
    if cast:
        casted = scope.get_unique_variable_name("X_cast")
        container.add_node(
            "Cast", [x], [casted], name=scope.get_unique_operator_name("Cast"), to=elem
        )
        x = casted
    names = {key: scope.get_unique_variable_name(key) for key in ("W", "b", "classes")}
    W = to_numpy(model.W).astype(dtype)
    b = to_numpy(model.b).astype(dtype).reshape(-1)
    container.add_initializer(names["W"], elem, list(W.shape), W.ravel().tolist())
    container.add_initializer(names["b"], elem, list(b.shape), b.tolist())
    out = {key: scope.get_unique_variable_name(key) for key in ("matmul", "logits", "index")}
    out["probabilities"] = operator.outputs[1].full_name
    for op, inputs, outputs, attrs in _linear_softmax(x, names["W"], names["b"], out):
        container.add_node(op, inputs, outputs, name=scope.get_unique_operator_name(op), **attrs)
    classes = _labels(scope, clf)
    if _label_kind(classes) == "int64":
        values, label_type = classes.astype(np.int64).tolist(), TensorProto.INT64
    else:
        values, label_type = [c.encode("utf-8") for c in classes.tolist()], TensorProto.STRING
    container.add_initializer(names["classes"], label_type, [len(values)], values)
    container.add_node(
        "Gather",
        [names["classes"], out["index"]],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Gather"),
        axis=0,
    )


def register_skl2onnx() -> None:
    """Register :class:`~softmax_xp.SoftmaxClassifier` with skl2onnx (once per process; calling
    again is harmless), so that ``skl2onnx.to_onnx`` converts it, alone or as the last step of
    a Pipeline.

    The graph computes ``probabilities = Softmax(X W + b)`` from ``model_.W`` and ``model_.b``
    (with two classes, the softmax of the two logits) and ``label = classes_[ArgMax(X W + b)]``:
    int64 labels for integer classes, strings for text, as skl2onnx's classifiers. It computes
    in the input's dtype (float32 or float64). skl2onnx's classifier options apply:
    ``options={"zipmap": False}`` gives the two tensors ``label`` and ``probabilities``; the
    default (``zipmap=True``) gives the probabilities as a ZipMap (a list of dicts, one per row,
    keyed by class; float32 only, ONNX's ZipMap has no float64), ``"columns"`` one output per
    class; ``nocl=True`` outputs class indices
    instead of ``classes_``; ``output_class_labels=True`` adds an output with ``classes_``.
    Needs skl2onnx (``pip install "softmax-xp[onnx]"``).

    Examples
    --------
    >>> import numpy as np, onnxruntime, skl2onnx
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from softmax_xp import SoftmaxClassifier
    >>> register_skl2onnx()
    >>> X = np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32)
    >>> y = np.where(X[:, 0] > 0, "yes", "no")
    >>> pipe = make_pipeline(StandardScaler(), SoftmaxClassifier(random_state=0)).fit(X, y)
    >>> onx = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
    >>> session = onnxruntime.InferenceSession(onx.SerializeToString())
    >>> label, proba = session.run(None, {"X": X})
    >>> label.tolist() == pipe.predict(X).tolist()
    True
    >>> bool(np.abs(proba - pipe.predict_proba(X)).max() < 1e-6)
    True
    """
    skl2onnx = _require("skl2onnx")
    from .sklearn import SoftmaxClassifier

    skl2onnx.update_registered_converter(
        SoftmaxClassifier,
        _ALIAS,
        _shape_calculator,
        _converter,
        options={
            "zipmap": [True, False, "columns"],
            "nocl": [False, True],
            "output_class_labels": [False, True],
        },
    )


# --------------------------------------------------------------------------- skops


def skops_trusted_types() -> list[str]:
    """The types in a ``skops.io`` file of a fitted :class:`~softmax_xp.SoftmaxClassifier` that
    skops does not trust by default: pass them to ``skops.io.load(path, trusted=...)``.

    They are the estimator, its :class:`~softmax_xp.SoftmaxXP` (held in ``model_``; saved with
    host NumPy arrays and its backend's name, and restored onto that backend), the model's
    training state and its :class:`~softmax_xp.History`. Trust only files you made: check with
    ``skops.io.get_untrusted_types(file=path)`` that a file asks for nothing more.

    Examples
    --------
    >>> import numpy as np, skops.io
    >>> from softmax_xp import SoftmaxClassifier
    >>> X = np.random.default_rng(0).normal(size=(40, 3))
    >>> clf = SoftmaxClassifier(random_state=0).fit(X, X[:, 0] > 0)
    >>> skops.io.dump(clf, "clf.skops")
    >>> twin = skops.io.load("clf.skops", trusted=skops_trusted_types())
    >>> bool((twin.predict_proba(X) == clf.predict_proba(X)).all())
    True
    """
    from ._training.state import TrainState
    from .model import History
    from .sklearn import SoftmaxClassifier

    classes = [SoftmaxClassifier, SoftmaxXP, TrainState, History]
    return sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in classes)
