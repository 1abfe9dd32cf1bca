"""Full-batch L-BFGS on any array-API backend, driven by scipy.optimize on the host.

The objective (loss and gradients) is evaluated where the parameters live, by a callable the
caller supplies: the in-memory model passes :func:`softmax_xp.functional.loss_and_grads` on the
whole training set, a Dask model passes a reduction over its blocks. Each evaluation costs one
device-to-host transfer (the loss and the flat gradient, stacked) and one host-to-device transfer
(the trial parameters); the L-BFGS two-loop recursion and line search run in float64 NumPy on the
host, where they are a few vector operations of length ``d * K + K``.

An L1 term ``l1 * ||W||_1`` (the lasso or the elastic net's L1 part) is not smooth; it is handled
exactly by splitting ``W = U - V`` with bounds ``U, V >= 0``, on which the term is linear,
``l1 * sum(U + V)``: L-BFGS-B minimises over ``(U, V, b)`` (``2 d K + K`` numbers) with the
objective's ``(loss, dW, db)`` giving ``dU = dW + l1`` and ``dV = l1 - dW``. At the optimum at
most one of ``U_ij, V_ij`` is positive, and a weight whose two halves both sit on their bound is
exactly zero.

scipy is an optional extra (``pip install "softmax-xp[lbfgs]"``), imported inside
:func:`minimize_lbfgs`. This module imports neither numpy nor anything of ours (the solvers'
rule): the host vectors it handles are the NumPy arrays scipy passes in and those the caller's
``to_host`` returns (:func:`softmax_xp._backend.to_numpy` in the model).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

from array_api_compat import array_namespace
from array_api_compat import device as device_of

Array = Any
Objective = Callable[[Array, Array], tuple[Array, Array, Array]]

__all__ = ["LbfgsResult", "minimize_lbfgs", "scipy_missing_message"]

DEFAULT_TOL = 1e-4  # as scikit-learn's LogisticRegression: max |projected gradient| <= tol
# scipy's ftol, as scikit-learn's LogisticRegression sets it whatever the data's dtype: float32
# data gets float64's rule, or L-BFGS stops ~2 % from the optimum on a float32 loss's noise.
FTOL = 64 * sys.float_info.epsilon


class LbfgsResult(NamedTuple):
    """What :func:`minimize_lbfgs` returns; unpacks as ``W, b, n_iter, losses, converged, message``."""

    W: Array  # (d, K), on the device and in the dtype of W0
    b: Array  # (1, K)
    n_iter: int  # iterations done (0 when max_iter is 0)
    losses: list[float]  # the objective after each iteration
    converged: bool  # the stopping rule was met (False: max_iter reached or the line search failed)
    message: str  # scipy's reason for stopping


def scipy_missing_message() -> str:
    """The error text for a machine without scipy."""
    return (
        "solver='lbfgs' needs scipy, which is not installed. Install it with "
        'pip install "softmax-xp[lbfgs]" (or pip install scipy), or use solver="sgd".'
    )


def _import_scipy_optimize() -> Any:
    try:
        from scipy import optimize
    except ImportError as exc:
        raise ImportError(scipy_missing_message()) from exc
    return optimize


def minimize_lbfgs(
    objective: Objective,
    W0: Array,
    b0: Array,
    *,
    max_iter: int,
    to_host: Callable[[Array], Any],
    tol: float = DEFAULT_TOL,
    callback: Callable[[int, Array, Array, float], None] | None = None,
    l1: float = 0.0,
    fit_intercept: bool = True,
) -> LbfgsResult:
    """Minimise ``objective(W, b)`` over the weights ``W`` (d x K) and bias ``b`` (1 x K) with
    scipy's L-BFGS-B, starting from ``(W0, b0)``; or over ``W`` alone, ``b`` fixed at ``b0``.

    Parameters
    ----------
    objective
        ``objective(W, b) -> (loss, dW, db)``: the loss as a 0-d array and its gradients shaped
        like ``W`` and ``b``, all on the device of ``W0``. ``W`` and ``b`` are fresh arrays the
        objective may keep but must not write. For the softmax classifier it is
        ``lambda W, b: loss_and_grads(X, y, W, b, reg, sample_weight=w)`` on the full data set
        (or a sum of per-block terms that equals it; the L2 term belongs in the objective).
    W0, b0
        The starting point (not written); their namespace, device and dtype are those of the
        result and of every ``W, b`` passed to ``objective``.
    max_iter
        At most this many L-BFGS iterations (each one or more evaluations); 0 returns the start.
    to_host
        Copies an array of ``W0``'s namespace to a host NumPy array (the model passes
        :func:`softmax_xp._backend.to_numpy`).
    tol
        Stop when ``max_i |gradient_i| <= tol`` (scipy's ``gtol``), or when the objective's
        relative decrease falls below ``64 * eps`` of float64 (``ftol``), for either dtype, as
        scikit-learn's LogisticRegression does.
    callback
        ``callback(iteration, W, b, loss)`` after every iteration with the accepted iterate, on
        the device (e.g. to record a history, write a checkpoint or check a validation set). An
        exception it raises ends the minimisation and propagates.
    l1
        The strength ``>= 0`` of an L1 term ``l1 * ||W||_1`` added to ``objective`` (the bias is
        not penalised); 0, the default, minimises ``objective`` alone. With ``l1 > 0`` the
        minimisation runs on the split ``W = U - V`` described in the module docstring, the
        losses include the L1 term and ``tol`` bounds the projected gradient of ``(U, V, b)``.
    fit_intercept
        False: ``b`` stays ``b0`` (the caller's zeros); the objective's ``db`` is dropped, so
        the host vector holds ``W`` (or ``U, V``) only.

    Returns
    -------
    :class:`LbfgsResult` ``(W, b, n_iter, losses, converged, message)``.

    Raises
    ------
    ImportError
        scipy is not installed (the message names the extra to install).
    """
    optimize = _import_scipy_optimize()
    xp = array_namespace(W0, b0)
    dtype, device = W0.dtype, device_of(W0)
    d, k = W0.shape
    if max_iter <= 0:
        return LbfgsResult(xp.asarray(W0, copy=True), xp.asarray(b0, copy=True), 0, [], False, "")

    def flat_on_host(*parts: Array) -> Any:
        """The parts, flattened and concatenated on the device, as one float64 host vector."""
        joined = xp.concat([xp.reshape(part, (-1,)) for part in parts])
        return to_host(joined).astype("float64", copy=False)  # one device-to-host copy

    m = d * k
    bounds = None
    fixed_b = None if fit_intercept else xp.asarray(b0, copy=True)

    def trained(W: Array, b: Array) -> tuple[Array, ...]:
        """The parts of ``(W, b)`` (or of their gradients) that L-BFGS moves."""
        return (W, b) if fit_intercept else (W,)

    def unflatten(x: Any) -> tuple[Array, Array]:
        """``(W, b)`` on the device of the host vector ``(W, b)``, or ``(U, V, b)`` with ``l1``
        (without ``b`` when it is fixed)."""
        if l1:  # W = U - V, formed on the host in float64
            joined = x[m:].copy()
            joined[:m] = x[:m] - x[m : 2 * m]
            x = joined
        on_device = xp.asarray(x, dtype=dtype, device=device)  # one host-to-device copy
        W = xp.reshape(on_device[:m], (m // k, k))
        return W, xp.reshape(on_device[m:], (1, k)) if fixed_b is None else fixed_b

    last: dict[str, Any] = {}  # the latest evaluation, which is the accepted iterate

    def fun(x: Any) -> tuple[float, Any]:
        W, b = unflatten(x)
        loss, dW, db = objective(W, b)
        host = flat_on_host(loss, *trained(dW, db))
        value, grad = float(host[0]), host[1:]
        if l1:  # d/dU = dW + l1, d/dV = l1 - dW; the L1 term is linear in (U, V)
            value += l1 * float(x[: 2 * m].sum())
            split = x.copy()
            split[:m] = grad[:m] + l1
            split[m : 2 * m] = l1 - grad[:m]
            split[2 * m :] = grad[m:]
            grad = split
        last.update(x=x.copy(), W=W, b=b, loss=value)
        return value, grad

    losses: list[float] = []

    def on_iteration(intermediate_result: Any) -> None:
        x = intermediate_result.x
        if "x" in last and bool((last["x"] == x).all()):
            W, b, loss = last["W"], last["b"], last["loss"]
        else:  # scipy accepted a point it did not evaluate last: move it to the device
            W, b = unflatten(x)
            loss = float(intermediate_result.fun)
        losses.append(loss)
        if callback is not None:
            callback(len(losses), W, b, loss)

    x0 = flat_on_host(*trained(W0, b0))
    if l1:  # U0 = max(W0, 0), V0 = max(-W0, 0)
        w0 = x0[:m]
        # written below: a host view may be read-only
        x0 = flat_on_host(W0, *trained(W0, b0)).copy()
        x0[:m], x0[m : 2 * m] = w0.clip(min=0.0), (-w0).clip(min=0.0)
        lower, upper = x0 * 0.0, x0 * 0.0 + math.inf
        lower[2 * m :] = -math.inf
        bounds = optimize.Bounds(lower, upper)
    result = optimize.minimize(
        fun,
        x0,
        method="L-BFGS-B",
        jac=True,
        bounds=bounds,
        callback=on_iteration,
        options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": FTOL},
    )
    W, b = unflatten(result.x)
    message = str(result.message)
    if not math.isfinite(float(result.fun)):
        message = f"the objective is not finite ({result.fun}); {message}"
    return LbfgsResult(W, b, len(losses), losses, bool(result.success), message)
