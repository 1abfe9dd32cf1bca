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


def floor_epoch(X: Any, order: Any, W: Any, batch_size: int, xp: Any, layout: str = "row") -> None:
    """The unavoidable work of an epoch alone: gather each batch, its logits and the weight
    gradient, in ``layout`` (that of :func:`softmax_xp.solvers.sgd.sgd_epoch`): ``"row"``
    ``X_b @ W`` and ``X_b.T @ dz``; ``"class"`` ``W_t @ X_b.T`` and ``dz_t @ X_b``;
    ``"class_xw"`` ``X_b @ W_t.T`` and ``dz_t @ X_b`` (``W_t``: a class-major copy of ``W``).

    ``dz`` is a fixed array of the logits' shape, so nothing else (softmax, loss, update) runs.
    """
    n, k = X.shape[0], W.shape[1]
    dz = xp.zeros((batch_size, k), dtype=W.dtype, device=W.device)
    W_t, dz_t = xp.asarray(W.T, copy=True), xp.asarray(dz.T, copy=True)
    for start in range(0, n, batch_size):
        X_b = xp.take(X, order[start : start + batch_size], axis=0)
        m = X_b.shape[0]
        if layout == "row":
            X_b @ W
            X_b.T @ dz[:m, :]
        else:
            W_t @ X_b.T if layout == "class" else X_b @ W_t.T
            dz_t[:, :m] @ X_b


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


class JaxIdiom:
    """The JAX way: one jitted step (``jax.value_and_grad`` of the mean cross-entropy plus
    ``0.5 reg ||W||^2``, then ``p - lr * g``) called per batch from a Python loop, the batch
    gathered inside the step from a host-drawn permutation."""

    def __init__(
        self,
        d: int,
        k: int,
        lr: float = 0.1,
        reg: float = 1e-4,
        dtype: str = "float32",
        seed: int = 0,
    ):
        import jax
        import jax.numpy as jnp

        self.jnp = jnp
        self.rng = np.random.default_rng(seed)
        W = 0.001 * self.rng.standard_normal((d, k))
        self.params = (jnp.asarray(W, dtype=dtype), jnp.zeros((k,), dtype=dtype))

        def loss(params: Any, Xb: Any, yb: Any) -> Any:
            W, b = params
            logp = jax.nn.log_softmax(Xb @ W + b)
            nll = -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))
            return nll + 0.5 * reg * jnp.sum(W * W)

        @jax.jit
        def step(params: Any, X: Any, y: Any, idx: Any) -> Any:
            value, grads = jax.value_and_grad(loss)(params, X[idx], y[idx])
            return jax.tree.map(lambda p, g: p - lr * g, params, grads), value

        self.step = step

    def epoch(self, X: Any, y: Any, batch_size: int = 256) -> float:
        """One shuffled epoch over JAX arrays ``X`` and ``y``; the mean batch loss."""
        n = X.shape[0]
        perm = self.jnp.asarray(self.rng.permutation(n))
        total, steps = 0.0, 0
        for start in range(0, n, batch_size):
            self.params, value = self.step(self.params, X, y, perm[start : start + batch_size])
            total, steps = total + value, steps + 1
        return float(total) / steps
