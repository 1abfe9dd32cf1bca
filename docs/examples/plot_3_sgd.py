r"""
Mini-batch SGD on a subset of MNIST
===================================

Stochastic gradient descent replaces the gradient of the whole training set by that of a small
random batch :math:`B` and takes a step against it:

.. math::

    W \leftarrow W - \eta\, \nabla_W L_B(W, b), \qquad b \leftarrow b - \eta\, \nabla_b L_B(W, b).

One *epoch* shuffles the training rows and visits them once, batch after batch. We first write
the loop out with :func:`~softmax_xp.loss_and_grads`, then let :class:`~softmax_xp.SoftmaxXP`
run the same loop; 5,000 training images keep this page fast.
"""

import numpy as np

from softmax_xp import SoftmaxXP, load_mnist, loss_and_grads
from softmax_xp.plots import plot_training_curves

(X_full, y_full), (X_test, y_test) = load_mnist()  # the bundled copy: no network
X, y = X_full[:5000], y_full[:5000]
X_val, y_val = X_full[-2000:], y_full[-2000:]
print(X.shape, X.dtype, "pixels in", (float(X.min()), float(X.max())))

# %%
# The loop, written out
# ---------------------

rng = np.random.default_rng(0)
lr, reg, batch_size = 0.1, 1e-4, 256
W = rng.normal(scale=0.01, size=(784, 10)).astype(np.float32)
b = np.zeros((1, 10), dtype=np.float32)
for epoch in range(1, 6):
    order = rng.permutation(len(X))
    total = 0.0
    for start in range(0, len(X), batch_size):
        rows = order[start : start + batch_size]
        loss, dW, db = loss_and_grads(X[rows], y[rows], W, b, reg=reg)
        W, b = W - lr * dW, b - lr * db
        total += float(loss) * len(rows)
    accuracy = np.mean(np.argmax(X_val @ W + b, axis=1) == y_val)
    print(f"epoch {epoch}: mean loss {total / len(X):.4f}, validation accuracy {accuracy:.4f}")

# %%
# The same with SoftmaxXP
# -----------------------
#
# :meth:`~softmax_xp.SoftmaxXP.train` runs this loop (with the shuffle and the initial weights
# drawn from ``seed``), records a :class:`~softmax_xp.History` and keeps everything on the
# model's backend. Heavy-ball momentum (``momentum``) and a step size that shrinks after each
# epoch (``lr_decay``) are the two extras; :data:`softmax_xp.presets.FAST` uses both.

model = SoftmaxXP(784, 10, lr=0.1, reg=1e-4, backend="numpy", seed=0)
history = model.train(X, y, X_val, y_val, epochs=15, batch_size=256)
print(
    f"{len(history)} epochs, last loss {history.loss[-1]:.4f}, "
    f"validation accuracy {history.val_accuracy[-1]:.4f}"
)
print("test accuracy on 10,000 images:", model.score(X_test, y_test))

fig = plot_training_curves(history)

# %%
# The batch size trades noise for speed: smaller batches take more, noisier steps per epoch.

for batch_size in (32, 256, 2048):
    model = SoftmaxXP(784, 10, lr=0.1, backend="numpy", seed=0)
    history = model.train(X, y, X_val, y_val, epochs=3, batch_size=batch_size)
    print(
        f"batch {batch_size:5d}: validation accuracy after 3 epochs {history.val_accuracy[-1]:.4f}"
    )
