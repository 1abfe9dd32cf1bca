"""The rows SoftmaxXP is measured against: a chapter-style NumPy loop, the PyTorch idiom and the
floor (the epoch's unavoidable work alone). Written here on purpose, not imported from the package.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def chapter_epoch(
    X: np.ndarray,
    y: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    rng: np.random.Generator,
    lr: float = 0.1,
    reg: float = 1e-4,
    batch_size: int = 256,
) -> float:
    """One epoch the way the chapter writes it: float64 weights, a shuffled copy of the data,
    probabilities, then the fancy-index update ``probs[np.arange(n), y] -= 1``.

    Updates ``W`` and ``b`` in place; returns the mean batch loss.
    """
    idx = rng.permutation(X.shape[0])
    X_shuffled, y_shuffled = X[idx], y[idx]
    losses = []
    for start in range(0, X.shape[0], batch_size):
        X_batch = X_shuffled[start : start + batch_size]
        y_batch = y_shuffled[start : start + batch_size]
        n = X_batch.shape[0]
        scores = X_batch @ W + b
        scores -= np.max(scores, axis=1, keepdims=True)
        exp_scores = np.exp(scores)
        probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
        data_loss = -np.mean(np.log(probs[np.arange(n), y_batch]))
        losses.append(data_loss + 0.5 * reg * np.sum(W * W))
        dscores = probs.copy()
        dscores[np.arange(n), y_batch] -= 1
        dscores /= n
        dW = X_batch.T @ dscores + reg * W
        db = np.sum(dscores, axis=0, keepdims=True)
        W -= lr * dW
        b -= lr * db
    return float(np.mean(losses))


def chapter_model(d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The chapter's initial parameters: ``0.001 * randn`` weights and zero bias, float64."""
    rng = np.random.default_rng(seed)
    return 0.001 * rng.standard_normal((d, k)), np.zeros((1, k))


def floor_epoch(X: Any, order: Any, W: Any, batch_size: int, xp: Any) -> None:
    """The unavoidable work of an epoch alone: gather each batch, ``X_b @ W`` and ``X_b.T @ dz``.

    ``dz`` is a fixed array of the logits' shape, so nothing else (softmax, loss, update) runs.
    """
    n = X.shape[0]
    dz = xp.zeros((batch_size, W.shape[1]), dtype=W.dtype, device=W.device)
    for start in range(0, n, batch_size):
        X_b = xp.take(X, order[start : start + batch_size], axis=0)
        X_b @ W
        X_b.T @ dz[: X_b.shape[0], :]


class TorchIdiom:
    """The PyTorch way: ``nn.Linear``, ``F.cross_entropy`` and ``optim.SGD(weight_decay=reg)``."""

    def __init__(
        self,
        d: int,
        k: int,
        lr: float = 0.1,
        reg: float = 1e-4,
        dtype: str = "float32",
        seed: int = 0,
        device: str = "cpu",
    ):
        import torch

        self.torch = torch
        torch.manual_seed(seed)
        self.dtype = getattr(torch, dtype)
        self.device = torch.device(device)
        self.model = torch.nn.Linear(d, k).to(self.dtype).to(self.device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, weight_decay=reg)

    def epoch(self, X: Any, y: Any, batch_size: int = 256) -> float:
        """One shuffled epoch over tensors ``X`` (float) and ``y`` (int64); the mean batch loss."""
        torch, F = self.torch, self.torch.nn.functional
        perm = torch.randperm(X.shape[0], device=self.device)
        total = torch.zeros((), dtype=self.dtype, device=self.device)
        steps = 0
        for start in range(0, X.shape[0], batch_size):
            idx = perm[start : start + batch_size]
            loss = F.cross_entropy(self.model(X[idx]), y[idx])
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            total += loss.detach()
            steps += 1
        return float(total) / steps
