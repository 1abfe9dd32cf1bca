"""cross_entropy never returns a plausible number for labels it cannot use: a label outside
``[0, K)`` makes the loss NaN (PyTorch raises; a check would need a host read), and labels of
another library than the logits are a TypeError that says so, not "must be integers"."""

from __future__ import annotations

import math

import numpy as np
import pytest

from softmax_xp import cross_entropy, loss_and_grads, one_hot


@pytest.mark.parametrize("bad", [3, 7, -1])
def test_label_out_of_range_is_nan(arrays, bad):
    logits = arrays(np.zeros((2, 3)))
    assert math.isnan(float(arrays.host(cross_entropy(logits, arrays([0, bad], "int64")))))
    ok = float(arrays.host(cross_entropy(logits, arrays([0, 2], "int64"))))
    assert ok == pytest.approx(math.log(3))


def test_labels_of_another_library_are_named(arrays):
    if arrays.xp.__name__.endswith("numpy"):
        pytest.skip("NumPy labels are the logits' own library here")
    with pytest.raises(TypeError, match="another library"):
        cross_entropy(arrays(np.zeros((2, 3))), np.array([0, 1]))


@pytest.mark.parametrize(
    ("dtype", "K"), [("uint8", 300), ("int8", 200), ("int8", 128), ("uint8", 3)]
)
def test_narrow_label_dtypes_with_many_classes(arrays, dtype, K):
    """uint8 labels (MNIST's own) with more classes than the dtype holds: class 256 must not
    wrap around to match label 0 (torch gave twice the loss), and K itself must fit for the
    range check (array-api-strict raised OverflowError)."""
    rows = [0, 1, min(K - 1, np.iinfo(dtype).max)]
    y = arrays(rows, dtype)
    loss = float(arrays.host(cross_entropy(arrays(np.zeros((3, K))), y)))
    assert loss == pytest.approx(math.log(K), rel=1e-12)
    encoded = arrays.host(one_hot(y, K))
    np.testing.assert_array_equal(encoded, np.eye(K)[rows])
    X, W, b = arrays(np.zeros((3, 2))), arrays(np.zeros((2, K))), arrays(np.zeros((1, K)))
    value, _, db = loss_and_grads(X, y, W, b)
    assert float(arrays.host(value)) == pytest.approx(math.log(K), rel=1e-12)
    expected = (3 / K - np.eye(K)[rows].sum(0)) / 3
    np.testing.assert_allclose(arrays.host(db)[0], expected, atol=1e-15)


@pytest.mark.parametrize(
    ("num_classes", "error"), [(2.5, TypeError), (True, TypeError), (-1, ValueError)]
)
def test_one_hot_num_classes_is_checked(arrays, num_classes, error):
    with pytest.raises(error, match="num_classes"):
        one_hot(arrays([0, 1], "int64"), num_classes)
