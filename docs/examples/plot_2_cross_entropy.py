r"""
Cross-entropy with L2, and the gradient ``p - y``
=================================================

The model predicts :math:`p_i = \operatorname{softmax}(x_i^\top W + b)` for each of the
:math:`N` samples of a batch. The loss the chapter minimises is the mean negative
log-probability of the true classes plus an L2 penalty on the weights (not on the bias):

.. math::

    L(W, b) = -\frac{1}{N} \sum_{i=1}^{N} \log p_{i, y_i} + \frac{\lambda}{2} \lVert W \rVert^2.

Writing :math:`Y` for the one-hot labels, the derivative with respect to the logits is
remarkably simple, the predicted probabilities minus the truth:

.. math::

    \frac{\partial L}{\partial z_i} = \frac{1}{N}(p_i - Y_i), \qquad
    \frac{\partial L}{\partial W} = \frac{1}{N} X^\top (P - Y) + \lambda W, \qquad
    \frac{\partial L}{\partial b} = \frac{1}{N} \sum_i (p_i - Y_i).

:func:`~softmax_xp.loss_and_grads` returns the loss and both gradients; here we check them
against finite differences of :func:`~softmax_xp.cross_entropy`.
"""

import matplotlib.pyplot as plt
import numpy as np

from softmax_xp import cross_entropy, loss_and_grads, one_hot, softmax

rng = np.random.default_rng(0)
N, d, K, reg = 8, 5, 3, 0.1
X = rng.normal(size=(N, d))
y = rng.integers(0, K, size=N)
W = rng.normal(scale=0.5, size=(d, K))
b = rng.normal(scale=0.5, size=(1, K))

loss, dW, db = loss_and_grads(X, y, W, b, reg=reg)
print("loss:", float(loss))
print(
    "same as cross_entropy(X W + b, y, W=W, reg=reg):",
    float(cross_entropy(X @ W + b, y, W=W, reg=reg)),
)

# %%
# The gradient with respect to the logits is ``(p - y) / N``:

P = softmax(X @ W + b)
print(((P - one_hot(y, K)) / N).round(3)[:3])

# %%
# Finite differences
# ------------------
#
# For every weight, nudge it by :math:`\pm h` and take the central difference
# :math:`(L(W + h E) - L(W - h E)) / 2h`, which is accurate to :math:`O(h^2)`.


def loss_at(W, b):
    return float(cross_entropy(X @ W + b, y, W=W, reg=reg))


h = 1e-5
dW_numeric = np.zeros_like(W)
for index in np.ndindex(W.shape):
    E = np.zeros_like(W)
    E[index] = h
    dW_numeric[index] = (loss_at(W + E, b) - loss_at(W - E, b)) / (2 * h)
db_numeric = np.array(
    [[(loss_at(W, b + h * e) - loss_at(W, b - h * e)) / (2 * h) for e in np.eye(K)]]
)
relative = np.abs(dW - dW_numeric).max() / np.abs(dW).max()
print(f"dW: largest relative difference {relative:.1e}")
print(f"db: largest difference {np.abs(db - db_numeric).max():.1e}")

fig, ax = plt.subplots(figsize=(4.5, 4), layout="constrained")
ax.scatter(dW_numeric.ravel(), dW.ravel(), label="dW")
ax.scatter(db_numeric.ravel(), db.ravel(), marker="s", label="db")
lim = np.abs(np.concatenate([dW.ravel(), db.ravel()])).max() * 1.1
ax.plot([-lim, lim], [-lim, lim], color="0.6", linewidth=1)
ax.set(
    xlabel="finite differences", ylabel="loss_and_grads", title="Analytic against numeric gradient"
)
ax.legend()

# %%
# What L2 does
# ------------
#
# The penalty's gradient :math:`\lambda W` pulls every weight towards zero. At :math:`W = 0` and
# :math:`b = 0` all classes are equally likely and the loss is :math:`\log K`, whatever the data:

print(float(cross_entropy(X @ np.zeros((d, K)), y)), "=", np.log(K))
