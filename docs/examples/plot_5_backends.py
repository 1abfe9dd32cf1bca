r"""
The same code on another backend
================================

Everything above was written against the Python array API standard, so the same functions and
the same model run on any array library that implements it. Pass ``backend=`` to
:class:`~softmax_xp.SoftmaxXP`; the functions follow the arrays they are given.

This page picks the first backend installed here besides NumPy: PyTorch, CuPy (on a machine
with an NVIDIA GPU), or array-api-strict, the standard's strict reference implementation, which
refuses anything the standard does not define. It then trains the same seed on the same data on
NumPy and on that backend and compares the weights.
"""

import numpy as np

from softmax_xp import SoftmaxXP, backend_info, load_mnist, softmax, to_numpy

info = backend_info()
for name in ("numpy", "torch", "cupy", "array_api_strict"):
    entry = info[name]
    print(f"{name:17s}", "available" if entry["available"] else f"not here: {entry['reason']}")
print("backend='auto' picks:", info["auto"]["resolves_to"])

other = next(
    (name for name in ("torch", "cupy", "array_api_strict") if info[name]["available"]), "numpy"
)
print("this page uses:", other)

# %%
# The functions follow their input
# --------------------------------

model = SoftmaxXP(784, 10, backend=other, seed=0)
xp = model.xp  # the backend's array namespace
z = xp.asarray([[0.25, 1.23, -0.8]], dtype=xp.float32, device=model.device)
p = softmax(z)
print(type(p).__module__, p.dtype, to_numpy(p).round(4))

# %%
# The model gives the same numbers
# --------------------------------
#
# Initial weights and every epoch's shuffle come from one host random generator, so one seed
# gives one trajectory on every backend; only the floating-point rounding of the libraries
# differs.

(X_full, y_full), (X_test, y_test) = load_mnist()
X, y = X_full[:6000], y_full[:6000]
results = {}
for name in ("numpy", other):
    model = SoftmaxXP(784, 10, backend=name, dtype="float64", seed=0)
    model.train(X, y, epochs=2, batch_size=256)
    results[name] = (to_numpy(model.W), model.score(X_test, y_test))
    print(f"{name:17s} test accuracy {results[name][1]:.4f}, W lives in {type(model.W).__module__}")

W_numpy, W_other = results["numpy"][0], results[other][0]
print("largest relative difference in W:", np.abs(W_numpy - W_other).max() / np.abs(W_numpy).max())
