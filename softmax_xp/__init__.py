"""softmax_xp: the softmax linear classifier, written once against the Python array API.

The same code trains and predicts on NumPy (CPU), CuPy (CUDA GPU), PyTorch and array-api-strict.
"""

import importlib.util
from typing import Any

from ._backend import (
    BackendFallbackWarning,
    BackendUnavailableError,
    backend_info,
    resolve_backend,
    to_numpy,
)
from ._errors import DeviceMemoryError, ResumeMismatchError, TrainingDivergedError
from ._io import ModelFileError
from .datasets import load_mnist
from .functional import (
    cross_entropy,
    log_softmax,
    logsumexp,
    loss_and_grads,
    one_hot,
    sigmoid,
    softmax,
    softmax_jacobian,
)
from .metrics import accuracy, classification_report, confusion_matrix
from .model import Callback, EarlyStopping, History, SoftmaxXP

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``SoftmaxClassifier`` is imported on first use, so ``import softmax_xp`` works without
    scikit-learn (the ``[sklearn]`` extra)."""
    if name == "SoftmaxClassifier":
        from .sklearn import SoftmaxClassifier

        return SoftmaxClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BackendFallbackWarning",
    "BackendUnavailableError",
    "Callback",
    "DeviceMemoryError",
    "EarlyStopping",
    "History",
    "ModelFileError",
    "ResumeMismatchError",
    "SoftmaxXP",
    "TrainingDivergedError",
    "__version__",
    "accuracy",
    "backend_info",
    "classification_report",
    "confusion_matrix",
    "cross_entropy",
    "load_mnist",
    "log_softmax",
    "logsumexp",
    "loss_and_grads",
    "one_hot",
    "resolve_backend",
    "sigmoid",
    "softmax",
    "softmax_jacobian",
    "to_numpy",
]
if importlib.util.find_spec("sklearn") is not None:  # so that `import *` works without it
    __all__.append("SoftmaxClassifier")
