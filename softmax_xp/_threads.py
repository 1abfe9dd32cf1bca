"""How many CPU threads the training loop's matrix products use (host side; no array maths).

An SGD step on MNIST multiplies a 256 x 784 batch by a 784 x 10 matrix: a product that takes a
fraction of a millisecond on one core. Spreading it over several BLAS threads saves little on an
idle machine and costs 3-30x on a busy one (every step waits for the slowest thread, and a thread
that lost its core stalls all of them). So, while :meth:`SoftmaxXP.train` runs, products below
:data:`SMALL_PRODUCT` multiply-adds (``batch x d x K``) use one thread; larger ones are left to the
library's own choice.

``$SOFTMAX_XP_THREADS=default`` turns the rule off (the libraries' defaults throughout).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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
    ``=default``)."""
    policy = os.environ.get(ENV_VAR, "auto").strip().lower()
    if policy not in ("auto", "default"):
        raise ValueError(f"${ENV_VAR}={policy!r}: use 'auto' (the default) or 'default'.")
    if policy == "default" or batch * d * k >= SMALL_PRODUCT:
        return nullcontext()
    if backend.name in ("numpy", "array_api_strict"):
        return _controller().limit(limits=1, user_api="blas")
    if backend.name == "torch" and str(backend.device) == "cpu":
        return _torch_threads(1)
    return nullcontext()


@cache
def _controller() -> Any:
    """threadpoolctl's view of the BLAS libraries loaded (numpy's among them), found once."""
    import numpy  # noqa: F401  (loads the BLAS)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


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
