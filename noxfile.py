"""Test sessions, one per backend, plus lint and docs. ``nox`` runs every session; ``nox -l`` lists
them.

Each ``tests-<backend>`` session installs the package with that backend and runs the whole suite
with ``SOFTMAX_XP_TEST_BACKENDS=<backend>``, so every numeric test (and the equivalence tests
against NumPy) runs on that backend.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

TEST_EXTRAS = "test,plot,progress"
# The CPU wheel of torch 2.13.0 is what these machines carry; a bare "torch" pulls a CUDA build.
TORCH = "torch==2.13.0"
BACKENDS = ("numpy", "array_api_strict", "torch", "cupy")
PYTHON_PATHS = ("softmax_xp", "tests", "benchmarks", "noxfile.py")


def _cupy_extra() -> str:
    """``cuda12`` or ``cuda13``, by the CUDA version the driver reports; the reason to skip if none.

    Checked before installing, so a machine without a GPU never downloads ~130 MB of CuPy.
    """
    if shutil.which("nvidia-smi") is None:
        raise LookupError("no NVIDIA driver (nvidia-smi not found)")
    result = subprocess.run(["nvidia-smi"], capture_output=True, text=True, check=False)
    found = re.search(r"CUDA Version:\s*(\d+)", result.stdout)
    if result.returncode != 0 or found is None:
        raise LookupError(f"nvidia-smi found no usable GPU ({result.stderr.strip() or 'no CUDA'})")
    return "cuda13" if int(found.group(1)) >= 13 else "cuda12"


def _install_for(session: nox.Session, backend: str) -> dict[str, str]:
    """Install the package for ``backend``; the environment its tests need."""
    extras, env = TEST_EXTRAS, {}
    if backend == "cupy":
        try:
            extras += "," + _cupy_extra()
        except LookupError as exc:
            session.skip(f"{exc}; the CuPy tests need a machine with an NVIDIA GPU.")
        # nvidia-smi sees a GPU: a CuPy that cannot run must fail the tests, not skip them.
        env["SOFTMAX_XP_REQUIRE_GPU"] = "1"
    session.install("-e", f".[{extras}]", *([TORCH] if backend == "torch" else []))
    return env


def _tests_session(backend: str) -> None:
    @nox.session(name=f"tests-{backend}")
    def run_tests(session: nox.Session) -> None:
        extra_env = _install_for(session, backend)
        env = {"SOFTMAX_XP_TEST_BACKENDS": backend, "MPLBACKEND": "Agg", **extra_env}
        session.run("pytest", *(session.posargs or ["-q"]), env=env)

    run_tests.__doc__ = f"Run the whole test suite with the {backend} backend."


for _backend in BACKENDS:
    _tests_session(_backend)


@nox.session(name="tests-jax")
def tests_jax(session: nox.Session) -> None:
    """The JAX backend's tests on JAX's CPU wheel, twice: in JAX's default 32-bit mode (tests that
    need float64 skip, saying so) and with ``JAX_ENABLE_X64=1``. Only the tests that run on a
    backend (``-k jax``): the rest do not depend on it and run in ``tests-numpy``."""
    session.install("-e", f".[{TEST_EXTRAS},jax]")
    env = {"SOFTMAX_XP_TEST_BACKENDS": "jax", "MPLBACKEND": "Agg"}
    args = session.posargs or ["-q", "-k", "jax"]
    session.run("pytest", *args, env={**env, "JAX_ENABLE_X64": "0"})
    session.run("pytest", *args, env={**env, "JAX_ENABLE_X64": "1"})


@nox.session(name="tests-dask")
def tests_dask(session: nox.Session) -> None:
    """Training and inference on Dask arrays on a 2-worker LocalCluster, and the README's
    snippets with Dask installed (about 2 minutes)."""
    session.install("-e", f".[{TEST_EXTRAS},dask]")
    env = {"SOFTMAX_XP_TEST_BACKENDS": "numpy,array_api_strict", "MPLBACKEND": "Agg"}
    tests = [
        f"tests/test_{name}.py"
        for name in ("dask", "dask_weights", "dask_sparse", "blocks", "readme")
    ]
    session.run("pytest", *(session.posargs or ["-q", *tests]), env=env)


@nox.session
def export(session: nox.Session) -> None:
    """ONNX, skl2onnx and skops export (the ``[export]`` extra): tests/test_export.py and the
    examples of softmax_xp.export (about 30 seconds)."""
    session.install("-e", f".[{TEST_EXTRAS},export]")
    env = {"SOFTMAX_XP_TEST_BACKENDS": "numpy,array_api_strict", "MPLBACKEND": "Agg"}
    tests = ["tests/test_export.py", "tests/test_docs.py", "-k", "export"]
    session.run("pytest", *(session.posargs or ["-q", *tests]), env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, the import layers of pyproject.toml (import-linter), and
    ``mypy --strict`` on the package (its settings are in pyproject.toml). mypy checks against the
    typed libraries the package imports (NumPy, array-api-compat, Dask, Matplotlib, Pillow);
    torch, jax and onnx are not installed here, to keep the session light."""
    session.install("-e", ".[plot,dask]", "ruff", "import-linter", "mypy")
    session.run("ruff", "check", *PYTHON_PATHS)
    session.run("ruff", "format", "--check", *PYTHON_PATHS)
    session.run("lint-imports")
    session.run("mypy")


# Modules whose docstring examples the docs session runs as doctests (softmax_xp/export.py's run
# in the export session, which installs their libraries).
DOCTEST_MODULES = (
    "softmax_xp/functional.py",
    "softmax_xp/metrics.py",
    "softmax_xp/plots.py",
    "softmax_xp/datasets/idx.py",
    "softmax_xp/datasets/mnist.py",
    "softmax_xp/_backend.py",
    "softmax_xp/model.py",
    "softmax_xp/sklearn.py",
)


@nox.session
def docs(session: nox.Session) -> None:
    """Every docstring example as a doctest, then the pages with warnings as errors (nitpicky),
    running the tutorial; ``nox -s docs -- -E`` rebuilds from scratch. Offline; about a minute.
    Serve the result with ``python -m http.server -d docs/_build/html``."""
    session.install("-e", ".[docs]")
    env = {"MPLBACKEND": "Agg"}
    flags = "doctest_optionflags=NORMALIZE_WHITESPACE ELLIPSIS"
    session.run("pytest", "-q", "--doctest-modules", "-o", flags, *DOCTEST_MODULES, env=env)
    build = ("sphinx-build", "-W", "--keep-going", "-n", "-b", "html", "docs", "docs/_build/html")
    session.run(*build, *session.posargs, env=env)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """The benchmarks (not part of the default run): ``nox -s bench -- --quick``."""
    session.install("-e", ".[plot,progress]", TORCH, "scikit-learn")
    session.run("python", "-m", "benchmarks", *session.posargs)


# Mutation testing: the modules whose mutants `nox -s mutation` runs. The tests that cover them
# are [tool.mutmut] pytest_add_cli_args_test_selection in pyproject.toml; its only_mutate must
# name every module here. Edit both when the estimator (softmax_xp/sklearn.py) joins.
MUTATION_MODULES = (
    "softmax_xp/functional.py",
    "softmax_xp/solvers/sgd.py",
    "softmax_xp/solvers/_losses.py",
    "softmax_xp/solvers/lbfgs.py",
    "softmax_xp/_training/run.py",
    "softmax_xp/_training/state.py",
    "softmax_xp/_training/callbacks.py",
)


@nox.session(default=False)
def mutation(session: nox.Session) -> None:
    """mutmut over MUTATION_MODULES with the tests named in pyproject's [tool.mutmut], on the
    NumPy backend (not part of the default run; several minutes per module).

    ``nox -s mutation -- softmax_xp/solvers/sgd.py`` mutates one module; then
    ``mutmut results`` lists the survivors and ``mutmut show NAME`` shows one.
    Record the kill rate and the explained survivors in benchmarks/results/mutation.md.
    """
    import tomllib

    with open("pyproject.toml", "rb") as file:
        allowed = tomllib.load(file)["tool"]["mutmut"]["only_mutate"]
    modules = session.posargs or list(MUTATION_MODULES)
    missing = [m for m in modules if m not in allowed]
    if missing:
        session.error(f"add {missing} to [tool.mutmut] only_mutate in pyproject.toml")
    session.install("-e", f".[{TEST_EXTRAS},lbfgs,sklearn]", "mutmut>=3.8,<4")
    # mutmut names mutants package.module.x_function__mutmut_N
    patterns = [m.removesuffix(".py").replace("/", ".") + ".*" for m in modules]
    env = {"SOFTMAX_XP_TEST_BACKENDS": "numpy", "MPLBACKEND": "Agg"}
    session.run("mutmut", "run", "--max-children", "2", *patterns, env=env)
    session.run("mutmut", "results", env=env)
