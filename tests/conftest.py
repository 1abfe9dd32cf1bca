"""One fixture, ``backend``, runs every numeric test on every backend available here.

``$SOFTMAX_XP_TEST_BACKENDS`` (comma-separated, e.g. ``numpy`` or ``cupy``) narrows the set; the nox
sessions use it to test one backend each. A backend that cannot run here is skipped with the reason,
except CuPy under ``$SOFTMAX_XP_REQUIRE_GPU=1`` (set by ``nox -s tests-cupy`` and
``benchmarks/gpu.sh`` on a machine whose ``nvidia-smi`` sees a GPU): there a CuPy that cannot run
fails every CuPy test instead, so a broken GPU install never passes as "skipped".

JAX runs in its default 32-bit mode unless ``$JAX_ENABLE_X64=1`` (``nox -s tests-jax`` runs both):
there a test that needs float64 on JAX is skipped, saying so, rather than failed.
"""

from __future__ import annotations

import functools
import os
import tempfile
from typing import Any

import numpy as np
import pytest

from softmax_xp._backend import Backend, _problem, asarray_on, resolve_backend, to_numpy

try:  # Hypothesis keeps its files (examples, constants) in a temporary folder, not the working one
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(tempfile.mkdtemp(prefix="softmax-xp-hypothesis-"))
except ImportError:
    pass

ALL_BACKENDS = ("numpy", "array_api_strict", "array_api_strict:device1", "torch", "cupy", "jax")
NEEDS_X64 = "needs float64: JAX runs in 32-bit mode here (set JAX_ENABLE_X64=1 to run it)"


def _selected() -> tuple[str, ...]:
    env = os.environ.get("SOFTMAX_XP_TEST_BACKENDS", "").strip()
    if not env:
        return ALL_BACKENDS
    wanted = {item.strip() for item in env.split(",") if item.strip()}
    unknown = wanted - {param.split(":")[0] for param in ALL_BACKENDS} - set(ALL_BACKENDS)
    if unknown:
        raise pytest.UsageError(f"SOFTMAX_XP_TEST_BACKENDS: unknown {sorted(unknown)}")
    return tuple(p for p in ALL_BACKENDS if p in wanted or p.split(":")[0] in wanted)


@pytest.fixture(params=_selected())
def backend(request: pytest.FixtureRequest) -> Backend:
    """A resolved :class:`Backend`; ``array_api_strict:device1`` catches a forgotten device=."""
    name, _, device = request.param.partition(":")
    problem = _problem(name)
    if problem is not None:
        if name == "cupy" and os.environ.get("SOFTMAX_XP_REQUIRE_GPU") == "1":
            pytest.fail(f"SOFTMAX_XP_REQUIRE_GPU=1 but CuPy cannot run: {problem}", pytrace=False)
        reason = "no CUDA device available" if name == "cupy" else f"{name} unavailable"
        pytest.skip(f"{reason}: {problem}")
    return resolve_backend(name, device=device or None, fallback=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """A test that asks JAX in 32-bit mode for float64 (the model refuses it) is skipped."""
    try:
        return (yield)
    except ValueError as exc:
        if "JAX holds float64 only in its 64-bit mode" in str(exc):
            pytest.skip(NEEDS_X64)
        raise


def _without_x64(backend: Backend) -> bool:
    return backend.name == "jax" and "float64" not in backend.xp.__array_namespace_info__().dtypes()


class Arrays:
    """Helpers that move host data onto a backend and back, for the tests."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.xp = backend.xp
        self.device = backend.device

    def __call__(self, data: Any, dtype: str | None = "float64") -> Any:
        if dtype in ("float64", "int64") and _without_x64(self.backend):
            if dtype == "float64":
                pytest.skip(NEEDS_X64)
            dtype = "int32"  # labels: JAX's default integer dtype
        dtype = getattr(self.xp, dtype) if isinstance(dtype, str) else dtype
        return asarray_on(self.backend, np.asarray(data), dtype)

    def host(self, x: Any) -> np.ndarray:
        return to_numpy(x)


@pytest.fixture
def arrays(backend: Backend) -> Arrays:
    """``arrays(data, dtype)`` puts host data on the backend's device; ``arrays.host(x)`` reads it."""
    return Arrays(backend)


@pytest.fixture(scope="module")
def client() -> Any:
    """A Dask LocalCluster of 2 single-threaded worker processes and its Client, the default
    scheduler while the module's tests run."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@functools.cache
def _bundled_mnist() -> Any:
    from softmax_xp import load_mnist

    return load_mnist()


@pytest.fixture
def mnist_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads the bundled MNIST (and checks its checksums) once per test session, not
    once per command run."""
    import softmax_xp.cli.data as cli

    real = cli.load_mnist

    def load(data_dir: Any = None, download: bool = False, **kwargs: Any) -> Any:
        if data_dir is None and not kwargs and "SOFTMAX_XP_DATA" not in os.environ:
            return _bundled_mnist()
        return real(data_dir, download, **kwargs)

    monkeypatch.setattr(cli, "load_mnist", load)


class Internals:
    """The library's private names that tests reach into, in one place: a refactor of the
    package changes this class, not the tests."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.monkeypatch = monkeypatch

    @staticmethod
    def state(model: Any) -> Any:
        """The model's TrainState: ``W, b, velocity, rng, epoch, history``."""
        return model._state

    @property
    def sgd_epoch(self) -> Any:
        """The real one-epoch SGD function."""
        from softmax_xp.solvers.sgd import sgd_epoch

        return sgd_epoch

    def patch_sgd_epoch(self, replacement: Any) -> None:
        """Make every data source (in memory, Dask blocks) run ``replacement`` as its SGD epoch."""
        import softmax_xp._data.memory as memory

        self.monkeypatch.setattr(memory, "sgd_epoch", replacement)
        try:
            import softmax_xp._data.dask_tasks as dask_tasks
        except ImportError:  # no dask here
            return
        self.monkeypatch.setattr(dask_tasks, "sgd_epoch", replacement)

    def interrupt_sgd_after(self, epochs: int) -> Any:
        """Make the SGD epoch after ``epochs`` completed ones raise KeyboardInterrupt (as a
        Ctrl-C inside it would); returns the callback that counts the completed epochs, to pass
        to ``train``. ``monkeypatch.undo()`` lifts it."""
        from softmax_xp import Callback

        done: list[int] = []
        real = self.sgd_epoch

        def sgd_epoch(*args: Any, **kwargs: Any) -> Any:
            if len(done) == epochs:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        class Count(Callback):
            def on_epoch_end(self, state: Any) -> None:
                done.append(state.epoch)

        self.patch_sgd_epoch(sgd_epoch)
        return Count()

    def force_layout(self, layout: str) -> None:
        """Make every SGD run multiply in ``layout`` ("row", "class", "class_xw"), whatever the
        layout rule says."""
        import softmax_xp._layout as layouts

        self.monkeypatch.setattr(layouts, "_forced_layout", layout)

    @staticmethod
    def product_layout(backend: Any, dtype_name: str) -> str:
        """The layout rule's choice for a backend name (or Backend) and dtype."""
        from softmax_xp._backend import resolve_backend
        from softmax_xp._layout import product_layout

        if isinstance(backend, str):
            backend = resolve_backend(backend, fallback=False)
        return product_layout(backend, dtype_name)

    def set_machine(self, blas: str | None, torch_blas: str | None, cpu: str | None) -> None:
        """Make the layout rule see NumPy's BLAS, PyTorch's and the CPU vendor as given."""
        import softmax_xp._layout as layouts

        self.monkeypatch.setattr(layouts, "blas_vendor", lambda: blas)
        self.monkeypatch.setattr(layouts, "torch_blas", lambda: torch_blas)
        self.monkeypatch.setattr(layouts, "cpu_vendor", lambda: cpu)

    @staticmethod
    def counts_agree(backend: str, dtype_name: str, batch: int, d: int, k: int) -> bool:
        """Whether one thread and the default count give the same bits here (the probe the
        measured thread choice rests on), for plain SGD in the layout the rule gives."""
        from softmax_xp._backend import resolve_backend
        from softmax_xp._layout import product_layout
        from softmax_xp._threads import counts_agree

        where = resolve_backend(backend, fallback=False)
        layout = product_layout(where, dtype_name)
        return counts_agree(where, dtype_name, batch, 0, d, k, layout=layout)

    def pretend_counts_agree(self) -> None:
        """Make training runs treat one thread and the default count as giving the same bits,
        so that they measure (for tests of the measuring itself, with shapes too small for the
        BLAS to use more than one thread)."""
        import softmax_xp._training.run as run

        self.monkeypatch.setattr(run, "counts_agree", lambda *args, **kwargs: True)

    def patch_thread_clock(self, clock: Any) -> None:
        """Make the thread chooser read ``clock()`` instead of ``time.perf_counter()``."""
        import softmax_xp._threads as threads

        self.monkeypatch.setattr(threads, "_clock", clock)

    @staticmethod
    def thread_trial_steps() -> int:
        """SGD steps an epoch needs before the thread chooser decides."""
        from softmax_xp._threads import REFERENCE, TRIAL, WARM

        return 2 * WARM + TRIAL + REFERENCE + 1

    def patch_dask_chain(self, make: Any) -> None:
        """Replace the Dask epoch's chain of block tasks by ``make(real_chain)``."""
        import softmax_xp._data.dask as dask_source

        self.monkeypatch.setattr(dask_source, "_chain", make(dask_source._chain))

    def count_run_host_reads(self) -> list[Any]:
        """Record every array the training run reads to the host (its ``to_numpy`` calls)."""
        import softmax_xp._training.run as run

        reads: list[Any] = []
        real = run.to_numpy

        def counting(x: Any) -> Any:
            reads.append(x)
            return real(x)

        self.monkeypatch.setattr(run, "to_numpy", counting)
        return reads

    def patch_minimize_lbfgs(self, replacement: Any) -> None:
        """Make the training run's L-BFGS call ``replacement`` instead of scipy's minimizer."""
        import softmax_xp._training.run as run

        self.monkeypatch.setattr(run, "minimize_lbfgs", replacement)

    @staticmethod
    def hold_out(
        X: Any, labels: Any, sample_weight: Any, fraction: float, random_state: Any
    ) -> Any:
        """SoftmaxClassifier's early-stopping split of host rows: ``(X, labels, weights)`` of
        the training rows, ``(X, labels)`` of the held-out ones and their weights."""
        from softmax_xp._sklearn_fit import hold_out

        return hold_out(X, labels, sample_weight, fraction, random_state, False)

    @staticmethod
    def split_count(count: Any) -> Any:
        """How a hit count travels to the host as two parts exact in float32."""
        from softmax_xp._training.run import _split_count

        return _split_count(count)

    def record_chunks(self) -> list[int]:
        """Record the rows of every chunk that inference moves to the device."""
        import softmax_xp._inference as inference

        rows: list[int] = []
        real = inference.as_features

        def spy(X: Any, *args: Any, **kwargs: Any) -> Any:
            rows.append(X.shape[0])
            return real(X, *args, **kwargs)

        self.monkeypatch.setattr(inference, "as_features", spy)
        return rows

    def patch_chunk_features(self, replacement: Any) -> None:
        """Make inference move each chunk of rows to the device with ``replacement``."""
        import softmax_xp._inference as inference

        self.monkeypatch.setattr(inference, "as_features", replacement)

    def patch_loss_and_grads(self, replacement: Any) -> None:
        """Make ``SoftmaxXP.compute_loss_and_grads`` compute with ``replacement``."""
        import softmax_xp.model as model

        self.monkeypatch.setattr(model, "loss_and_grads", replacement)

    def limit_chunk_rows(self, rows: int) -> None:
        """Make the default inference chunk at most ``rows`` rows."""
        import softmax_xp._inference as inference

        self.monkeypatch.setattr(inference, "_MAX_CHUNK_ROWS", rows)

    @staticmethod
    def default_chunk_rows(model: Any) -> int:
        from softmax_xp._inference import chunk_rows

        return chunk_rows(model._settings, None)


@pytest.fixture
def internals(monkeypatch: pytest.MonkeyPatch) -> Internals:
    """See :class:`Internals`."""
    return Internals(monkeypatch)


@pytest.fixture
def in_empty_folder(tmp_path_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The test runs in an empty folder of its own: a CLI default (``--out runs/mnist``) or a
    relative path neither reads nor writes the folder pytest was started in."""
    folder = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(folder)
    return folder
