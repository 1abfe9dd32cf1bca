"""The training loop's thread rule: small products on one BLAS / PyTorch thread, others as set."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import softmax_xp._threads as threads_module
import softmax_xp.model as model_module
from softmax_xp import SoftmaxXP

X = np.random.default_rng(0).normal(size=(64, 6))
Y = np.arange(64) % 3


def blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def threads_seen_in_epochs(monkeypatch, backend: str, probe) -> list:
    """Train 2 epochs, recording ``probe()`` inside each SGD epoch."""
    seen = []
    original = model_module.sgd_epoch

    def recording(*args, **kwargs):
        seen.append(probe())
        return original(*args, **kwargs)

    monkeypatch.setattr(model_module, "sgd_epoch", recording)
    SoftmaxXP(6, 3, backend=backend, seed=0).train(X, Y, epochs=2, batch_size=16, verbose=0)
    return seen


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
@pytest.mark.parametrize(
    ("policy", "threshold", "inside"),
    [("auto", 2**25, {1}), ("auto", 1, {2}), ("default", 2**25, {2})],
)
def test_small_products_use_one_blas_thread(monkeypatch, backend, policy, threshold, inside):
    pytest.importorskip(backend)
    monkeypatch.setenv("SOFTMAX_XP_THREADS", policy)
    monkeypatch.setattr(threads_module, "SMALL_PRODUCT", threshold)
    with threadpool_limits(2, user_api="blas"):  # the library's own setting, whatever the machine
        seen = threads_seen_in_epochs(monkeypatch, backend, blas_threads)
        assert seen == [inside, inside]
        assert blas_threads() == {2}  # restored after training


def test_small_products_use_one_torch_thread(monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert threads_seen_in_epochs(monkeypatch, "torch", torch.get_num_threads) == [1, 1]
        assert torch.get_num_threads() == 2
        monkeypatch.setattr(threads_module, "SMALL_PRODUCT", 1)
        assert threads_seen_in_epochs(monkeypatch, "torch", torch.get_num_threads) == [2, 2]
    finally:
        torch.set_num_threads(before)


def test_bad_policy_says_what_is_allowed(monkeypatch):
    monkeypatch.setenv("SOFTMAX_XP_THREADS", "4")
    with pytest.raises(ValueError, match=r"SOFTMAX_XP_THREADS='4': use 'auto'.*'default'"):
        SoftmaxXP(6, 3, backend="numpy", seed=0).train(X, Y, epochs=1, verbose=0)
