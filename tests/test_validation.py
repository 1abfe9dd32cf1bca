"""Every bad argument and bad input gets a clear ValueError or TypeError, on every backend."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from softmax_xp import SoftmaxXP, resolve_backend, to_numpy
from softmax_xp._validation import as_features

D, K, N = 4, 3, 10
RNG = np.random.default_rng(0)
X = RNG.normal(size=(N, D))
Y = np.arange(N) % K


def with_value(value: float, at: tuple[int, int] = (3, 1)) -> np.ndarray:
    bad = X.copy()
    bad[at] = value
    return bad


# -- constructor arguments: no arrays involved, checked once --------------------------------------
def make(**kwargs: Any) -> Callable[[], Any]:
    args = {"input_dim": D, "num_classes": K, "backend": "numpy", **kwargs}
    return lambda: SoftmaxXP(**args)


SCALAR_CASES = [
    ("input_dim 0", make(input_dim=0), ValueError, "input_dim must be >= 1, got 0"),
    ("input_dim float", make(input_dim=4.0), TypeError, "input_dim must be an integer"),
    ("input_dim str", make(input_dim="4"), TypeError, "input_dim must be an integer"),
    ("num_classes 1", make(num_classes=1), ValueError, "num_classes must be >= 2, got 1"),
    ("num_classes bool", make(num_classes=True), TypeError, "num_classes must be an integer"),
    ("lr 0", make(lr=0), ValueError, r"lr must be a finite number in \(0, inf\), got 0.0"),
    ("lr negative", make(lr=-0.1), ValueError, r"lr must be a finite number in \(0, inf\)"),
    ("lr nan", make(lr=math.nan), ValueError, r"lr must be a finite number.*got nan"),
    ("lr inf", make(lr=math.inf), ValueError, r"lr must be a finite number.*got inf"),
    ("lr str", make(lr="0.1"), TypeError, "lr must be a real number"),
    ("reg negative", make(reg=-1e-3), ValueError, r"reg must be a finite number in \[0, inf\)"),
    ("reg inf", make(reg=math.inf), ValueError, "reg must be a finite number"),
    ("momentum 1", make(momentum=1.0), ValueError, r"momentum must be .* in \[0, 1\), got 1.0"),
    ("momentum negative", make(momentum=-0.1), ValueError, r"momentum must be .* in \[0, 1\)"),
    ("lr_decay 0", make(lr_decay=0.0), ValueError, r"lr_decay must be .* in \(0, 1\], got 0.0"),
    ("lr_decay above 1", make(lr_decay=1.5), ValueError, r"lr_decay must be .* in \(0, 1\]"),
    ("dtype float16", make(dtype="float16"), ValueError, "Unknown dtype 'float16'"),
    ("dtype int", make(dtype=int), ValueError, "Unknown dtype"),
    ("dtype None", make(dtype=None), ValueError, "Unknown dtype None"),
    ("seed negative", make(seed=-1), ValueError, "seed must be >= 0"),
    ("seed str", make(seed="1"), TypeError, "seed must be an integer"),
    ("unknown backend", make(backend="tensorflow"), ValueError, "Unknown backend 'tensorflow'"),
    (
        "float64 on a device without it",
        make(backend="array_api_strict", device="no_float64", dtype="float64"),
        ValueError,
        "does not support float64; use dtype='float32'",
    ),
    (
        "float64 on a 32-bit device",
        make(backend="array_api_strict", device="no_x64", dtype="float64"),
        ValueError,
        "does not support float64; use dtype='float32'",
    ),
]


@pytest.mark.parametrize(
    ("description", "call", "error", "message"), SCALAR_CASES, ids=[c[0] for c in SCALAR_CASES]
)
def test_bad_arguments(description, call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_good_arguments_are_normalised():
    model = SoftmaxXP(np.int64(D), K, lr=1, reg=0, momentum=0, seed=np.int64(3), backend="numpy")
    assert (model.input_dim, model.lr, model.seed) == (D, 1.0, 3)
    assert type(model.input_dim) is int and type(model.seed) is int
    assert SoftmaxXP(D, K, backend="numpy", dtype=np.float64).dtype_name == "float64"
    strict = SoftmaxXP(D, K, backend="array_api_strict", device="no_float64", dtype="float32")
    assert strict.train(X, Y, epochs=1, verbose=0).loss


def test_a_device_without_int64_takes_its_default_integers():
    """Labels use the namespace's default integer dtype (int32 on array-api-strict's "no_x64",
    as on JAX without its 64-bit mode), so such a device is not refused for lacking int64.
    (array-api-strict's own argmax needs int64 there, so training is tested on JAX.)"""
    strict = SoftmaxXP(D, K, backend="array_api_strict", device="no_x64", seed=0)
    reference = SoftmaxXP(D, K, backend="numpy", seed=0)
    loss = strict.compute_loss_and_grads(X, Y)[0]
    assert float(loss) == pytest.approx(float(reference.compute_loss_and_grads(X, Y)[0]))


# -- array inputs: checked on every backend --------------------------------------------------------
Call = Callable[[SoftmaxXP, Callable[..., Any]], Any]


def train(X_: Any = X, y_: Any = Y, **kwargs: Any) -> Call:
    """A call of train on host data; ``on(...)`` in other cases moves data to the backend."""
    kwargs = {"epochs": 1, "verbose": 0, **kwargs}
    return lambda model, on: model.train(X_, y_, **kwargs)


def ragged() -> list:
    return [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]]


ARRAY_CASES: list[tuple[str, Call, type[Exception], str]] = [
    # X: values
    (
        "NaN in X",
        lambda m, on: m.train(on(with_value(np.nan)), Y, verbose=0),
        ValueError,
        r"^Input X contains NaN\.$",
    ),
    (
        "inf in X",
        lambda m, on: m.train(on(with_value(-np.inf)), Y, verbose=0),
        ValueError,
        "^Input X contains infinity",
    ),
    (
        "X overflows float32",
        train(with_value(1e300)),
        ValueError,
        "Input X contains infinity or a value too large for float32",
    ),
    (
        "X overflows float32 in predict",
        lambda m, on: m.predict(with_value(-1e300)),
        ValueError,
        "Input X contains infinity or a value too large for float32",
    ),
    (
        "NaN in X_val",
        train(X_val=with_value(np.nan), y_val=Y),
        ValueError,
        r"^Input X_val contains NaN\.$",
    ),
    (
        "NaN in predict",
        lambda m, on: m.predict(on(with_value(np.nan))),
        ValueError,
        r"^Input X contains NaN\.$",
    ),
    (
        "inf in predict_proba",
        lambda m, on: m.predict_proba(with_value(np.inf)),
        ValueError,
        "^Input X contains infinity",
    ),
    (
        "NaN in the last chunk",
        lambda m, on: m.predict(with_value(np.nan, (N - 1, 0)), chunk_size=3),
        ValueError,
        "contains NaN",
    ),
    ("NaN in score", lambda m, on: m.score(on(with_value(np.nan)), Y), ValueError, "contains NaN"),
    (
        "NaN in compute_loss_and_grads",
        lambda m, on: m.compute_loss_and_grads(with_value(np.nan), Y),
        ValueError,
        "contains NaN",
    ),
    # X: shapes
    (
        "X 1-D",
        lambda m, on: m.predict(on(X[0])),
        ValueError,
        r"Expected a 2-D array X of shape \(n_samples, 4\), got a 1-D array of shape \(4,\)",
    ),
    ("X 0-D", lambda m, on: m.predict(1.0), ValueError, "Expected a 2-D array X"),
    (
        "X wrong features",
        lambda m, on: m.predict(on(X[:, :3])),
        ValueError,
        r"^X has 3 features, but SoftmaxXP is expecting 4 features as input\.$",
    ),
    ("X_val wrong features", train(X_val=X[:, :3], y_val=Y), ValueError, "^X_val has 3 features"),
    (
        "X stack of wrong size",
        lambda m, on: m.predict(on(np.zeros((N, 2, 3)))),
        ValueError,
        r"X has 6 features \(shape \(10, 2, 3\)\), but SoftmaxXP is expecting 4",
    ),
    (
        "X empty",
        lambda m, on: m.predict(on(np.zeros((0, D)))),
        ValueError,
        r"Found array with 0 sample\(s\) \(shape=\(0, 4\)\) while a minimum of 1 is required",
    ),
    (
        "X empty in train",
        train(np.zeros((0, D)), np.zeros(0, dtype=int)),
        ValueError,
        r"Found array with 0 sample\(s\)",
    ),
    (
        "X ragged list",
        lambda m, on: m.predict(ragged()),
        ValueError,
        "X could not be converted to an array",
    ),
    # X: types
    ("X str", lambda m, on: m.predict("data.csv"), TypeError, "Expected an array-like X, got str"),
    ("X dict", lambda m, on: m.predict({"x": X}), TypeError, "Expected an array-like X, got dict"),
    ("X None", train(None), TypeError, "Expected an array-like X, got NoneType"),
    ("X object array", lambda m, on: m.predict(X.astype(object)), TypeError, "X has dtype object"),
    ("X strings", lambda m, on: m.predict(X.astype(str)), TypeError, "X has dtype str"),
    (
        "X complex",
        lambda m, on: m.predict(on(X + 0j, "complex128")),
        TypeError,
        r"X has complex dtype complex(128|64)",
    ),
    # y
    (
        "y length",
        lambda m, on: m.train(X, on(Y[:-1], "int64"), verbose=0),
        ValueError,
        re.escape("Found input variables with inconsistent numbers of samples: [10, 9]"),
    ),
    (
        "y_val length",
        train(X_val=X, y_val=Y[:-1]),
        ValueError,
        re.escape("inconsistent numbers of samples: [10, 9]"),
    ),
    (
        "y too large",
        lambda m, on: m.train(X, on(Y + 1, "int64"), verbose=0),
        ValueError,
        r"y contains the label 3, but SoftmaxXP has num_classes=3; class labels must be integers in \[0, 3\)",
    ),
    (
        "y negative",
        lambda m, on: m.train(X, on(Y - 1, "int64"), verbose=0),
        ValueError,
        "y contains the negative label -1",
    ),
    (
        "y fractional",
        lambda m, on: m.train(X, on(Y + 0.5), verbose=0),
        ValueError,
        "y contains the non-integer label 0.5",
    ),
    (
        "y NaN",
        lambda m, on: m.train(X, on(np.where(Y == 2, np.nan, Y)), verbose=0),
        ValueError,
        "y contains NaN",
    ),
    (
        "y inf",
        train(y_=np.where(Y == 2, np.inf, Y)),
        ValueError,
        "y contains the non-integer label inf",
    ),
    (
        "y float too large",
        train(y_=Y + 1e20),
        ValueError,
        "y contains the label 100000000000000000000",
    ),
    (
        "y strings",
        train(y_=Y.astype(str)),
        TypeError,
        "y has dtype str.*; class labels must be integers",
    ),
    (
        "y complex",
        lambda m, on: m.train(X, on(Y + 0j, "complex128"), verbose=0),
        TypeError,
        r"y has dtype complex(128|64)",
    ),
    (
        "y bool",
        lambda m, on: m.train(X, on(Y > 0, "bool"), verbose=0),
        TypeError,
        r"y has dtype bool; .* pass y\.astype\(int\)",
    ),
    (
        "y 2-D",
        train(y_=Y[:, None]),
        ValueError,
        r"y should be a 1-D array of shape \(n_samples,\), got shape \(10, 1\)",
    ),
    ("y None", train(y_=None), TypeError, "Expected an array-like y"),
    (
        "y out of range in score",
        lambda m, on: m.score(X, Y + 1),
        ValueError,
        "y contains the label 3",
    ),
    (
        "y out of range in compute_loss_and_grads",
        lambda m, on: m.compute_loss_and_grads(X, Y - 1),
        ValueError,
        "negative label -1",
    ),
    ("y_val too large", train(X_val=X, y_val=Y + 1), ValueError, "y_val contains the label 3"),
    # train and predict arguments
    ("epochs negative", train(epochs=-1), ValueError, "epochs must be >= 0, got -1"),
    ("epochs float", train(epochs=2.0), TypeError, "epochs must be an integer"),
    ("batch_size 0", train(batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
    ("batch_size None", train(batch_size=None), TypeError, "batch_size must be an integer"),
    ("X_val without y_val", train(X_val=X), ValueError, "X_val and y_val must be given together"),
    (
        "chunk_size 0",
        lambda m, on: m.predict(X, chunk_size=0),
        ValueError,
        "chunk_size must be >= 1",
    ),
    (
        "chunk_size float",
        lambda m, on: m.score(X, Y, chunk_size=2.5),
        TypeError,
        "chunk_size must be an integer",
    ),
]


@pytest.mark.parametrize(
    ("description", "call", "error", "message"), ARRAY_CASES, ids=[c[0] for c in ARRAY_CASES]
)
def test_bad_inputs(backend, arrays, description, call, error, message):
    model = SoftmaxXP(D, K, backend=backend.name, device=backend.device, seed=0)
    W_before = to_numpy(model.W).copy()
    with pytest.raises(error, match=message):
        call(model, lambda data, dtype="float64": arrays(data, dtype))
    np.testing.assert_array_equal(to_numpy(model.W), W_before)  # a refused call changes nothing


def test_image_stacks_are_flattened_without_a_copy(backend, arrays):
    model = SoftmaxXP(D, K, backend=backend.name, device=backend.device, seed=0)
    stack = X.reshape(N, 2, 2)
    np.testing.assert_array_equal(
        to_numpy(model.predict(arrays(stack))), to_numpy(model.predict(X))
    )
    assert model.train(stack, Y, epochs=1, verbose=0).loss
    host = np.ascontiguousarray(stack, dtype=np.float32)
    flat = as_features(host, resolve_backend("numpy"), np.float32, D)
    assert np.shares_memory(flat, host)


def test_integer_valued_labels_of_any_kind_are_accepted(backend, arrays):
    model = SoftmaxXP(D, K, backend=backend.name, device=backend.device, seed=0)
    for labels in (Y.astype(float), Y.astype(np.uint8), Y.tolist(), arrays(Y, "float32")):
        assert 0 <= model.score(X, labels) <= 1
    assert model.score(X.tolist(), Y) == model.score(X, Y)


def test_epochs_zero_returns_an_empty_history():
    model = SoftmaxXP(D, K, backend="numpy", seed=0)
    W = model.W
    history = model.train(X, Y, epochs=0, verbose=0)
    assert len(history) == 0 and history.loss == [] and model.W is W


def test_large_finite_values_whose_sum_overflows_are_accepted(backend):
    """The finiteness check sums X first; an overflowing sum must not be taken for an inf."""
    X = np.full((4, 3), 3e38, dtype=np.float32)
    model = SoftmaxXP(3, 2, backend=backend.name, device=backend.device, seed=0)
    assert tuple(model.predict(X).shape) == (4,)
