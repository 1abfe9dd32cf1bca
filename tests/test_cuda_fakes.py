"""The CuPy path checked on the CPU with stand-ins for CuPy: device context, device spellings,
CUDA out-of-memory errors and the availability probe's diagnosis."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import array_api_compat.numpy as np_xp
import numpy as np
import pytest

from softmax_xp import SoftmaxXP
from softmax_xp import _backend as backend_module
from softmax_xp._backend import Backend, _probe_cupy, cupy_device
from softmax_xp._errors import DeviceMemoryError, is_out_of_memory


# -- a fake CuPy ----------------------------------------------------------------------------------
class Log:
    """What the fake CuPy saw: device contexts entered/left, and namespace use outside them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.current: list[int] = []
        self.outside: list[str] = []


def fake_cupy(log: Log, count: int = 2, **runtime: Any) -> types.ModuleType:
    """A module with the parts of CuPy that softmax_xp touches outside array maths."""

    class Device:
        def __init__(self, device: int | None = None):
            self.id = 0 if device is None else device

        def __enter__(self) -> Device:
            log.events.append(("enter", self.id))
            log.current.append(self.id)
            return self

        def __exit__(self, *exc: object) -> None:
            log.events.append(("exit", self.id))
            log.current.pop()

        def __repr__(self) -> str:
            return f"<CUDA Device {self.id}>"

    calls = {
        "getDeviceCount": lambda: count,
        "driverGetVersion": lambda: 13000,
        "runtimeGetVersion": lambda: 13000,
        **runtime,
    }
    cupy = types.ModuleType("cupy")
    cupy.ndarray = type("ndarray", (), {})  # array_api_compat.is_cupy_array looks it up
    cupy.cuda = types.SimpleNamespace(Device=Device, runtime=types.SimpleNamespace(**calls))
    return cupy


class GuardedNamespace:
    """array_api_compat.numpy that records every function called while no device is current
    (and computes on the CPU whatever ``device=`` says). Dtypes and inspection are not work."""

    def __init__(self, log: Log):
        self._log = log

    def __getattr__(self, name: str) -> Any:
        value = getattr(np_xp, name)
        if not callable(value) or isinstance(value, type) or name.startswith("__"):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            if not self._log.current:
                self._log.outside.append(name)
            if "device" in kwargs:
                kwargs["device"] = "cpu"
            return value(*args, **kwargs)

        return call


@pytest.fixture
def cuda(monkeypatch):
    """A two-GPU machine: ``backend="cupy"`` resolves to NumPy maths behind a fake CuPy."""
    log = Log()
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(log))
    monkeypatch.setattr(backend_module, "_cupy_problem", lambda: None)
    monkeypatch.setattr(backend_module, "_namespace", lambda name: GuardedNamespace(log))
    return log


# -- the device context ---------------------------------------------------------------------------
def test_all_model_work_runs_inside_the_device_context(cuda, tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5)), rng.integers(0, 3, size=40)
    model = SoftmaxXP(5, 3, backend="cupy", device="cuda:1", seed=0)
    assert model.backend == "cupy" and model.device.id == 1
    model.train(X, y, X[:10], y[:10], epochs=2, batch_size=16, verbose=0)
    model.fit(X, y, epochs=1, verbose=0)
    model.predict(X), model.predict_proba(X, chunk_size=7), model.score(X, y)
    model.compute_loss_and_grads(X, y), model.softmax(X[:, :3])
    loaded = SoftmaxXP.load(model.save(tmp_path / "m.npz"), backend="cupy", device=1)
    loaded.predict(X)
    assert cuda.outside == []  # no array was made or computed while another device was current
    assert {device for _, device in cuda.events} == {1}
    assert [e for e, _ in cuda.events].count("enter") == [e for e, _ in cuda.events].count("exit")
    assert cuda.current == []


def test_weighted_and_unscaled_runs_stay_inside_the_device_context(cuda):
    """The paths added for sample weights (their exact mean, block shuffles, L-BFGS) and for
    raw integer pixels (the unscaled warning) make no array while another device is current."""
    rng = np.random.default_rng(1)
    X, y, w = rng.normal(size=(40, 5)), rng.integers(0, 3, size=40), rng.uniform(size=40)
    pixels = rng.integers(0, 256, size=(40, 5))
    model = SoftmaxXP(5, 3, backend="cupy", device="cuda:1", seed=0, momentum=0.9)
    model.train(X, y, epochs=2, batch_size=16, verbose=0, sample_weight=w)
    model.train(X, y, epochs=1, verbose=0, sample_weight=w, shuffle="blocks", block_rows=16)
    model.train(X, y, epochs=2, verbose=0, sample_weight=w, solver="lbfgs")
    model.partial_train(X, y, batch_size=16, sample_weight=w)
    with pytest.warns(UserWarning, match="values up to"):
        model.train(pixels, y, epochs=1, verbose=0)
    with pytest.warns(UserWarning, match="values up to"):
        model.predict(pixels)
    assert cuda.outside == []
    assert {device for _, device in cuda.events} == {1}
    assert cuda.current == []


def test_the_guard_sees_work_outside_the_context(cuda):
    """The check above can fail: namespace use with no device current is recorded."""
    model = SoftmaxXP(5, 3, backend="cupy", device=1, seed=0)
    model.xp.zeros((2,), dtype=model.dtype)
    assert cuda.outside == ["zeros"]


def test_other_backends_activate_nothing():
    backend = Backend("numpy", np_xp, "cpu")
    with backend.activate() as entered:
        assert entered is None


# -- device spellings -----------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", [1, "1", "cuda:1", " CUDA:1 ", "device"])
def test_device_spellings(spelling):
    cupy = fake_cupy(Log(), count=2)
    if spelling == "device":
        spelling = cupy.cuda.Device(1)
    assert cupy_device(cupy, spelling).id == 1
    assert cupy_device(cupy, "cuda").id == 0


@pytest.mark.parametrize("spelling", [2, "cuda:2", -1])
def test_missing_device_lists_the_devices_there_are(spelling):
    with pytest.raises(ValueError, match=r"no CUDA device (2|-1).*has: cuda:0, cuda:1\."):
        cupy_device(fake_cupy(Log(), count=2), spelling)


@pytest.mark.parametrize("spelling", ["gpu:1", "cuda:x", True, 1.0, "cpu"])
def test_device_that_is_not_cuda_says_how_to_spell_one(spelling):
    with pytest.raises(ValueError, match=r"not a CUDA device: pass an id such as 0.*cuda:0"):
        cupy_device(fake_cupy(Log(), count=1), spelling)


def test_cli_device_string_reaches_the_model(cuda):
    """``softmax-xp train --device cuda:0`` passes the string on, and it resolves."""
    assert SoftmaxXP(4, 2, backend="cupy", device="cuda:0").device.id == 0
    with pytest.raises(ValueError, match="there is no CUDA device 3"):
        SoftmaxXP(4, 2, backend="cupy", device="cuda:3")


# -- out of memory outside CuPy's pool ------------------------------------------------------------
def cuda_error(class_name: str, message: str) -> Exception:
    return type(class_name, (RuntimeError,), {})(message)


OOM_ERRORS = [
    ("CUDARuntimeError", "cudaErrorMemoryAllocation: out of memory"),
    ("CUDADriverError", "CUDA_ERROR_OUT_OF_MEMORY: out of memory"),
    ("CUBLASError", "CUBLAS_STATUS_ALLOC_FAILED"),
    # JAX (XLA): jax.errors.JaxRuntimeError, jaxlib's XlaRuntimeError before it
    ("JaxRuntimeError", "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 8.00GiB."),
    ("XlaRuntimeError", "RESOURCE_EXHAUSTED: Out of memory allocating 1073741824 bytes."),
]


@pytest.mark.parametrize(("name", "message"), OOM_ERRORS)
def test_cuda_out_of_memory_becomes_device_memory_error(monkeypatch, name, message, internals):
    def logits(*args: Any, **kwargs: Any) -> Any:
        raise cuda_error(name, message)

    model = SoftmaxXP(4, 3, backend="numpy", seed=0)
    internals.patch_chunk_features(logits)
    with pytest.raises(DeviceMemoryError, match=r"smaller chunk_size \(now 5 rows\)") as info:
        model.predict(np.ones((8, 4)), chunk_size=5)
    assert type(info.value.__cause__).__name__ == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("CUDARuntimeError", "cudaErrorInvalidValue: invalid argument"),
        ("CUDADriverError", "CUDA_ERROR_ILLEGAL_ADDRESS"),
        ("CUBLASError", "CUBLAS_STATUS_NOT_INITIALIZED"),
        ("ValueError", "cudaErrorMemoryAllocation"),
        ("JaxRuntimeError", "INVALID_ARGUMENT: Executable expected shape f32[4,3]"),
    ],
)
def test_other_cuda_errors_are_not_out_of_memory(name, message):
    assert not is_out_of_memory(cuda_error(name, message))


# -- the availability probe -----------------------------------------------------------------------
def probe(count: int = 1, kernel: Exception | None = None, matmul: Exception | None = None, **rt):
    """Run the CuPy probe against a fake whose kernel and matmul raise the given errors."""
    cupy = fake_cupy(Log(), count=count, **rt)

    def raiser(error: Exception | None) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            if error is not None:
                raise error
            return types.SimpleNamespace(get=lambda: None)

        return run

    class Array:
        def __matmul__(self, other: Any) -> Any:
            return raiser(matmul)()

    cupy.ElementwiseKernel = lambda *args: raiser(kernel)
    cupy.arange = lambda *args, **kwargs: None
    cupy.ones = lambda *args, **kwargs: Array()
    cupy.float32 = "float32"
    return _probe_cupy(cupy)


INSUFFICIENT = "cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime"


def failing(error: Exception) -> Any:
    def call() -> int:
        raise error

    return call


def test_probe_passes_when_kernel_and_matmul_run():
    assert probe() is None


def test_probe_tells_no_driver_from_an_old_driver():
    error = cuda_error("CUDARuntimeError", INSUFFICIENT)
    none = probe(getDeviceCount=failing(error), driverGetVersion=lambda: 0)
    assert none.startswith("no NVIDIA driver is installed") and "too old" not in none
    old = probe(getDeviceCount=failing(error), driverGetVersion=lambda: 12020)
    assert "driver is too old" in old and "supports CUDA 12.2, this CuPy needs CUDA 13.0" in old


def test_probe_reports_no_device():
    assert probe(count=0) == "no CUDA device was found"


def test_probe_reports_missing_nvrtc_with_the_fix():
    error = RuntimeError("CuPy failed to load libnvrtc.so.13: cannot open shared object file")
    message = probe(kernel=error)
    assert "elementwise kernel (NVRTC) failed" in message
    assert 'cupy-cuda13x[ctk]"' in message


def test_probe_reports_missing_cublas_with_the_fix():
    message = probe(matmul=ImportError("libcublas.so.13: cannot open shared object file"))
    assert "matrix product (cuBLAS) failed: cuBLAS could not be used" in message
    assert "[ctk]" in message


# -- a GPU machine must not pass by skipping ------------------------------------------------------
@pytest.mark.parametrize(("require", "outcome"), [("1", "1 error"), ("", "1 skipped")])
def test_required_gpu_turns_the_cupy_skip_into_a_failure(require, outcome):
    """With $SOFTMAX_XP_REQUIRE_GPU=1 a CuPy that cannot run fails the CuPy tests."""
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "SOFTMAX_XP_TEST_BACKENDS": "cupy",
        "SOFTMAX_XP_REQUIRE_GPU": require,
    }
    code = (  # the child sees a machine where CuPy cannot import, whatever this one has
        "import sys, pytest, softmax_xp._backend as b;"
        "b._cupy_problem = lambda: 'CuPy failed to import (stand-in)';"
        "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', "
        f"'{root / 'tests' / 'test_host_reads.py'}::test_hit_counts_stay_exact_in_float32']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=root
    )
    assert outcome in result.stdout, result.stdout[-2000:]
    assert (result.returncode != 0) == (require == "1")
    if require:
        assert "SOFTMAX_XP_REQUIRE_GPU=1 but CuPy cannot run: CuPy failed to import" in (
            result.stdout
        )


# -- sparse input on the fake device ---------------------------------------------------------------
@pytest.fixture
def cupyx(cuda, monkeypatch):
    """A fake ``cupyx.scipy.sparse`` whose CSR is scipy's (so the maths runs on the CPU) under a
    cupyx module name; its constructor records the device current when it moves a matrix."""
    sparse = pytest.importorskip("scipy.sparse")

    class csr_matrix(sparse.csr_matrix):
        def __init__(self, *args: Any, **kwargs: Any):
            if not cuda.current:
                cuda.outside.append("cupyx.scipy.sparse.csr_matrix")
            super().__init__(*args, **kwargs)

    csr_matrix.__module__ = "cupyx.scipy.sparse._csr"
    module = types.ModuleType("cupyx.scipy.sparse")
    module.csr_matrix = csr_matrix
    for name, value in (
        ("cupyx", types.ModuleType("cupyx")),
        ("cupyx.scipy", types.ModuleType("cupyx.scipy")),
    ):
        monkeypatch.setitem(sys.modules, name, value)
    monkeypatch.setitem(sys.modules, "cupyx.scipy.sparse", module)
    return csr_matrix


def test_sparse_input_on_cupy_is_moved_once_and_stays_in_the_device_context(cuda, cupyx):
    """scipy.sparse X on backend="cupy" becomes cupyx CSR inside the device context, and every
    path (SGD, L-BFGS, validation, inference) gives NumPy's numbers there."""
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    X = sparse.random(60, 30, density=0.2, format="csr", random_state=0)
    y = rng.integers(0, 3, size=60)
    as_cupyx = cupyx(X)  # a cupyx matrix given directly (made here, outside the model)
    cuda.outside.clear()
    model = SoftmaxXP(30, 3, backend="cupy", device="cuda:1", seed=0, dtype="float64", momentum=0.9)
    model.train(X, y, X, y, epochs=2, batch_size=16, verbose=0)
    model.train(as_cupyx, y, epochs=3, solver="lbfgs", verbose=0)
    proba = model.predict_proba(X, chunk_size=7)
    accuracy = model.score(as_cupyx, y)
    assert cuda.outside == [] and {device for _, device in cuda.events} == {1}
    cuda.events.clear()
    reference = SoftmaxXP(30, 3, backend="numpy", seed=0, dtype="float64", momentum=0.9)
    reference.train(X, y, X, y, epochs=2, batch_size=16)
    reference.train(X, y, epochs=3, solver="lbfgs")
    np.testing.assert_allclose(np.asarray(model.W), reference.W, rtol=1e-12)
    np.testing.assert_allclose(proba, reference.predict_proba(X), rtol=1e-12)
    assert accuracy == reference.score(X, y)
