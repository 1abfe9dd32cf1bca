"""Input checks in one place, with scikit-learn-style messages.

``ValueError`` for a bad value or shape, ``TypeError`` for a wrong type. Array checks look at
shapes and dtypes without touching the data. The NaN/infinity check of features runs on the model's
backend after the move (so values that overflow the model's dtype are caught too); label checks
run where the labels are, before the move. Each costs one host read.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import warnings
from collections.abc import Mapping
from types import FrameType
from typing import Any

import array_api_compat
import numpy as np

from ._backend import Backend, asarray_on, index_dtype, to_numpy

__all__ = [
    "DTYPES",
    "as_features",
    "as_labels",
    "check_bool",
    "check_device_dtype",
    "check_dtype",
    "check_finite",
    "check_hyperparameters",
    "check_int",
    "check_penalty",
    "check_real",
    "features_on_host_or_device",
    "l1_share",
    "warn_if_unscaled",
    "warn_unscaled",
]

Array = Any
DTYPES = ("float32", "float64")
_MODEL = "SoftmaxXP"


# -- scalars -------------------------------------------------------------------------------------
def check_int(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int ``>= minimum``; bools and floats (even 3.0) are a TypeError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    number = int(value)
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}.")
    return number


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a bool; anything but True, False or a NumPy bool is a TypeError."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(
            f"{name} must be True or False, got {value!r} ({type(value).__name__}); "
            f"pass {name}=True or {name}=False."
        )
    return bool(value)


def check_real(value: Any, name: str, low: float, high: float, *, closed: str = "both") -> float:
    """``value`` as a finite float in the interval ``low..high``; ``closed`` is "both", "left",
    "right" or "neither" and says which ends belong to it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__}).")
    number = float(value)
    above = number >= low if closed in ("both", "left") else number > low
    below = number <= high if closed in ("both", "right") else number < high
    if not (above and below):  # NaN fails both comparisons
        left = "[" if closed in ("both", "left") else "("
        right = "]" if closed in ("both", "right") else ")"
        raise ValueError(
            f"{name} must be a finite number in {left}{low:g}, {high:g}{right}, got {number!r}."
        )
    return number


def check_dtype(dtype: Any) -> str:
    """The name of a supported floating dtype: "float32" or "float64". NumPy's spellings
    (``np.float32``, ``"f4"``, ``"double"``) and other libraries' dtype objects
    (``torch.float32``, ``array_api_strict.float64``) work too."""
    name: str | None = dtype
    if dtype is not None and not (isinstance(dtype, str) and dtype in DTYPES):
        text = str(dtype).rsplit(".", 1)[-1].strip().lower()  # np.dtype(None) is float64
        for spelling in (dtype, text):
            try:
                name = np.dtype(spelling).name
                break
            except (TypeError, ValueError):
                name = None
    if name not in DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}; use one of {', '.join(map(repr, DTYPES))}.")
    return name


def check_hyperparameters(
    input_dim: Any,
    num_classes: Any,
    lr: Any,
    reg: Any,
    momentum: Any,
    lr_decay: Any,
    dtype: Any,
    seed: Any,
    penalty: Any = "l2",
    l1_ratio: Any = None,
    fit_intercept: Any = True,
) -> dict[str, Any]:
    """The constructor's arguments, checked and normalised to plain Python values."""
    if seed is not None:
        if hasattr(seed, "bit_generator") or hasattr(seed, "get_state"):
            raise TypeError(
                f"seed must be an integer, got a {type(seed).__name__}: the model saves its seed "
                "with its weights, which a random generator cannot be. Pass an int, e.g. seed=0, "
                "or draw one from your generator: seed=int(rng.integers(2**32))."
            )
        seed = check_int(seed, "seed", 0)
    return {
        "input_dim": check_int(input_dim, "input_dim", 1),
        "num_classes": check_int(num_classes, "num_classes", 2),
        "lr": check_real(lr, "lr", 0.0, math.inf, closed="neither"),
        "reg": check_real(reg, "reg", 0.0, math.inf, closed="left"),
        "momentum": check_real(momentum, "momentum", 0.0, 1.0, closed="left"),
        "lr_decay": check_real(lr_decay, "lr_decay", 0.0, 1.0, closed="right"),
        "dtype": check_dtype(dtype),
        "seed": seed,
        **check_penalty(penalty, l1_ratio),
        "fit_intercept": check_bool(fit_intercept, "fit_intercept"),
    }


PENALTIES = ("l2", "l1", "elasticnet")
ELASTICNET_L1_RATIO = 0.15  # l1_ratio=None with "elasticnet": SGDClassifier's default


def check_penalty(penalty: Any, l1_ratio: Any) -> dict[str, Any]:
    """``{"penalty": ..., "l1_ratio": ...}`` checked: ``l1_ratio`` in [0, 1] with
    ``"elasticnet"`` (None: :data:`ELASTICNET_L1_RATIO`, SGDClassifier's 0.15), refused (it must
    be None) with ``"l2"`` and ``"l1"``."""
    if not isinstance(penalty, str) or penalty not in PENALTIES:
        raise ValueError(
            f"Unknown penalty {penalty!r}; use one of {', '.join(map(repr, PENALTIES))}."
        )
    if penalty != "elasticnet":
        if l1_ratio is not None:
            raise ValueError(
                f"l1_ratio is only used with penalty='elasticnet', got l1_ratio={l1_ratio!r} "
                f"with penalty={penalty!r}; leave it None (penalty='l2' is l1_ratio=0, "
                "penalty='l1' is l1_ratio=1)."
            )
        return {"penalty": penalty, "l1_ratio": None}
    if l1_ratio is None:
        l1_ratio = ELASTICNET_L1_RATIO
    return {"penalty": penalty, "l1_ratio": check_real(l1_ratio, "l1_ratio", 0.0, 1.0)}


def l1_share(penalty: str, l1_ratio: float | None) -> float:
    """The L1 share of a checked penalty: 0 for ``"l2"``, 1 for ``"l1"``, else ``l1_ratio``."""
    if penalty == "elasticnet":
        assert l1_ratio is not None
        return l1_ratio
    return 1.0 if penalty == "l1" else 0.0


def check_device_dtype(backend: Backend, dtype: str) -> None:
    """Refuse a dtype that the backend's device cannot hold (float64 on JAX without its 64-bit
    mode, on Apple's MPS, on array-api-strict's ``"no_float64"``)."""
    try:
        supported = backend.xp.__array_namespace_info__().dtypes(device=backend.device)
    except Exception:  # a namespace without the inspection API: the first array op will tell
        return
    if dtype in supported:
        return
    where = f"The {backend.name} device {backend.device!r}"
    if backend.name == "jax":
        raise ValueError(
            f"JAX holds {dtype} only in its 64-bit mode, which is off: use dtype='float32', or "
            'turn it on before any JAX array is made: jax.config.update("jax_enable_x64", True) '
            "(or set JAX_ENABLE_X64=1 in the environment)."
        )
    raise ValueError(f"{where} does not support {dtype}; use dtype='float32'.")


# -- arrays --------------------------------------------------------------------------------------
def _sparse_advice(x: Any, name: str) -> str | None:
    """Why sparse ``x`` (scipy.sparse, cupyx, pydata sparse, a torch sparse tensor) is refused,
    or None for dense input; recognised by type, so no sparse library is imported."""
    module = type(x).__module__
    if module.startswith(("scipy.sparse", "cupyx.scipy.sparse", "sparse")):
        densify = f"{name}.toarray()"
    elif (
        module.startswith("torch") and str(getattr(x, "layout", "torch.strided")) != "torch.strided"
    ):
        densify = f"{name}.to_dense()"
    else:
        return None
    return (
        f"{name} is a sparse {type(x).__name__}; sparse input is not supported here: {_MODEL} "
        "takes sparse features X (train, predict, score, ...), never sparse labels, weights "
        f"or logits. Pass a dense array instead: {densify}."
    )


def _native(x: Any, name: str) -> Any:
    """``x`` as an array of its own library (lists become NumPy arrays); no copy of arrays."""
    sparse = _sparse_advice(x, name)
    if sparse is not None:
        raise TypeError(sparse)
    if isinstance(x, np.ndarray):
        return x
    if not isinstance(x, np.generic) and array_api_compat.is_array_api_obj(x):
        return x
    if x is None or isinstance(x, str | bytes | Mapping | set):
        raise TypeError(f"Expected an array-like {name}, got {type(x).__name__}.")
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None


def _kind(x: Any) -> str:
    """The array API dtype kind of ``x``: "bool", "integral", "real floating", "complex floating"
    or "other" (strings, objects, dates)."""
    if isinstance(x, np.ndarray):
        kinds = {"b": "bool", "i": "integral", "u": "integral", "f": "real floating"}
        return kinds.get(x.dtype.kind, "complex floating" if x.dtype.kind == "c" else "other")
    xp = array_api_compat.array_namespace(x)
    for kind in ("bool", "integral", "real floating", "complex floating"):
        if xp.isdtype(x.dtype, kind):
            return kind
    return "other"


def _dtype_text(x: Any) -> str:
    """``x``'s dtype as a bare name ("float32", not "torch.float32")."""
    return str(getattr(x.dtype, "name", x.dtype)).rsplit(".", 1)[-1]


def features_on_host_or_device(X: Any, input_dim: int, name: str = "X") -> Array:
    """``X`` checked for type and shape, as a 2-D array of its own library (no move, no copy).

    An ``(n, 28, 28)`` stack whose trailing sizes multiply to ``input_dim`` is flattened.
    """
    X = _native(X, name)
    kind = _kind(X)
    if kind == "complex floating":
        raise TypeError(f"{name} has complex dtype {_dtype_text(X)}; {_MODEL} needs real features.")
    if kind == "other":
        hint = ""
        if isinstance(X, np.ndarray) and X.dtype.kind == "O":  # e.g. pandas, mixed columns
            hint = (
                f" Convert it to numbers first, e.g. {name}.astype('float32') (from pandas: "
                "df.to_numpy(dtype='float32'), after encoding any text columns)."
            )
        raise TypeError(
            f"{name} has dtype {_dtype_text(X)}; {_MODEL} needs numeric features.{hint}"
        )
    shape = tuple(X.shape)
    if len(shape) < 2:
        hint = ""
        if shape == (input_dim,):
            hint = f" For a single sample pass {name}.reshape(1, -1)."
        elif len(shape) == 1 and shape[0] % input_dim == 0:
            hint = f" Reshape it: {name}.reshape(-1, {input_dim})."
        raise ValueError(
            f"Expected a 2-D array {name} of shape (n_samples, {input_dim}), got a "
            f"{len(shape)}-D array of shape {shape}.{hint}"
        )
    if shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={shape}) while a minimum of 1 is required "
            f"by {_MODEL}."
        )
    features = math.prod(shape[1:])
    if features != input_dim:
        detail = f" (shape {shape})" if len(shape) > 2 else ""
        hint = ""
        if math.prod(shape) == input_dim:  # one 28 x 28 image, say
            hint = f" A single sample of shape {shape}? Pass {name}.reshape(1, -1)."
        raise ValueError(
            f"{name} has {features} features{detail}, but {_MODEL} is expecting "
            f"{input_dim} features as input.{hint}"
        )
    if len(shape) > 2:
        xp = array_api_compat.array_namespace(X)
        X = xp.reshape(X, (shape[0], input_dim))
    return X


def warn_if_unscaled(X: Array, name: str = "X") -> Array:
    """Warn when ``X`` (as :func:`features_on_host_or_device` returns it) holds integers above 1,
    such as raw 0..255 pixels: SGD's default ``lr`` expects features of order 1. Returns ``X``.

    Costs one host read, for integer ``X`` only; convert ``X`` to floats to silence it.
    """
    if _kind(X) != "integral":
        return X
    xp = array_api_compat.array_namespace(X)
    warn_unscaled(name, _dtype_text(X), int(to_numpy(xp.max(X))))
    return X


def warn_unscaled(name: str, dtype: str, high: int) -> None:
    """The warning of :func:`warn_if_unscaled` for integer features of ``dtype`` whose largest
    value is ``high``; nothing when ``high <= 1``."""
    if high > 1:
        warnings.warn(
            f"{name} has integer dtype {dtype} with values up to {high}. {_MODEL} "
            "expects features of order 1 (load_mnist's pixels are floats in [0, 1]): unscaled "
            "features make SGD diverge or learn badly, and a model trained on scaled features "
            f"predicts garbage on unscaled ones. If these are raw 0..255 pixels, pass {name} / "
            f"255. Pass {name} as floats (e.g. {name}.astype('float32')) to silence this warning.",
            UserWarning,
            stacklevel=_user_stacklevel(),
        )


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside this package."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def check_finite(X: Array, xp: Any, name: str = "X") -> None:
    """Refuse NaN or infinity in ``X`` (a floating array on the model's backend).

    A finite sum proves every entry finite (NaN and inf propagate), without an N x d mask; only a
    non-finite sum, which large finite values can also give, needs the entry-wise check.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing sum is expected here
        if bool(xp.isfinite(xp.sum(X))) or bool(xp.all(xp.isfinite(X))):
            return
    if bool(xp.any(xp.isnan(X))):
        raise ValueError(f"Input {name} contains NaN.")
    raise ValueError(f"Input {name} contains infinity or a value too large for {_dtype_text(X)}.")


def as_features(X: Any, backend: Backend, dtype: Any, input_dim: int, name: str = "X") -> Array:
    """``X`` checked (type, shape, finiteness) and moved to ``backend`` as ``dtype``."""
    X = features_on_host_or_device(X, input_dim, name)
    with np.errstate(over="ignore"):  # 1e300 cast to float32 is inf: check_finite reports it
        X = asarray_on(backend, X, dtype)
    check_finite(X, backend.xp, name)
    return X


def as_labels(y: Any, backend: Backend, n_samples: int, num_classes: int, name: str = "y") -> Array:
    """``y`` checked (integer-valued, 1-D, ``n_samples`` long, in ``[0, num_classes)``) and moved
    to ``backend`` in its default integer dtype (int64; int32 on JAX without its 64-bit mode).
    Integer-valued floats such as 1.0 are accepted."""
    y = _native(y, name)
    kind = _kind(y)
    valid = f"class labels must be integers in [0, {num_classes})"
    if kind == "bool":
        raise TypeError(f"{name} has dtype bool; {valid} (for 0/1 labels pass y.astype(int)).")
    if kind not in ("integral", "real floating"):
        raise TypeError(
            f"{name} has dtype {_dtype_text(y)}; {valid}. For string or other labels use "
            "softmax_xp.SoftmaxClassifier, which takes any labels, or encode them first: "
            f"classes, {name} = np.unique({name}, return_inverse=True)."
        )
    shape = tuple(y.shape)
    if len(shape) != 1:
        hint = ""
        if len(shape) == 2 and shape[1] == 1:
            hint = f" Pass {name}.ravel() (or {name}.reshape(-1)) for a column of labels."
        elif len(shape) == 2 and shape[1] == num_classes:
            hint = f" One-hot labels? Pass their class numbers: {name}.argmax(axis=1)."
        raise ValueError(
            f"{name} should be a 1-D array of shape (n_samples,), got shape {shape}.{hint}"
        )
    if shape[0] != n_samples:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: [{n_samples}, {shape[0]}]"
        )
    xp = array_api_compat.array_namespace(y)
    if kind == "real floating":
        _check_whole(y, xp, name, valid)
    low, high = (int(v) for v in to_numpy(xp.stack([xp.min(y), xp.max(y)])))
    if low < 0:
        raise ValueError(f"{name} contains the negative label {low}; {valid}.")
    if high >= num_classes:
        raise ValueError(
            f"{name} contains the label {high}, but {_MODEL} has num_classes={num_classes}; {valid}."
        )
    labels = index_dtype(backend.xp, backend.device)
    if kind == "real floating":
        y = xp.astype(y, index_dtype(xp, array_api_compat.device(y)))
    return asarray_on(backend, y, labels)


def _check_whole(y: Array, xp: Any, name: str, valid: str) -> None:
    """Refuse floating labels that are not whole numbers (1.5, NaN, inf): one host read."""
    whole = xp.isfinite(y) & (y == xp.floor(y))
    if not bool(xp.all(whole)):
        bad = float(to_numpy(y)[~to_numpy(whole)][0])
        what = "NaN" if math.isnan(bad) else f"the non-integer label {bad!r}"
        raise ValueError(f"{name} contains {what}; {valid}.")
