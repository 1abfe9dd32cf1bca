"""The SGD epoch's product layouts ("row", "class", "class_xw") give the same maths on every
backend, and the layout rule picks one by the backend, its BLAS and the dtype, never a timing."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_xp import SoftmaxXP, to_numpy
from softmax_xp.solvers.sgd import sgd_epoch

LAYOUTS = ("row", "class", "class_xw")


@pytest.mark.parametrize("layout", LAYOUTS[1:])
@pytest.mark.parametrize(
    ("momentum", "l1_ratio", "weighted"), [(0.0, 0.0, False), (0.9, 0.5, True)]
)
@pytest.mark.parametrize(("n", "batch_size"), [(100, 32), (20, 64)])
def test_every_layout_computes_the_row_layouts_epoch(
    arrays, layout, momentum, l1_ratio, weighted, n, batch_size
):
    xp = arrays.xp
    rng = np.random.default_rng(0)
    X, y = arrays(rng.normal(size=(n, 7))), arrays(rng.integers(0, 5, size=n), "int64")
    order = arrays(rng.permutation(n), "int64")
    W, b = arrays(rng.normal(size=(7, 5)) * 0.1), arrays(rng.normal(size=(1, 5)) * 0.1)
    velocity = None if not momentum else (arrays(rng.normal(size=(7, 5))), arrays(np.ones((1, 5))))
    weights = arrays(rng.uniform(0.5, 1.5, n)) if weighted else None
    kwargs = dict(lr=0.3, momentum=momentum, reg=1e-2, batch_size=batch_size, xp=xp,
                  weights=weights, l1_ratio=l1_ratio)  # fmt: skip
    W_host = arrays.host(W).copy()
    want = sgd_epoch(X, y, order, W, b, velocity, layout="row", **kwargs)
    got = sgd_epoch(X, y, order, W, b, velocity, layout=layout, **kwargs)
    assert got[0].shape == W.shape
    for mine, theirs in zip(
        [*got[:2], *(got[2] or ())], [*want[:2], *(want[2] or ())], strict=True
    ):
        np.testing.assert_allclose(arrays.host(mine), arrays.host(theirs), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(arrays.host(got[3]), arrays.host(want[3]), rtol=1e-12)
    np.testing.assert_array_equal(arrays.host(W), W_host)  # the input is never written


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_forced_layout_trains_the_same_model(backend, internals, layout):
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(150, 6)), rng.integers(0, 3, 150)

    def trained(layout=None):
        if layout is not None:
            internals.force_layout(layout)
        model = SoftmaxXP(6, 3, backend=backend.name, device=backend.device, dtype="float64",
                          seed=0, momentum=0.9)  # fmt: skip
        history = model.train(X, y, epochs=3, batch_size=32, verbose=0)
        return to_numpy(model.W), to_numpy(model.b), history.loss

    if backend.name == "jax" and "float64" not in backend.xp.__array_namespace_info__().dtypes():
        pytest.skip("needs float64")
    reference = trained("row")
    for mine, theirs in zip(trained(layout), reference, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-11, atol=1e-13)


def test_sparse_rows_keep_the_row_layout_whatever_is_forced(internals):
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(4)
    X = sparse.random(120, 30, density=0.2, format="csr", random_state=4)
    y = rng.integers(0, 3, 120)
    internals.force_layout("row")
    row = SoftmaxXP(30, 3, backend="numpy", dtype="float64", seed=0).train(X, y, epochs=2).loss
    internals.force_layout("class")
    assert (
        SoftmaxXP(30, 3, backend="numpy", dtype="float64", seed=0).train(X, y, epochs=2).loss == row
    )


def test_the_layout_rule(internals):
    """A layout other than "row" only where it was measured faster: PyTorch with MKL on AMD in
    torch.nn.Linear's class-major layout; NumPy (and array-api-strict) with OpenBLAS on AMD
    class-major, with the X_b @ W-style forward in float32; everything else "row"."""
    internals.set_machine("openblas", "mkl", "AuthenticAMD")
    assert internals.product_layout("numpy", "float64") == "class"
    assert internals.product_layout("numpy", "float32") == "class_xw"
    assert internals.product_layout("array_api_strict", "float32") == "class_xw"
    internals.set_machine("mkl", "mkl", "AuthenticAMD")
    assert internals.product_layout("numpy", "float64") == "row"
    internals.set_machine("openblas", "mkl", "GenuineIntel")
    assert internals.product_layout("numpy", "float64") == "row"
    pytest.importorskip("torch")
    for dtype in ("float32", "float64"):
        assert internals.product_layout("torch", dtype) == "row"
        internals.set_machine("openblas", "mkl", "AuthenticAMD")
        assert internals.product_layout("torch", dtype) == "class"
        internals.set_machine("openblas", "mkl", "GenuineIntel")
