r"""
Softmax, its Jacobian, and the sigmoid
======================================

A linear classifier gives each of the :math:`K` classes a score, its *logit*
:math:`z_k = x^\top w_k + b_k`. Softmax turns the vector of logits into probabilities:

.. math::

    \operatorname{softmax}(z)_k = \frac{e^{z_k}}{\sum_{j=1}^{K} e^{z_j}}.

Every output is positive and they sum to one. Adding the same number to every logit changes
nothing, which is what makes the computation safe: the library subtracts the largest logit
before exponentiating, so ``exp`` never overflows.
"""

import matplotlib.pyplot as plt
import numpy as np

from softmax_xp import sigmoid, softmax, softmax_jacobian
from softmax_xp.plots import plot_sigmoid, plot_softmax_example

z = np.array([0.25, 1.23, -0.8])
p = softmax(z)
print("softmax(z)      =", p.round(4), " sum =", p.sum())
print("softmax(z + 100) =", softmax(z + 100).round(4))
print("softmax(1000 z) =", softmax(1000 * z))  # no overflow, no NaN

# %%
# The probabilities of the chapter's example, as bars:

fig = plot_softmax_example(z)

# %%
# The Jacobian
# ------------
#
# How does probability :math:`p_i` move when logit :math:`z_j` moves? Differentiating the
# quotient gives
#
# .. math::
#
#     \frac{\partial p_i}{\partial z_j} = p_i (\delta_{ij} - p_j),
#     \qquad J = \operatorname{diag}(p) - p p^\top.
#
# :func:`~softmax_xp.softmax_jacobian` returns this matrix. Raising one logit raises its own
# probability (positive diagonal) and lowers all the others (negative off-diagonal entries), and
# each row sums to zero because the probabilities always sum to one. We check it against central
# finite differences.

J = softmax_jacobian(z)
h = 1e-6
J_numeric = np.stack([(softmax(z + h * e) - softmax(z - h * e)) / (2 * h) for e in np.eye(3)]).T
print(J.round(4))
print("largest difference to finite differences:", np.abs(J - J_numeric).max())
print("row sums:", J.sum(axis=1).round(12))

fig, ax = plt.subplots(figsize=(4.2, 3.6), layout="constrained")
image = ax.imshow(J, cmap="RdBu_r", vmin=-0.25, vmax=0.25)
for (i, j), value in np.ndenumerate(J):
    ax.text(j, i, f"{value:.3f}", ha="center", va="center")
ax.set(xticks=range(3), yticks=range(3), xlabel="logit $z_j$", ylabel="probability $p_i$")
ax.set_title("Jacobian of softmax at z")
fig.colorbar(image, ax=ax)

# %%
# Two classes: softmax is the sigmoid
# -----------------------------------
#
# With :math:`K = 2`, divide numerator and denominator by :math:`e^{z_2}`:
#
# .. math::
#
#     \operatorname{softmax}(z)_1 = \frac{e^{z_1}}{e^{z_1} + e^{z_2}}
#     = \frac{1}{1 + e^{-(z_1 - z_2)}} = \sigma(z_1 - z_2).
#
# So binary logistic regression is the two-class softmax classifier whose weight vector is the
# difference :math:`w_1 - w_2`: only the difference of the logits matters.

z1 = np.linspace(-6, 6, 13)
pair = np.stack([z1, np.full_like(z1, 0.5)], axis=1)  # logits (z1, 0.5)
print(np.abs(softmax(pair)[:, 0] - sigmoid(z1 - 0.5)).max())

fig = plot_sigmoid()
