"""How many CPU threads the training loop's matrix products use (host side; no array maths of
its own).

Threads
-------
An SGD step on MNIST multiplies a 256 x 784 batch by a 784 x 10 matrix: a product that takes a
fraction of a millisecond on one core. Spreading it over several BLAS threads saves 1.1-1.3x on
an idle machine and costs 3-30x on a busy one (every step waits for the slowest thread, and a
thread that lost its core stalls all of them). No fixed count is best on both, so, with
``$SOFTMAX_XP_THREADS=auto`` (the default), a CPU training run chooses per epoch:

- *measured*, where one thread and the library's default count give bit-identical epochs on this
  BLAS: each epoch runs its first steps on the count not in use, then a few on the count in use,
  and keeps the faster for the rest of the epoch (and the next). The trial steps are real steps of
  the run, and since both counts give the same bits, the numbers never depend on the timing. A
  machine that becomes busy or idle during training is followed within an epoch. Whether the
  counts agree is checked once per process and shape (:func:`counts_agree`): two steps of a
  synthetic epoch of the run's shapes on each count, compared bit for bit. A BLAS's summation
  order depends on the shapes and the thread count, not on the values. Measured here (AMD EPYC,
  2 cores): OpenBLAS 0.3.31 (SkylakeX kernels) rounds ``[256, 784] @ [784, 10]`` differently on 1
  and 2 threads, float32 and float64; PyTorch 2.13's MKL does ``e @ X_b`` (float32) and ``dot``
  (float64) differently. So on that machine every run takes the rule below;
- otherwise by the *size rule*: products below :data:`SMALL_PRODUCT` multiply-adds
  (``batch x d x K``) on one thread, larger ones on the library's own choice.

The measurement reads ``time.perf_counter`` a few times per epoch on CPU backends only; GPU
backends (CuPy, PyTorch on CUDA), JAX and Dask's workers are left alone.

``$SOFTMAX_XP_THREADS=default`` runs on the libraries' defaults throughout;
``$SOFTMAX_XP_THREADS=N`` (a whole number, 1 or more) runs every product of the training loop on
N threads, whatever its size. :attr:`History.threads` records the count each epoch ran on
(0: not a count of ours: GPU, JAX, L-BFGS).

Trainings in several Python threads at once (GridSearchCV with joblib's threading backend): the
thread counts are process-wide. PyTorch's is set by the first training to start and restored by
the last to end. OpenBLAS's is left alone outside the main thread: threadpoolctl lets one thread
at a time control it and silently ignores the others, so a limit set in one worker thread and
restored in another would stay on after the search. Outside the main thread nothing is measured.

The product layout of the epoch is chosen in :mod:`softmax_xp._layout`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache
from typing import Any

import numpy as np

from ._backend import Backend, asarray_on, index_dtype, resolve_backend, to_numpy

__all__ = [
    "ENV_VAR",
    "SMALL_PRODUCT",
    "EpochThreads",
    "blas_controller",
    "counts_agree",
    "epoch_threads",
    "training_threads",
]

ENV_VAR = "SOFTMAX_XP_THREADS"
# Below this many multiply-adds per product, one thread; measured in benchmarks/README.md
# ("Speed under load"): MNIST's 2M and 16M (batch 2048) products run faster on one thread.
SMALL_PRODUCT = 2**25

# The measured choice: each epoch, TRIAL steps on the other count after WARM untimed ones, then
# WARM untimed and REFERENCE timed steps on the count in use; the other wins if its steps take
# under (1 - MARGIN) of the reference's. 3 of MNIST's 196 steps: at most ~3 % of an epoch if
# the other count is 3x slower (a busy machine), nothing once it is not.
WARM, TRIAL, REFERENCE, MARGIN = 1, 2, 4, 0.05
_clock = time.perf_counter  # tests read a clock of their own here


def training_threads(backend: Backend, batch: int, d: int, k: int) -> AbstractContextManager[Any]:
    """A context in which ``backend``'s CPU matrix products of ``batch x d`` by ``d x k`` use
    one thread when they are small (a no-op for large ones, GPUs and ``$SOFTMAX_XP_THREADS``
    ``=default``), or the number of threads ``$SOFTMAX_XP_THREADS`` gives: the size rule."""
    policy = thread_policy()
    if policy == "default" or (policy == "auto" and batch * d * k >= SMALL_PRODUCT):
        return nullcontext()
    threads = 1 if policy == "auto" else int(policy)
    if backend.name in ("numpy", "array_api_strict"):
        if threading.current_thread() is not threading.main_thread():
            return nullcontext()  # see the module's docstring
        limit: AbstractContextManager[Any] = _controller().limit(limits=threads, user_api="blas")
        return limit
    if backend.name == "torch" and str(backend.device) == "cpu":
        return _torch_limit(threads)()
    return nullcontext()


class _Knob:
    """Get and set one library's thread count (process-wide)."""

    def __init__(self, kind: str):
        self.kind = kind

    def get(self) -> int:
        if self.kind == "torch":
            import torch

            return int(torch.get_num_threads())
        counts = [lib.num_threads for lib in blas_controller().lib_controllers]
        return int(max(counts, default=1))

    def set(self, n: int) -> None:
        if self.kind == "torch":
            import torch

            torch.set_num_threads(n)
            return
        for lib in blas_controller().lib_controllers:
            lib.set_num_threads(n)


def _knob(backend: Backend) -> _Knob | None:
    """The thread count this package may measure for ``backend`` in this Python thread: PyTorch's
    on the CPU and NumPy's BLAS, in the main thread only (see the module docstring)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if backend.name == "torch" and str(backend.device) == "cpu":
        return _Knob("torch")
    if backend.name in ("numpy", "array_api_strict"):
        return _Knob("blas")
    return None


class EpochThreads:
    """A run's thread counts, epoch by epoch (see the module docstring).

    ``with threads.epoch() as on_step:`` sets the epoch's count and restores the library's on
    leaving; ``on_step`` (None unless measuring) goes to the SGD loop, which calls it before
    every step; :meth:`steps_done` ends the measurement (the rest of the epoch, validation
    included, runs on the rule's count) and ``used`` is the count most of the epoch's steps
    ran on (0: none of ours).
    """

    def __init__(
        self,
        enter: Callable[[], AbstractContextManager[Any]] | None,
        knob: _Knob | None = None,
        rule: int = 0,
        other: int | None = None,
        clock: Callable[[], float] | None = None,
    ):
        self._enter, self._knob = enter, knob
        self._clock = clock or _clock
        self.rule = rule  # the deterministic rule's count: where each epoch starts and ends
        self.best = rule  # the faster count so far
        self.other = other  # the count tried against it (None: no measuring)
        self.used = rule
        self._tick = 0
        self._marks: list[float] = []

    @property
    def measuring(self) -> bool:
        return self.other is not None and self._knob is not None

    @contextmanager
    def epoch(self) -> Iterator[Callable[[], None] | None]:
        context = nullcontext() if self._enter is None else self._enter()
        with context:
            self._tick, self._marks = 0, []
            self.used = self.best if self.measuring else self.rule
            if self._knob is not None:
                self._knob.set(self.used)
            try:
                yield self._on_step if self.measuring else None
            finally:
                if self.measuring:
                    self.steps_done()

    def _on_step(self) -> None:
        """Before SGD step ``self._tick`` of the epoch: switch and read the clock on the trial's
        step boundaries, nothing otherwise."""
        t = self._tick
        self._tick += 1
        if t > WARM + TRIAL + WARM + REFERENCE:
            return
        assert self._knob is not None and self.other is not None
        if t == 0:
            self._knob.set(self.other)
        elif t == WARM + TRIAL:
            self._marks.append(self._clock())
            self._knob.set(self.best)
        if t in (WARM, WARM + TRIAL + WARM, WARM + TRIAL + WARM + REFERENCE):
            self._marks.append(self._clock())
        if len(self._marks) == 4:
            self._decide()

    def _decide(self) -> None:
        start, trial_end, ref_start, ref_end = self._marks
        trial, reference = (trial_end - start) / TRIAL, (ref_end - ref_start) / REFERENCE
        if trial < (1.0 - MARGIN) * reference:
            assert self.other is not None and self._knob is not None
            self.best, self.other = self.other, self.best
            self._knob.set(self.best)
        self.used = self.best

    def steps_done(self) -> None:
        """The epoch's SGD steps are over: back to the rule's count (validation runs on it)."""
        if self.measuring:
            assert self._knob is not None
            if 0 < self._tick <= WARM + TRIAL and self.other is not None:
                self.used = self.other  # every step ran on the trial count
            self._knob.set(self.rule)
            self._tick = WARM + TRIAL + WARM + REFERENCE + 1  # no more switching this epoch


def epoch_threads(
    backend: Backend,
    batch: int,
    d: int,
    k: int,
    agree: Callable[[], bool] | None = None,
) -> EpochThreads:
    """The thread counts of a run of ``batch x d`` by ``d x k`` products on ``backend``.

    ``agree()`` says whether one thread and the default count give the same bits (see
    :func:`counts_agree`); None: they are not compared (no measuring)."""
    policy = thread_policy()
    knob = _knob(backend)
    small = batch * d * k < SMALL_PRODUCT
    if knob is None:  # a GPU, JAX, or a worker thread: the size rule, as before
        used = 0
        if backend.name == "torch" and str(backend.device) == "cpu":
            import torch

            auto = 1 if small else torch.get_num_threads()
            used = {"auto": auto, "default": torch.get_num_threads()}.get(policy) or int(policy)
        return EpochThreads(lambda: training_threads(backend, batch, d, k), rule=used)
    default = knob.get()
    if policy == "default":
        return EpochThreads(None, knob, rule=default)
    if policy != "auto":
        return EpochThreads(lambda: training_threads(backend, batch, d, k), knob, rule=int(policy))
    rule = 1 if small else default
    enter = _restoring(knob, default)
    if default > 1 and agree is not None and agree():
        return EpochThreads(enter, knob, rule=rule, other=default if rule == 1 else 1)
    return EpochThreads(enter, knob, rule=rule)


def _restoring(knob: _Knob, default: int) -> Callable[[], AbstractContextManager[Any]]:
    """A context that gives the library its count ``default`` back on leaving."""
    if knob.kind == "torch":
        return lambda: _torch_limit(default)()

    @contextmanager
    def restore() -> Iterator[None]:
        try:
            yield
        finally:
            knob.set(default)

    return restore


def counts_agree(
    backend: Backend, dtype_name: str, batch: int, last: int, d: int, k: int, **step: Any
) -> bool:
    """Whether one thread and the library's default count give bit-identical SGD epochs of these
    shapes (``last``: the short last batch's rows, 0 if none) and settings (``step``:
    ``momentum``, ``l1_ratio``, ``layout``, ``weighted``): two full batches and the short one of
    a synthetic epoch on each count, weights, bias and losses compared. Cached per process.
    False without trying where the synthetic rows would take more than 64 MiB."""
    knob = _knob(backend)
    if knob is None:
        return False
    default = knob.get()
    if default <= 1:
        return True
    if (2 * batch + last) * d * 8 > _PROBE_BYTES:  # too big to try: no measuring, the size rule
        return False
    if backend.name == "array_api_strict":  # NumPy underneath: the same BLAS, the same calls
        backend = resolve_backend("numpy", fallback=False)
    key = (backend.name, str(backend.device), dtype_name, batch, last, d, k, default,
           tuple(sorted(step.items())))  # fmt: skip
    if key not in _agreements:
        _agreements[key] = _probe(backend, dtype_name, batch, last, d, k, knob, default, **step)
    return _agreements[key]


_agreements: dict[tuple[Any, ...], bool] = {}
_PROBE_BYTES = 64 * 2**20  # the most the probe's synthetic rows may take (MNIST's: 3.4 MB)


def _probe(
    backend: Backend,
    dtype_name: str,
    batch: int,
    last: int,
    d: int,
    k: int,
    knob: _Knob,
    default: int,
    *,
    momentum: float = 0.0,
    l1_ratio: float = 0.0,
    layout: str = "row",
    weighted: bool = False,
) -> bool:
    from .solvers.sgd import sgd_epoch

    rng = np.random.default_rng(0)
    n = 2 * batch + last
    xp, dtype = backend.xp, getattr(backend.xp, dtype_name)
    X = asarray_on(backend, rng.standard_normal((n, d)), dtype)
    y = asarray_on(backend, rng.integers(0, k, n), index_dtype(xp, backend.device))
    order = asarray_on(backend, rng.permutation(n), index_dtype(xp, backend.device))
    W = asarray_on(backend, 0.1 * rng.standard_normal((d, k)), dtype)
    b = asarray_on(backend, 0.1 * rng.standard_normal((1, k)), dtype)
    velocity = (W * 0.5, b * 0.5) if momentum else None
    weights = asarray_on(backend, rng.uniform(0.5, 1.5, n), dtype) if weighted else None
    outs: list[list[np.ndarray]] = []
    for count in (1, default):
        knob.set(count)
        outs.append([])
        # The loss's penalty (||W||^2, a dot product some BLAS split across threads) is lost in
        # the rounding of a loss with a small reg: a second epoch whose penalty dominates.
        try:
            for lr, reg in ((0.1, 1e-3), (1e-6, 1e4)):
                out = sgd_epoch(
                    X, y, order, W, b, velocity, lr=lr, momentum=momentum, reg=reg,
                    batch_size=batch, xp=xp, weights=weights, l1_ratio=l1_ratio, layout=layout,
                )  # fmt: skip
                outs[-1] += [to_numpy(a) for a in (out[0], out[1], out[3], *(out[2] or ()))]
        finally:
            knob.set(default)
    return all(np.array_equal(a, c) for a, c in zip(*outs, strict=True))


def thread_policy() -> str:
    """``$SOFTMAX_XP_THREADS``, checked: ``"auto"`` (unset), ``"default"`` or a number."""
    policy = os.environ.get(ENV_VAR, "auto").strip().lower()
    if policy in ("auto", "default") or (policy.isdigit() and int(policy) >= 1):
        return policy
    raise ValueError(
        f"${ENV_VAR}={policy!r}: use 'auto' (the default: the faster of 1 and the "
        "libraries' count, measured where they give the same bits, else one thread for small "
        "products), "
        "'default' (the libraries' own thread counts) or a number of threads, 1 or more "
        f"(e.g. {ENV_VAR}=2)."
    )


class _SharedLimit:
    """A process-wide thread limit shared by the trainings running at once in several Python
    threads: the first to enter sets it, the last to leave restores the setting of before. Each
    training setting and restoring on its own would, when they overlap, restore another's limit
    and leave the process on one thread."""

    def __init__(self, make: Callable[[], AbstractContextManager[Any]]):
        self._make = make
        self._lock = threading.Lock()
        self._users = 0
        self._limit: AbstractContextManager[Any] | None = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                limit = self._make()
                limit.__enter__()
                self._limit = limit
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._limit is not None:
                    limit, self._limit = self._limit, None
                    limit.__exit__(None, None, None)


@cache
def blas_controller() -> Any:
    """threadpoolctl's controllers of the BLAS libraries loaded (numpy's among them)."""
    return _controller().select(user_api="blas")


@cache
def _controller() -> Any:
    """threadpoolctl's view of the BLAS libraries loaded (numpy's among them), found once."""
    import numpy  # noqa: F401  (loads the BLAS)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@cache
def _torch_limit(n: int) -> _SharedLimit:
    """The shared limit of PyTorch's threads to ``n`` (one per ``n``, made once)."""
    return _SharedLimit(lambda: _torch_threads(n))


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """PyTorch's intra-op threads (its own pool, not threadpoolctl's) set to ``n`` inside."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
