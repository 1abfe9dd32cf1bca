"""How many CPU threads the training loop's matrix products use (host side; no array maths).

An SGD step on MNIST multiplies a 256 x 784 batch by a 784 x 10 matrix: a product that takes a
fraction of a millisecond on one core. Spreading it over several BLAS threads saves little on an
idle machine and costs 3-30x on a busy one (every step waits for the slowest thread, and a thread
that lost its core stalls all of them). So, while :meth:`SoftmaxXP.train` runs, products below
:data:`SMALL_PRODUCT` multiply-adds (``batch x d x K``) use one thread; larger ones are left to the
library's own choice.

``$SOFTMAX_XP_THREADS=default`` turns the rule off (the libraries' defaults throughout);
``$SOFTMAX_XP_THREADS=N`` (a whole number, 1 or more) runs every product of the training loop on
N threads, whatever its size.

Trainings in several Python threads at once (GridSearchCV with joblib's threading backend): the
thread counts are process-wide. PyTorch's is set by the first training to start and restored by
the last to end. OpenBLAS's is left alone outside the main thread: threadpoolctl lets one thread
at a time control it and silently ignores the others, so a limit set in one worker thread and
restored in another would stay on after the search.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache
from typing import Any

from ._backend import Backend

__all__ = ["ENV_VAR", "SMALL_PRODUCT", "training_threads"]

ENV_VAR = "SOFTMAX_XP_THREADS"
# Below this many multiply-adds per product, one thread; measured in benchmarks/README.md
# ("Speed under load"): MNIST's 2M and 16M (batch 2048) products run faster on one thread.
SMALL_PRODUCT = 2**25


def training_threads(backend: Backend, batch: int, d: int, k: int) -> AbstractContextManager[Any]:
    """A context in which ``backend``'s CPU matrix products of ``batch x d`` by ``d x k`` use
    one thread when they are small (a no-op for large ones, GPUs and ``$SOFTMAX_XP_THREADS``
    ``=default``), or the number of threads ``$SOFTMAX_XP_THREADS`` gives."""
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


def thread_policy() -> str:
    """``$SOFTMAX_XP_THREADS``, checked: ``"auto"`` (unset), ``"default"`` or a number."""
    policy = os.environ.get(ENV_VAR, "auto").strip().lower()
    if policy in ("auto", "default") or (policy.isdigit() and int(policy) >= 1):
        return policy
    raise ValueError(
        f"${ENV_VAR}={policy!r}: use 'auto' (the default: small products on one thread), "
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
