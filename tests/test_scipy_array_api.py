"""scipy.special in its array-API mode (SCIPY_ARRAY_API=1, read when scipy is first imported, so
in a child process) takes PyTorch and array-api-strict arrays: ours give the same values, dtypes
(float32 stays float32) and shapes on them, weights included; and values near the largest float
agree with scipy on every backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.special

from softmax_xp import log_softmax, logsumexp, softmax

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import numpy as np, scipy.special as sp
import array_api_strict, torch
from softmax_xp import log_softmax, logsumexp, softmax

rng = np.random.default_rng(0)
z = rng.normal(scale=5, size=(3, 4, 5))
w = rng.normal(size=(3, 4, 5)) + 0.5
for make, names in [
    (lambda a, d: torch.asarray(a, dtype=getattr(torch, d)), ("float32", "float64")),
    (lambda a, d: array_api_strict.asarray(a, dtype=getattr(array_api_strict, d)),
     ("float32", "float64")),
]:
    for dtype in names:
        x, b = make(z, dtype), make(w, dtype)
        for axis in (None, 0, -1, (0, 2)):
            pairs = [
                (softmax(x, axis=axis), sp.softmax(x, axis=axis)),
                (log_softmax(x, axis=axis), sp.log_softmax(x, axis=axis)),
                (logsumexp(x, axis=axis, keepdims=True), sp.logsumexp(x, axis=axis, keepdims=True)),
                (logsumexp(x, axis=axis, b=b, return_sign=True)[0],
                 sp.logsumexp(x, axis=axis, b=b, return_sign=True)[0]),
                (logsumexp(x, axis=axis, b=b, return_sign=True)[1],
                 sp.logsumexp(x, axis=axis, b=b, return_sign=True)[1]),
            ]
            for ours, theirs in pairs:
                assert type(ours) is type(theirs), (type(ours), type(theirs))
                assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
                assert tuple(ours.shape) == tuple(theirs.shape)
                o, t = (np.asarray(a.tolist() if hasattr(a, "tolist") else a) for a in (ours, theirs))
                rtol = 2e-5 if dtype == "float32" else 1e-11
                np.testing.assert_allclose(o, t, rtol=rtol, atol=rtol * np.abs(t).max())
print("ok")
"""


def test_scipy_array_api_mode_on_torch_and_strict():
    pytest.importorskip("torch")
    pytest.importorskip("array_api_strict")
    env = {**os.environ, "SCIPY_ARRAY_API": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # scipy's own
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_values_near_the_largest_float(arrays, dtype):
    big = float(np.finfo(dtype).max)
    for row in ([big, big], [big, 0.0], [big, big / 2], [-big, -big], [big, -big]):
        z = np.asarray(row, dtype)
        x = arrays(z, dtype)
        for ours, theirs in (
            (softmax, scipy.special.softmax),
            (log_softmax, scipy.special.log_softmax),
            (logsumexp, scipy.special.logsumexp),
        ):
            out = ours(x, axis=None)
            assert out.dtype == x.dtype
            np.testing.assert_allclose(arrays.host(out), theirs(z), rtol=1e-6, atol=0)
