"""scipy.special's own test cases for softmax, log_softmax and logsumexp, run on every backend.

The cases (large, tiny, infinite and mixed-magnitude inputs, several axes at once, keepdims,
0-d and empty input, integer and array-like input) follow scipy's test_logsumexp.py; the
expected values come from scipy on the host, or from the exact formula where scipy has a bug
(an empty reduction over a tuple of axes). Our default axis is -1 (the chapter's rows), scipy's
is None, so every call here names its axis. ``b=`` and ``return_sign=``: test_logsumexp_weights.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special

from softmax_xp import log_softmax, logsumexp, softmax

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy's own inf - inf


def _close(actual, expected, **tol) -> None:
    actual = np.asarray(actual)
    assert actual.shape == np.shape(expected)
    np.testing.assert_allclose(actual, expected, **{"rtol": 1e-13, **tol})


def test_logsumexp_large_and_special_values(arrays):
    a = np.arange(200.0)
    _close(arrays.host(logsumexp(arrays(a), axis=None)), np.log(np.sum(np.exp(a))))
    _close(arrays.host(logsumexp(arrays([1000.0, 1000.0]))), 1000.0 + math.log(2.0))
    _close(arrays.host(logsumexp(arrays(np.full(1000, 10000.0)))), 10000.0 + math.log(1000))
    for value, expected in [(np.inf, np.inf), (-np.inf, -np.inf), (np.nan, np.nan)]:
        out = arrays.host(logsumexp(arrays([value])))
        np.testing.assert_array_equal(out, expected)
    assert arrays.host(logsumexp(arrays([-np.inf, -np.inf]))) == -np.inf
    # gh-18295: the smaller term is not lost next to the maximum.
    _close(arrays.host(logsumexp(arrays([0.0, -40.0]))), np.logaddexp(0.0, -40.0))


def test_logsumexp_tiny_terms_several_axes(arrays):
    logx = np.log(np.full((2, 1000), 1e-40))
    x = np.exp(logx)
    z = arrays(logx)
    _close(np.exp(arrays.host(logsumexp(z, axis=None))), np.sum(x))
    _close(np.exp(arrays.host(logsumexp(z, axis=0))), np.sum(x, axis=0))
    _close(np.exp(arrays.host(logsumexp(z, axis=1))), np.sum(x, axis=1))


def test_logsumexp_mixed_magnitudes_keepdims_and_axis_tuples(arrays):
    a = np.array([[1e10, 1e-10], [-1e10, -np.inf]])
    _close(arrays.host(logsumexp(arrays(a), axis=-1)), [1e10, -1e10])
    _close(arrays.host(logsumexp(arrays(a), axis=-1, keepdims=True)), [[1e10], [-1e10]])
    _close(arrays.host(logsumexp(arrays(a), axis=(-1, -2))), 1e10)
    _close(arrays.host(logsumexp(arrays(a), axis=(0, 1), keepdims=True)), [[1e10]])


@pytest.mark.parametrize("axis", [(1, 2), (0, 2), (-1, -3), (0, 1, 2), (2,), 1, np.int64(1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_axis_tuples_match_scipy(arrays, axis, keepdims):
    z = np.random.default_rng(0).normal(size=(2, 3, 4)) * 10
    z[0, 1, 2] = -np.inf
    x = arrays(z)
    lse = arrays.host(logsumexp(x, axis=axis, keepdims=keepdims))
    _close(lse, scipy.special.logsumexp(z, axis=axis, keepdims=keepdims), rtol=1e-12)
    _close(arrays.host(softmax(x, axis=axis)), scipy.special.softmax(z, axis=axis), rtol=1e-12)
    # Ours uses log1p where scipy uses log: they differ in the last digits near 0.
    expected = scipy.special.log_softmax(z, axis=axis)
    _close(arrays.host(log_softmax(x, axis=axis)), expected, rtol=1e-10, atol=1e-15)


def test_softmax_fixtures_and_multi_axes(arrays):
    _close(arrays.host(softmax(arrays([1000.0, 0.0, 0.0, 0.0]))), [1.0, 0.0, 0.0, 0.0])
    _close(arrays.host(softmax(arrays([1.0, 1.0]))), [0.5, 0.5])
    z = np.array([[1000.0, 0.0], [1000.0, 0.0]])
    _close(arrays.host(softmax(arrays(z), axis=0)), [[0.5, 0.5], [0.5, 0.5]])
    _close(arrays.host(softmax(arrays(z), axis=1)), [[1.0, 0.0], [1.0, 0.0]])
    z = np.array([[-25.0, 0.0, 25.0, 50.0], [1.0, 325.0, 749.0, 750.0]])
    expected = scipy.special.softmax(z, axis=1)
    _close(arrays.host(softmax(arrays(z), axis=1)), expected)
    _close(arrays.host(softmax(arrays(z.T), axis=0)), expected.T)
    cube = arrays(z.reshape(2, 2, 2))
    _close(arrays.host(softmax(cube, axis=(1, 2))), expected.reshape(2, 2, 2))
    x = np.arange(4.0)
    # Translation: adding a constant changes nothing.
    _close(arrays.host(softmax(arrays(x + 100), axis=None)), scipy.special.softmax(x))


def test_log_softmax_fixtures_and_multi_axes(arrays):
    _close(arrays.host(log_softmax(arrays([1000.0, 1.0]))), [0.0, -999.0])
    x = np.arange(8.0).reshape(2, 4)
    expected = scipy.special.log_softmax(x, axis=1)
    _close(arrays.host(log_softmax(arrays(x + 100), axis=1)), expected)
    _close(arrays.host(log_softmax(arrays(x.T), axis=0)), expected.T)
    _close(
        arrays.host(log_softmax(arrays(x.reshape(2, 2, 2)), axis=(1, 2))), expected.reshape(2, 2, 2)
    )
    z = np.array([[1000.0, 1.0], [1000.0, 1.0]])
    _close(arrays.host(log_softmax(arrays(z), axis=0)), np.log(0.5) * np.ones((2, 2)))


def test_integer_input_is_promoted(arrays):
    # To the namespace's default floating dtype: float32 on PyTorch, as scipy says.
    for f, expected in [
        (softmax, [1.0, 0.0, 0.0, 0.0]),
        (log_softmax, [0.0, -1000.0, -1000.0, -1000.0]),
    ]:
        out = f(arrays([1000, 0, 0, 0], "int64"))
        assert arrays.xp.isdtype(out.dtype, "real floating")
        _close(arrays.host(out), expected)
    out = logsumexp(arrays([1000, 1000], "int64"))
    rtol = 1e-13 if out.dtype == arrays.xp.float64 else 1e-6
    _close(arrays.host(out), 1000.0 + math.log(2.0), rtol=rtol)


def test_empty_reductions_over_axis_tuples(arrays):
    z = np.zeros((2, 0, 3))
    for axis in [(0, 1), (0, 2), (1,), (1, 2)]:
        out = arrays.host(logsumexp(arrays(z), axis=axis))
        np.testing.assert_array_equal(out, np.log(np.sum(np.exp(z), axis=axis)))
    assert tuple(softmax(arrays(z), axis=(0, 1)).shape) == (2, 0, 3)


def test_scalars_and_array_likes():
    _close(softmax(1000), 1.0)
    _close(log_softmax(1.0), 0.0)
    _close(softmax([1000, 0, 0, 0]), [1.0, 0.0, 0.0, 0.0])
    _close(log_softmax([1000, 1]), [0.0, -999.0])
    _close(logsumexp([1000, 1000]), 1000.0 + math.log(2.0))
    assert logsumexp(1) == logsumexp(np.asarray([1.0]))


@pytest.mark.parametrize(
    "axis, error",
    [
        ((0, 0), ValueError),
        ((0, -2), ValueError),
        ((0, 2), ValueError),
        (1.0, TypeError),
        ((0, "1"), TypeError),
    ],
)
def test_bad_axes_are_clear_errors(arrays, axis, error):
    with pytest.raises(error, match="axis"):
        logsumexp(arrays(np.zeros((2, 3))), axis=axis)


def test_zero_dimensional_results_follow_scipy(arrays):
    """A 0-d result is a NumPy scalar on NumPy, as scipy.special returns it (scipy's tests check
    the type), and a 0-d array of the input's library everywhere else."""
    host = np.array([0.5, -1.0, 2.0])
    x, x0 = arrays(host), arrays(1.5)
    cases = [
        (logsumexp(x, axis=None), scipy.special.logsumexp(host)),
        (logsumexp(x, axis=0, b=arrays([1.0, -2.0, 1.0])), None),
        (logsumexp(x, axis=0, return_sign=True)[1], None),
        (softmax(x0), scipy.special.softmax(np.asarray(1.5))),
        (log_softmax(x0), scipy.special.log_softmax(np.asarray(1.5))),
    ]
    numpy = arrays.backend.name == "numpy"
    for ours, theirs in cases:
        assert isinstance(ours, np.generic) is numpy
        assert ours.ndim == 0
        if theirs is not None:
            assert not numpy or type(ours) is type(theirs)
            _close(arrays.host(ours), theirs)
    assert logsumexp(x, axis=None, keepdims=True).shape == (1,)
