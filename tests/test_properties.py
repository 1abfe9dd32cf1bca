"""Properties of the mathematics that hold for every input, checked by hypothesis on every backend."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays as np_arrays

from softmax_xp import SoftmaxXP, cross_entropy, log_softmax, loss_and_grads, softmax, to_numpy

# The backend fixture is only read, never changed, so sharing it across examples is safe.
SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)
shapes = st.tuples(st.integers(1, 6), st.integers(2, 5))
logits = shapes.flatmap(lambda shape: np_arrays(np.float64, shape, elements=finite))


@st.composite
def logits_and_labels(draw):
    z = draw(logits)
    y = draw(np_arrays(np.int64, z.shape[0], elements=st.integers(0, z.shape[1] - 1)))
    return z, y


@SETTINGS
@given(z=logits)
def test_softmax_rows_are_distributions_in_the_order_of_the_logits(arrays, z):
    p = to_numpy(softmax(arrays(z)))
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-12)
    rows, i, j = np.nonzero(z[:, :, None] < z[:, None, :])  # z[r, i] < z[r, j]
    assert (p[rows, i] <= p[rows, j]).all()


@SETTINGS
@given(z=logits, shift=st.floats(-1e3, 1e3))
def test_softmax_ignores_a_constant_added_to_a_row(arrays, z, shift):
    shifts = shift * np.linspace(-1, 1, z.shape[0])[:, None]
    np.testing.assert_allclose(
        to_numpy(softmax(arrays(z + shifts))), to_numpy(softmax(arrays(z))), rtol=1e-9, atol=1e-12
    )


@SETTINGS
@given(z=logits)
def test_log_softmax_is_never_positive(arrays, z):
    assert (to_numpy(log_softmax(arrays(z))) <= 0).all()


@SETTINGS
@given(data=logits_and_labels(), reg=st.floats(0, 10))
def test_loss_is_never_negative(arrays, data, reg):
    z, y = data
    W = arrays(z[:1].T @ z[:1] / 1e3)
    assert float(cross_entropy(arrays(z), arrays(y, "int64"))) >= 0
    assert float(cross_entropy(arrays(z), arrays(y, "int64"), W=W, reg=reg)) >= 0


@SETTINGS
@given(data=logits_and_labels())
def test_each_row_of_the_logit_gradient_sums_to_zero(arrays, data):
    """With X = I and reg = 0, dW = X^T dL/dz is dL/dz itself."""
    z, y = data
    n, k = z.shape
    X = arrays(np.eye(n))
    W = arrays(z)  # z = X W
    b = arrays(np.zeros((1, k)))
    _, dz, db = loss_and_grads(X, arrays(y, "int64"), W, b, 0.0)
    np.testing.assert_allclose(to_numpy(dz).sum(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(to_numpy(db).sum(), 0, atol=1e-12)


@SETTINGS
@given(
    X=np_arrays(np.float64, st.tuples(st.integers(1, 12), st.just(5)), elements=finite),
    seed=st.integers(0, 2**32 - 1),
)
def test_predictions_do_not_depend_on_row_order(backend, arrays, X, seed):
    model = SoftmaxXP(5, 3, backend=backend.name, device=backend.device, dtype="float64", seed=0)
    order = np.random.default_rng(seed).permutation(len(X))
    np.testing.assert_array_equal(
        to_numpy(model.predict(arrays(X[order]))), to_numpy(model.predict(arrays(X)))[order]
    )
