"""One SGD epoch on sparse rows whose steps cost what the batch's non-zeros cost, not ``d x K``.

The epoch is :func:`softmax_xp.solvers.sgd.sgd_epoch`'s, step for step; only the way the
weights are stored differs. A batch's gradient ``G = X_b^T dz`` is non-zero only on the rows
of ``W`` whose features occur in the batch (its active columns ``A``), but the L2 decay and the
momentum touch every row. Both are linear, and the same for every row, so the weights and the
velocity are kept as two arrays ``P``, ``Q`` and a 2 x 2 host matrix ``M``::

    [W; V] = M [P; Q]          (row by row; V the velocity; plain SGD: W = m P, no Q)

A step without gradient is ``V <- mu V - lr reg W``, ``W <- W + V``, that is ``M <- S M`` with
``S = [[1 - lr reg, mu], [-lr reg, mu]]`` (plain SGD: ``m <- (1 - lr reg) m``); the gradient
then subtracts ``G`` from ``W`` and from ``V`` on the rows ``A`` only:
``[P_A; Q_A] += M^-1 [-G_A; -G_A]``. The logits use ``W_A = m00 P_A + m01 Q_A``; the batch's
``||W||^2`` comes from ``||P||^2``, ``<P, Q>`` and ``||Q||^2``, updated on the rows ``A``.
Every ``RENORM`` steps, and at the end, ``W`` and ``V`` are formed (``M <- I``), so ``M`` stays
well conditioned (``det S = mu``). The weights equal the dense loop's to rounding (float64:
about 1e-14 relative).

The sparse library is not imported here: the caller passes ``ops`` (see :class:`SparseOps`).
"""

from __future__ import annotations

from typing import Any, Protocol

from array_api_compat import device as device_of

from ._losses import batch_means

Array = Any

__all__ = ["RENORM", "SparseOps", "sparse_sgd_epoch"]

RENORM = 64  # steps between two formings of W and V (det M = mu ** 64 >= 0.037 for mu >= 0.95)
FORM_ROWS = 8192  # rows formed at a time: the temporaries stay small beside W


class SparseOps(Protocol):
    """What the epoch needs of a sparse library (:mod:`softmax_xp._sparse` gives it)."""

    def rows(self, X: Any, index: Array) -> Any:
        """The rows ``index`` of ``X``, sparse (a mini-batch)."""
        ...

    def active(self, Xb: Any) -> tuple[Array, Any, Any]:
        """``(A, Xc, XcT)``: the columns ``A`` that occur in ``Xb`` (sorted device indices), and
        ``Xb``'s entries on them, as ``(n_b, |A|)`` and ``(|A|, n_b)`` sparse matrices (for the
        products ``Xc @ W_A`` and ``XcT @ dz``)."""
        ...


def _dot(xp: Any, x: Array, y: Array) -> Array:
    """``sum(x * y)`` of two arrays of one shape, as one dot product (no temporary)."""
    return xp.reshape(x, (-1,)) @ xp.reshape(y, (-1,))


class _Store:
    """``W`` and ``V`` as ``M [P; Q]`` (see the module docstring), with their squared norms."""

    def __init__(self, W: Array, V: Array | None, xp: Any):
        self.xp = xp
        self.P = xp.asarray(W, copy=True)
        self.Q = None if V is None else xp.asarray(V, copy=True)
        self._reset_norms()
        self.M = [[1.0, 0.0], [0.0, 1.0]]

    def _reset_norms(self) -> None:
        P, Q = self.P, self.Q
        self.pp = _dot(self.xp, P, P)
        self.pq: Array = None if Q is None else _dot(self.xp, P, Q)
        self.qq: Array = None if Q is None else _dot(self.xp, Q, Q)

    def sq_norm(self) -> Array:
        """``||W||^2 = m00^2 ||P||^2 + 2 m00 m01 <P, Q> + m01^2 ||Q||^2``."""
        (a, c), _ = self.M
        if self.Q is None:
            return (a * a) * self.pp
        return (a * a) * self.pp + (2 * a * c) * self.pq + (c * c) * self.qq

    def rows(self, A: Array) -> tuple[Array, Array | None, Array]:
        """``(P_A, Q_A, W_A)``."""
        xp = self.xp
        Pa = xp.take(self.P, A, axis=0)
        (a, c), _ = self.M
        if self.Q is None:
            return Pa, None, a * Pa
        Qa = xp.take(self.Q, A, axis=0)
        return Pa, Qa, a * Pa + c * Qa

    def decay(self, c: float, mu: float) -> None:
        """``M <- S M``: the step's L2 decay and momentum, on every row at once."""
        (a, b), (d, e) = self.M
        if self.Q is None:
            self.M = [[(1.0 - c) * a, 0.0], [0.0, 1.0]]
            return
        self.M = [
            [(1.0 - c) * a + mu * d, (1.0 - c) * b + mu * e],
            [-c * a + mu * d, -c * b + mu * e],
        ]

    def subtract(self, A: Array, G: Array, Pa: Array, Qa: Array | None) -> None:
        """``W_A -= G`` and ``V_A -= G``: ``[P_A; Q_A] += M^-1 [-G; -G]``."""
        (a, b), (d, e) = self.M
        if self.Q is None:
            new_P = Pa - G * (1.0 / a)
            self.pp = self.pp + (_dot(self.xp, new_P, new_P) - _dot(self.xp, Pa, Pa))
            self.P[A, :] = new_P
            return
        det = a * e - b * d
        new_P = Pa - G * ((e - b) / det)
        new_Q = Qa - G * ((a - d) / det)
        self.pp = self.pp + (_dot(self.xp, new_P, new_P) - _dot(self.xp, Pa, Pa))
        self.pq = self.pq + (_dot(self.xp, new_P, new_Q) - _dot(self.xp, Pa, Qa))
        self.qq = self.qq + (_dot(self.xp, new_Q, new_Q) - _dot(self.xp, Qa, Qa))
        self.P[A, :] = new_P
        self.Q[A, :] = new_Q

    def form(self) -> tuple[Array, Array | None]:
        """``W`` and ``V`` as arrays; from here ``M = I``."""
        (a, b), (d, e) = self.M
        if self.Q is None:
            if a != 1.0:
                self.P *= a
        elif self.M != [[1.0, 0.0], [0.0, 1.0]]:  # in place, FORM_ROWS rows at a time
            P, Q = self.P, self.Q
            for lo in range(0, P.shape[0], FORM_ROWS):
                rows = slice(lo, min(lo + FORM_ROWS, P.shape[0]))
                Pr, Qr = P[rows, :], Q[rows, :]
                P[rows, :], Q[rows, :] = a * Pr + b * Qr, d * Pr + e * Qr
        self.M = [[1.0, 0.0], [0.0, 1.0]]
        self._reset_norms()
        return self.P, self.Q


def sparse_sgd_epoch(
    X: Any,
    y: Array,
    order: Array,
    W: Array,
    b: Array,
    velocity: tuple[Array, Array] | None,
    *,
    lr: float,
    momentum: float,
    reg: float,
    batch_size: int,
    xp: Any,
    ops: SparseOps,
    weights: Array | None = None,
    fit_intercept: bool = True,
) -> tuple[Array, Array, tuple[Array, Array] | None, Array]:
    """:func:`softmax_xp.solvers.sgd.sgd_epoch` (same arguments, same results) for a sparse
    ``X``, in steps that touch only the batch's active rows of ``W`` (see the module
    docstring)."""

    n, k = X.shape[0], W.shape[1]
    batch_size = min(batch_size, max(n, 1))
    dt, dev = W.dtype, device_of(W)
    labels = xp.take(y, order, axis=0)
    w_order = None if weights is None else xp.take(xp.astype(weights, dt), order, axis=0)
    steps = -(-n // batch_size)
    store = _Store(W, None if velocity is None else velocity[0], xp)
    b = xp.asarray(b, copy=True)
    vb = None if velocity is None else xp.asarray(velocity[1], copy=True)
    parts = xp.empty((2, n), dtype=dt, device=dev)
    sq_norm = xp.empty((steps,), dtype=dt, device=dev)
    eye = xp.eye(k, dtype=dt, device=dev)
    c, mu = lr * reg, momentum
    for t in range(steps):
        lo, hi = t * batch_size, min((t + 1) * batch_size, n)
        width = hi - lo
        step = lr / width
        Xb = ops.rows(X, order[lo:hi])
        A, Xc, XcT = ops.active(Xb)
        Pa, Qa, Wa = store.rows(A)
        sq_norm[t] = store.sq_norm()
        z = Xc @ Wa + b  # (n_b, K) logits at the batch's starting weights
        z -= xp.max(z, axis=1, keepdims=True)
        e = xp.exp(z)
        s = xp.sum(e, axis=1)
        yb = labels[lo:hi]
        parts[0, lo:hi] = s
        parts[1, lo:hi] = xp.take(
            xp.reshape(z, (-1,)), yb + k * xp.arange(width, dtype=yb.dtype, device=dev), axis=0
        )
        e *= xp.reshape(step / s, (width, 1))
        e -= xp.take(eye * step, yb, axis=0)  # lr/n (p - Y)
        if w_order is not None:
            e *= xp.reshape(w_order[lo:hi], (width, 1))
        G = XcT @ e  # (|A|, K): lr/n X_A^T (p - Y)
        if vb is None:
            if reg:
                store.decay(c, 0.0)
        else:
            store.decay(c, mu)
        if fit_intercept:
            g_b = xp.sum(e, axis=0, keepdims=True)
            if vb is None:
                b = b - g_b
            else:
                vb = mu * vb - g_b
                b = b + vb
        store.subtract(A, G, Pa, Qa)
        if (t + 1) % RENORM == 0:
            store.form()
    losses = batch_means(parts, (0.5 * reg) * sq_norm, n, batch_size, xp, w_order)
    W, V = store.form()
    return W, b, (None if V is None else (V, vb)), losses
