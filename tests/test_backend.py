"""Backend resolution: names, "auto", the environment override, CPU fallback and its error."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import softmax_xp._backend as backend_module
from softmax_xp import (
    BackendFallbackWarning,
    BackendUnavailableError,
    SoftmaxXP,
    backend_info,
    resolve_backend,
    to_numpy,
)


@pytest.fixture
def no_cuda(monkeypatch):
    """Pretend this machine has no usable CUDA device, whatever it really has."""
    monkeypatch.setattr(backend_module, "_cupy_problem", lambda: "no CUDA device was found")


def test_unknown_backend_lists_valid_names():
    with pytest.raises(ValueError, match=r"Unknown backend 'mxnet'.*numpy, cupy, torch.*jax"):
        resolve_backend("mxnet")
    with pytest.raises(ValueError, match=r"Unknown backend.*did you mean backend='jax'"):
        resolve_backend("jax.numpy")
    with pytest.raises(ValueError, match="Unknown backend"):
        SoftmaxXP(4, 2, backend="tensorflow")


def test_cupy_without_gpu_falls_back_with_warning(no_cuda):
    with pytest.warns(
        BackendFallbackWarning, match=r"no CUDA device.*an NVIDIA GPU.*Falling back to NumPy"
    ):
        model = SoftmaxXP(4, 3, backend="cupy", seed=0)
    assert model.backend == "numpy"
    assert issubclass(BackendFallbackWarning, UserWarning)
    X = np.eye(4)
    model.train(X, [0, 1, 2, 0], epochs=1, verbose=0)  # and it works


def test_fallback_false_raises(no_cuda):
    with pytest.raises(BackendUnavailableError, match="'cupy' is unavailable: no CUDA device"):
        SoftmaxXP(4, 3, backend="cupy", fallback=False)


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(
        backend_module, "_import_problem", lambda module: f"{module} is not installed"
    )
    with pytest.raises(
        BackendUnavailableError, match=r"torch is not installed.*softmax-xp\[torch\]"
    ):
        resolve_backend("torch", fallback=False)


def test_auto_prefers_cupy_only_when_a_device_answers(no_cuda, monkeypatch):
    monkeypatch.delenv("SOFTMAX_XP_BACKEND", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "auto" never warns
        assert resolve_backend("auto").name == "numpy"


def test_environment_overrides_auto(monkeypatch):
    monkeypatch.setenv("SOFTMAX_XP_BACKEND", "array_api_strict")
    assert resolve_backend("auto").name == "array_api_strict"
    assert resolve_backend("numpy").name == "numpy"  # an explicit name wins
    monkeypatch.setenv("SOFTMAX_XP_BACKEND", "nope")
    with pytest.raises(ValueError, match="SOFTMAX_XP_BACKEND"):
        resolve_backend("auto")


def test_device_is_passed_through():
    pytest.importorskip("array_api_strict")
    resolved = resolve_backend("array_api_strict", device="device1")
    assert str(resolved.device) == str(resolved.xp.Device("device1"))
    with pytest.raises(ValueError, match="CPU"):
        resolve_backend("numpy", device="cuda:0")


def test_backend_info_reports_every_backend(no_cuda):
    info = backend_info()
    assert set(info) == {"numpy", "cupy", "torch", "array_api_strict", "jax", "auto"}
    assert info["numpy"]["available"] and info["numpy"]["devices"] == ["cpu"]
    assert info["cupy"] == {
        "available": False,
        "reason": "no CUDA device was found",
        "install": backend_module._install_hint("cupy", "no CUDA device was found"),
    }
    assert info["auto"]["resolves_to"] in {"numpy", "array_api_strict", "torch"}


def test_to_numpy_round_trip(arrays):
    data = np.arange(6.0).reshape(2, 3)
    out = to_numpy(arrays(data))
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, data)
