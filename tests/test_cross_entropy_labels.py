"""cross_entropy never returns a plausible number for labels it cannot use: a label outside
``[0, K)`` makes the loss NaN (PyTorch raises; a check would need a host read), and labels of
another library than the logits are a TypeError that says so, not "must be integers"."""

from __future__ import annotations

import math

import numpy as np
import pytest

from softmax_xp import cross_entropy


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
