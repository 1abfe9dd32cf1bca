"""A learnable text-like classification problem, generated (no download): TF-IDF rows of hashed
bag-of-words counts, as scipy.sparse CSR.

The topic model: each class ``c`` has its own Zipf-shaped vocabulary, a random permutation of
``vocabulary`` word ids with ``P(word of rank r) ~ 1 / (r + 1) ** zipf``; all classes share one
background vocabulary of the same shape. A document of class ``c`` draws ``length`` (Poisson,
mean ``words``) tokens, each from class ``c``'s vocabulary with probability ``topical`` and from
the background otherwise; each word id is hashed to one of ``features`` columns. Counts become
TF-IDF: ``log(1 + count) * log((1 + n) / (1 + df)) + 1``, each row scaled to unit L2 norm (as
scikit-learn's ``TfidfTransformer(sublinear_tf=True)``). Default sizes give about 150
non-zeros per row over 2**18 columns and 20 classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TextProblem", "text_problem"]


@dataclass
class TextProblem:
    """Training and test rows (CSR float64, unit rows) and their int64 labels."""

    X: object
    y: np.ndarray
    X_test: object
    y_test: np.ndarray


def _zipf(size: int, zipf: float) -> np.ndarray:
    p = 1.0 / (np.arange(size) + 1.0) ** zipf
    return np.cumsum(p / p.sum())


def _counts(
    rng: np.random.Generator,
    labels: np.ndarray,
    vocab: np.ndarray,
    cdf: np.ndarray,
    words: int,
    topical: float,
    features: int,
) -> object:
    """Hashed word counts of one document per label, as CSR (int)."""
    from scipy import sparse

    n, k = labels.shape[0], vocab.shape[0] - 1
    lengths = np.maximum(rng.poisson(words, size=n), 1)
    rows = np.repeat(np.arange(n), lengths)
    ranks = np.minimum(np.searchsorted(cdf, rng.random(rows.shape[0])), cdf.shape[0] - 1)
    topic = np.where(rng.random(rows.shape[0]) < topical, labels[rows], k)  # k: background
    word = vocab[topic, ranks]
    columns = (word * 2654435761) % features  # the hashing trick (Knuth's multiplier)
    ones = np.ones(rows.shape[0], dtype=np.float64)
    counts = sparse.csr_matrix((ones, (rows, columns)), shape=(n, features))
    counts.sum_duplicates()
    return counts


def text_problem(
    n: int = 2000,
    n_test: int = 1000,
    *,
    features: int = 2**18,
    classes: int = 20,
    words: int = 250,
    vocabulary: int = 50_000,
    zipf: float = 1.1,
    topical: float = 0.02,
    seed: int = 0,
    dtype: str = "float64",
) -> TextProblem:
    """``n`` training and ``n_test`` test documents of the topic model above (see the module
    docstring); the IDF weights come from the training rows."""
    rng = np.random.default_rng(seed)
    vocab = np.stack([rng.permutation(vocabulary) for _ in range(classes + 1)])
    cdf = _zipf(vocabulary, zipf)
    y = rng.integers(0, classes, size=n + n_test, dtype=np.int64)
    counts = _counts(rng, y, vocab, cdf, words, topical, features)
    train = counts[:n]
    df = np.bincount(train.indices, minlength=features)
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    counts.data = np.log1p(counts.data) * idf[counts.indices]
    norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
    counts = counts.multiply(1.0 / np.maximum(norms, 1e-12)[:, None]).tocsr().astype(dtype)
    return TextProblem(counts[:n], y[:n], counts[n:], y[n:])
