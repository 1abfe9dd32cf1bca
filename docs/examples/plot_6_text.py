r"""
Text classification on sparse input
===================================

After images, the most common use of softmax regression is text: each document becomes a row of
TF-IDF weights over a vocabulary of hundreds of thousands of hashed words, of which a document
uses a few hundred. Such a matrix only fits in memory sparse. :class:`~softmax_xp.SoftmaxXP` and
:class:`~softmax_xp.SoftmaxClassifier` take it as it is (scipy.sparse on NumPy, torch sparse
tensors on PyTorch, cupyx.scipy.sparse on CuPy, and Dask arrays of scipy.sparse chunks) and never
densify it: SGD gathers each mini-batch's rows and computes ``X_b @ W`` and ``X_b.T @ dz`` as
sparse-dense products, its steps touching only the rows of ``W`` of the batch's words; L-BFGS
does the same two products over the whole matrix.

This page makes a small corpus of three topics, hashes it into ``2**18`` columns, and trains
both solvers.
"""

import numpy as np
import scipy.sparse as sp

from softmax_xp import SoftmaxXP

rng = np.random.default_rng(0)
topics = {
    "space": [
        "orbit",
        "rocket",
        "launch",
        "planet",
        "moon",
        "star",
        "telescope",
        "nasa",
        "crew",
        "satellite",
    ],
    "cooking": [
        "recipe",
        "oven",
        "flour",
        "butter",
        "sugar",
        "bake",
        "salt",
        "pan",
        "garlic",
        "onion",
    ],
    "football": [
        "goal",
        "match",
        "team",
        "league",
        "striker",
        "coach",
        "penalty",
        "season",
        "keeper",
        "referee",
    ],
}
common = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "it",
    "that",
    "for",
    "on",
    "with",
    "as",
    "was",
    "at",
    "by",
    "this",
]


def document(topic: str) -> str:
    """Twenty words: some of the topic's, the rest common ones."""
    words = rng.choice(topics[topic] + common * 2, size=20)
    return " ".join(words)


names = list(topics)
labels = rng.integers(0, 3, size=1200)
texts = [document(names[k]) for k in labels]
print(texts[0])

# %%
# Hashed words, TF-IDF weights
# ----------------------------
#
# Each word goes to column ``hash(word) mod 2**18`` (no vocabulary to keep), counts become
# ``log(1 + count) * idf``, and each row is scaled to unit length. scikit-learn's
# ``HashingVectorizer`` and ``TfidfTransformer`` do the same for real text.

d = 2**18


def column(word: str) -> int:
    return int.from_bytes(word.encode(), "little") * 2654435761 % d


rows, cols = [], []
for i, text in enumerate(texts):
    for word in text.split():
        rows.append(i)
        cols.append(column(word))
counts = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), d))
counts.sum_duplicates()
df = np.bincount(counts.indices, minlength=d)
idf = np.log((1 + counts.shape[0]) / (1 + df)) + 1
counts.data = np.log1p(counts.data) * idf[counts.indices]
X = sp.csr_matrix(counts.multiply(1 / np.sqrt(counts.multiply(counts).sum(axis=1))))
print(
    f"X: {X.shape[0]} x {X.shape[1]}, {X.nnz / X.shape[0]:.1f} non-zeros per row, "
    f"{X.data.nbytes + X.indices.nbytes + X.indptr.nbytes:,} bytes sparse "
    f"({X.shape[0] * X.shape[1] * 8:,} dense)"
)
X_train, y_train, X_test, y_test = X[:1000], labels[:1000], X[1000:], labels[1000:]

# %%
# Both solvers on the sparse matrix
# ---------------------------------

sgd = SoftmaxXP(d, 3, lr=2.0, momentum=0.9, reg=1e-5, backend="numpy", seed=0)
sgd.train(X_train, y_train, X_test, y_test, epochs=5, batch_size=64)
print("SGD    test accuracy by epoch:", [round(a, 3) for a in sgd.history_.val_accuracy])

lbfgs = SoftmaxXP(d, 3, reg=1e-5, backend="numpy", dtype="float64", seed=0)
lbfgs.train(X_train, y_train, epochs=50, solver="lbfgs")
print(f"L-BFGS test accuracy: {lbfgs.score(X_test, y_test):.3f} after {lbfgs.epoch_} iterations")

# %%
# The words each class weighs most
# --------------------------------
#
# ``W`` has one row per hashed column: the largest weights of each class are its topic's words.

words = sorted({w for ws in topics.values() for w in ws} | set(common))
by_column = {column(w): w for w in words}
for k, name in enumerate(names):
    top = np.argsort(lbfgs.W[:, k])[::-1][:5]
    print(f"{name:9s}", [by_column.get(int(c), "?") for c in top])

# %%
# A sparse matrix and its dense copy give the same model
# ------------------------------------------------------
#
# On a slice small enough to densify, the weights agree to rounding.

small = SoftmaxXP(d, 3, backend="numpy", dtype="float64", seed=0)
dense = SoftmaxXP(d, 3, backend="numpy", dtype="float64", seed=0)
small.train(X_train[:50], y_train[:50], epochs=2, batch_size=16)
dense.train(X_train[:50].toarray(), y_train[:50], epochs=2, batch_size=16)
print("largest relative difference:", np.abs(small.W - dense.W).max() / np.abs(dense.W).max())
