"""The CLI's sentences: each says what is wrong and what the user can type instead."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from softmax_xp.cli import main

pytestmark = pytest.mark.usefixtures("mnist_read_once", "in_empty_folder")

SMALL = ["--limit", "500", "--backend", "numpy", "--quiet"]


def error_line(argv: list[str], capsys) -> str:
    """The error line with which ``main(argv)`` exits 2 (the last of stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"softmax-xp {argv[0]}: error: "), line
    return line


@pytest.mark.parametrize("flag", ["--epochs", "--limit", "--batch-size"])
@pytest.mark.parametrize("value", ["-1", "0"])
def test_a_count_below_one_gets_one_true_sentence(flag, value, capsys):
    with pytest.raises(SystemExit):
        main(["train", flag, value])
    err = capsys.readouterr().err
    assert f"argument {flag}: must be a positive integer (1 or more), got {value}" in err
    assert "0 or a positive" not in err


def test_a_full_disk_while_saving_says_the_checkpoint_recovers(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    from softmax_xp import plots

    def save_png(fig, file):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(plots, "save_png", save_png)
    line = error_line(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path)], capsys)
    assert "No space left on device" in line
    assert f"The checkpoint {tmp_path / 'checkpoint.npz'} keeps the 1 epochs" in line
    assert f"softmax-xp train --resume --no-plots --out {tmp_path}" in line
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", "--no-plots", "--quiet", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "complete" and report["epochs_completed"] == 1


def test_device_without_a_gpu_is_worded_in_flags(tmp_path, capsys):
    line = error_line(["train", "--device", "0", "--out", str(tmp_path / "run")], capsys)
    if "needs a GPU" not in line:
        pytest.skip("this machine has a GPU")
    assert "--backend auto" in line and "backend=" not in line
    assert "--backend cupy" in line


def test_info_prints_the_install_hints(capsys):
    assert main(["info", "--json"]) == 0
    backends = json.loads(capsys.readouterr().out)["backends"]
    hints = [entry["install"] for entry in backends.values() if entry.get("install")]
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    for hint in hints:
        assert hint in text


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (
            ["train", "--learning-rate", "0.1"],
            "unrecognized argument --learning-rate; did you mean --lr?",
        ),
        (["train", "--epocs=3"], "unrecognized argument --epocs; did you mean --epochs?"),
        (
            ["evaluate", "--model", "m.npz", "--jsn"],
            "unrecognized argument --jsn; did you mean --json?",
        ),
        (["info", "--frobnicate"], "unrecognized argument --frobnicate (softmax-xp info --help"),
    ],
)
def test_an_unknown_flag_gets_one_line_with_the_flag_meant(argv, hint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"softmax-xp {argv[0]}: error: {err.split('error: ')[1].strip()}"
    ]
    assert hint in err and "usage:" not in err


def other_data_set(directory: Path, test_images: int = 10_000) -> Path:
    """A data set in MNIST's layout that is not MNIST (as Fashion-MNIST is): MNIST's own test
    images with other labels, and a small training set."""
    from softmax_xp.datasets import MNIST_FILES, load_mnist_test, write_idx

    X_test, y_test = load_mnist_test()
    rng = np.random.default_rng(0)
    directory.mkdir()
    train = rng.integers(0, 256, (10_050, 28, 28), np.uint8)
    test = np.rint(X_test[:test_images] * 255).astype(np.uint8).reshape(-1, 28, 28)
    arrays = (train, rng.integers(0, 10, 10_050, np.uint8), test, (9 - y_test).astype(np.uint8))
    for name, array in zip(MNIST_FILES, arrays, strict=True):
        write_idx(directory / name, array)
    return directory


def test_another_data_set_is_not_compared_with_the_chapter(tmp_path, capsys):
    data, out = other_data_set(tmp_path / "fashion"), tmp_path / "run"
    argv = ["train", *SMALL, "--no-plots", "--epochs", "1", "--data-dir", str(data)]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "chapter" not in printed and "digit" not in printed
    assert "rows: true class, columns: predicted class" in printed
    markdown = (out / "report.md").read_text()
    assert markdown.startswith("# softmax-xp: test report") and "chapter" not in markdown
    report = json.loads((out / "report.json").read_text())
    assert report["mnist"] is False and report["chapter_test_accuracy"] is None
    model = str(out / "model.npz")
    assert main(["evaluate", "--model", model, "--data-dir", str(data)]) == 0
    assert "chapter" not in capsys.readouterr().out


def test_mnist_in_a_data_dir_is_still_mnist(tmp_path, capsys):
    from softmax_xp.datasets.mnist import bundled_dir

    out = tmp_path / "run"
    argv = ["train", *SMALL, "--no-plots", "--epochs", "1", "--data-dir", str(bundled_dir())]
    assert main([*argv, "--out", str(out)]) == 0
    assert "(the chapter reports 0.9227)" in capsys.readouterr().out
    assert (out / "report.md").read_text().startswith("# softmax-xp: MNIST test report")
    assert json.loads((out / "report.json").read_text())["mnist"] is True


@pytest.fixture
def cupy_without_driver(monkeypatch):
    """CuPy installed on a machine without an NVIDIA driver: its device query fails."""
    import importlib.machinery
    import sys
    import types

    import softmax_xp._backend as backend_module

    def no_driver() -> int:
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    cupy = types.ModuleType("cupy")
    cupy.__spec__ = importlib.machinery.ModuleSpec("cupy", None)
    runtime = types.SimpleNamespace(getDeviceCount=no_driver, driverGetVersion=lambda: 0)
    cupy.cuda = types.SimpleNamespace(runtime=runtime)
    cupy.ndarray = type("ndarray", (), {})  # for array_api_compat's is_cupy_array
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    backend_module._cupy_problem.cache_clear()
    yield
    backend_module._cupy_problem.cache_clear()


def test_cupy_without_a_driver_asks_for_the_driver_not_cupy(cupy_without_driver, tmp_path, capsys):
    argv = ["train", *SMALL, "--no-plots", "--epochs", "1", "--backend", "cupy"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "warning: Backend 'cupy' is unavailable: no NVIDIA driver is installed or loaded" in err
    assert "install (or update) the NVIDIA driver" in err and "install CuPy" not in err
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "install (or update) the NVIDIA driver" in out and "install CuPy" not in out
