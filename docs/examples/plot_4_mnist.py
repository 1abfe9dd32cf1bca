r"""
The MNIST experiment
====================

The chapter trains on the first 50,000 of MNIST's 60,000 training images, keeps the last
10,000 to validate after every epoch, and reports on the 10,000 test images: the test accuracy
(0.9227 in the chapter), precision, recall and F1 per digit, the confusion matrix, the learned
weights drawn as images, and some digits it gets wrong.

The chapter's recipe is 100 epochs of plain SGD. To keep this page to a few seconds we use
:data:`softmax_xp.presets.FAST` instead: heavy-ball momentum with a step size that shrinks by
0.6 after each epoch, 10 epochs of batch 512, which reaches the same accuracy.
``softmax-xp train`` runs the chapter's own recipe (``--fast`` this one) and writes these
figures into its output folder.
"""

from softmax_xp import SoftmaxXP, classification_report, confusion_matrix, load_mnist
from softmax_xp.datasets import split_validation
from softmax_xp.plots import (
    plot_confusion_matrix,
    plot_misclassified,
    plot_training_curves,
    plot_weight_templates,
)
from softmax_xp.presets import FAST, model_args, train_args

(X_full, y_full), (X_test, y_test) = load_mnist()
(X_train, y_train), (X_val, y_val) = split_validation(X_full, y_full)  # 50,000 and 10,000
print(FAST)

model = SoftmaxXP(784, 10, **model_args(FAST), backend="numpy", seed=0)
history = model.train(X_train, y_train, X_val, y_val, **train_args(FAST))
print(f"trained {len(history)} epochs in {sum(history.epoch_time):.1f} s")
fig = plot_training_curves(history)

# %%
# The report
# ----------

y_pred = model.predict(X_test)
print(f"test accuracy: {model.score(X_test, y_test):.4f} (the chapter reports 0.9227)\n")
print(classification_report(y_test, y_pred, num_classes=10))

# %%
# The confusion matrix
# --------------------
#
# Row :math:`i`, column :math:`j` counts the test digits of class :math:`i` predicted as
# :math:`j`. The colours are logarithmic, so that the rare confusions (a 4 taken for a 9, a 5
# for a 3) stand out beside the diagonal.

cm = confusion_matrix(y_test, y_pred, num_classes=10)
fig = plot_confusion_matrix(cm)

# %%
# Weight templates
# ----------------
#
# Column :math:`k` of :math:`W` has one weight per pixel, so it can be drawn as a 28 x 28
# image: the logit of digit :math:`k` is the dot product of the image with this template. Red
# pixels are evidence for the digit, blue pixels against it; each template looks like a blurred
# average of its digit with the strokes of the competing digits subtracted.

fig = plot_weight_templates(model)

# %%
# Misclassified digits
# --------------------
#
# A linear model draws straight boundaries between classes; the digits it misses are often
# ones a person would hesitate over too.

fig = plot_misclassified(X_test, y_test, y_pred, max_images=25)
