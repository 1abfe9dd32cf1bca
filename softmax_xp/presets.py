"""Training recipes as plain dicts.

``lr``, ``reg``, ``momentum`` and ``lr_decay`` go to :class:`~softmax_xp.SoftmaxXP`'s constructor;
``epochs`` and ``batch_size`` go to :meth:`~softmax_xp.SoftmaxXP.train`::

    from softmax_xp import SoftmaxXP
    from softmax_xp.presets import FAST, model_args, train_args

    model = SoftmaxXP(784, 10, **model_args(FAST), seed=0)
    model.train(X, y, **train_args(FAST))

- :data:`CHAPTER`: the textbook's recipe and the library's defaults (plain SGD, fixed step,
  100 epochs of batch 256; MNIST test accuracy 0.9227).
- :data:`FAST`: heavy-ball momentum with a step size that shrinks after every epoch; on MNIST it
  reaches the chapter's test accuracy in a few epochs (benchmarks/README.md has the numbers).
"""

from __future__ import annotations

from typing import Any

__all__ = ["CHAPTER", "FAST", "PRESETS", "model_args", "train_args"]

_MODEL_KEYS = ("lr", "reg", "momentum", "lr_decay")
_TRAIN_KEYS = ("epochs", "batch_size")

CHAPTER: dict[str, Any] = dict(
    lr=0.1, reg=1e-4, momentum=0.0, lr_decay=1.0, epochs=100, batch_size=256
)
FAST: dict[str, Any] = dict(
    lr=0.5, reg=1e-4, momentum=0.95, lr_decay=0.6, epochs=10, batch_size=512
)
PRESETS: dict[str, dict[str, Any]] = {"chapter": CHAPTER, "fast": FAST}


def model_args(preset: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments of a preset: ``lr``, ``reg``, ``momentum``, ``lr_decay``."""
    return {key: preset[key] for key in _MODEL_KEYS}


def train_args(preset: dict[str, Any]) -> dict[str, Any]:
    """The :meth:`~softmax_xp.SoftmaxXP.train` arguments of a preset: ``epochs``, ``batch_size``."""
    return {key: preset[key] for key in _TRAIN_KEYS}
