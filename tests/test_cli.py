"""The ``softmax-xp`` command on small runs: train, evaluate, predict, info, and its errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from softmax_xp.cli import main
from softmax_xp.datasets import load_mnist

pytestmark = pytest.mark.usefixtures("in_empty_folder")

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--limit", "3000", "--epochs", "2", "--backend", "numpy", "--quiet"]


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One small training run shared by the tests that read its outputs."""
    out = tmp_path_factory.mktemp("run")
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    return out


def test_train_writes_model_and_report(trained):
    report = json.loads((trained / "report.json").read_text())
    for key in (
        "test_accuracy",
        "backend",
        "device",
        "dtype",
        "epochs",
        "batch_size",
        "lr",
        "reg",
        "seed",
        "train_seconds",
        "history",
        "per_class",
        "confusion_matrix",
    ):
        assert key in report, key
    assert report["backend"] == "numpy" and report["epochs"] == 2 and report["lr"] == 0.1
    assert len(report["history"]["loss"]) == len(report["history"]["val_accuracy"]) == 2
    assert report["test_accuracy"] > 0.7  # 2 epochs of the chapter's recipe on 3,000 images
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 10_000
    assert np.trace(cm) / 10_000 == pytest.approx(report["test_accuracy"])
    assert report["per_class"]["3"]["support"] == 1010
    assert "Test accuracy" in (trained / "report.md").read_text()


def test_train_writes_figures(trained):
    pytest.importorskip("matplotlib")  # the GPU check's machine has no matplotlib
    figures = [
        "training_curves",
        "confusion_matrix",
        "weight_templates",
        "misclassified",
        "sigmoid",
        "softmax_example",
    ]
    for name in figures:
        assert (trained / f"{name}.png").stat().st_size > 1000, name


def test_train_prints_accuracy_report_and_matrix(tmp_path, capsys):
    assert main(["train", *SMALL, "--epochs", "1", "--no-plots", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"test accuracy: 0\.[5-9]\d{3} \(the chapter reports 0\.9227\)", out)
    assert "macro avg" in out and "confusion matrix" in out
    assert not list(tmp_path.glob("*.png"))


def test_evaluate_matches_training_report(trained, capsys):
    capsys.readouterr()
    assert main(["evaluate", "--model", str(trained / "model.npz"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    saved = json.loads((trained / "report.json").read_text())
    assert report["test_accuracy"] == saved["test_accuracy"]
    assert report["confusion_matrix"] == saved["confusion_matrix"]


def test_predict_npy_and_png(trained, mnist, tmp_path, capsys):
    PIL = pytest.importorskip("PIL.Image")
    _, (X_test, y_test) = mnist
    np.save(tmp_path / "digits.npy", (X_test[:5] * 255).astype(np.uint8).reshape(5, 28, 28))
    # A PNG as a person would draw it: a dark digit on white paper, larger than 28x28.
    picture = PIL.fromarray((255 - X_test[0] * 255).astype(np.uint8).reshape(28, 28))
    picture.resize((112, 112)).save(tmp_path / "digit.png")
    capsys.readouterr()
    model = str(trained / "model.npz")
    assert (
        main(
            ["predict", "--model", model, str(tmp_path / "digits.npy"), str(tmp_path / "digit.png")]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6
    predicted = [int(line.split(": ")[1].split()[0]) for line in lines]
    assert (np.array(predicted[:5]) == y_test[:5]).mean() >= 0.6
    assert predicted[5] == y_test[0]
    assert "digit.png: " in lines[5] and "7:" in lines[5]


def test_info_lists_backends(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out and "cupy" in out and 'backend="auto" uses:' in out
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["backends"]["numpy"]["available"] is True


def test_resume_continues_from_checkpoint(tmp_path):
    first, second = tmp_path / "interrupted", tmp_path / "straight"
    assert main(["train", *SMALL, "--no-plots", "--epochs", "1", "--out", str(first)]) == 0
    assert (first / "checkpoint.npz").is_file()
    assert main(["train", *SMALL, "--no-plots", "--resume", "--out", str(first)]) == 0
    assert main(["train", *SMALL, "--no-plots", "--out", str(second)]) == 0
    resumed = json.loads((first / "report.json").read_text())
    straight = json.loads((second / "report.json").read_text())
    assert resumed["history"]["loss"] == straight["history"]["loss"]
    assert resumed["test_accuracy"] == straight["test_accuracy"]


def test_ctrl_c_saves_completed_epochs_and_exits_130(tmp_path, monkeypatch, internals):
    import softmax_xp.solvers.sgd as sgd

    real = sgd.sgd_epoch
    calls = []

    def interrupt_on_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    internals.patch_sgd_epoch(interrupt_on_second_epoch)
    code = main(["train", *SMALL, "--epochs", "5", "--no-plots", "--out", str(tmp_path)])
    assert code == 130
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["interrupted"] is True and report["epochs_completed"] == 1
    assert (tmp_path / "model.npz").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--epochs", "many"], "invalid int value"),
        (["train", "--batch-size", "0"], "must be a positive integer"),
        (["train", "--backend", "tensorflow"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
        (["evaluate", "--model", "missing.npz"], "No model file"),
        (["predict", "--model", "missing.npz", "x.png"], "No model file"),
        (["train", "--data-dir", "/nonexistent/mnist", "--quiet"], "MNIST files not found"),
    ],
)
def test_errors_are_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_predict_missing_image_is_one_line_error(trained, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--model", str(trained / "model.npz"), "nope.png"])
    assert exit_info.value.code == 2
    assert "No such image file" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["evaluate"], ["predict", "x.png"]])
def test_model_given_as_the_run_folder_names_its_model_file(trained, capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([command[0], "--model", str(trained), *command[1:]])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "is a folder, not a model file" in err and str(trained / "model.npz") in err


def test_python_dash_m_entry_point(in_empty_folder):
    result = subprocess.run(
        [sys.executable, "-m", "softmax_xp", "--version"],
        capture_output=True,
        text=True,
        check=False,
        cwd=in_empty_folder,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0 and result.stdout.startswith("softmax-xp ")


def test_the_cli_tests_pass_beside_the_run_of_the_readme(tmp_path):
    """`softmax-xp train` leaves runs/mnist in the folder it ran in; the tests run after it (as
    in .ci/run) must not find that run."""
    (tmp_path / "runs" / "mnist").mkdir(parents=True)
    (tmp_path / "runs" / "mnist" / "model.npz").write_bytes(b"an earlier run")
    test = f"{Path(__file__).resolve()}::test_errors_are_one_line_and_exit_2"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["mnist", "model.npz", "runs"]


@pytest.mark.parametrize(
    ("command", "phrases"),
    [
        ("evaluate", ["runs/mnist/model.npz", "bundled MNIST"]),
        ("predict", ["runs/mnist/model.npz", "PNG", ".npy"]),
        ("info", ["JSON"]),
    ],
)
def test_every_option_of_a_command_has_help(capsys, command, phrases):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in phrases:
        assert phrase in text, phrase


def test_evaluate_offers_the_download_it_suggests(trained, tmp_path, monkeypatch, capsys):
    """evaluate's missing-data message says "Pass --download": evaluate must accept it."""
    import shutil

    from softmax_xp.datasets import mnist as mnist_module

    model, folder = str(trained / "model.npz"), tmp_path / "data"
    folder.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", model, "--data-dir", str(folder)])
    assert exit_info.value.code == 2 and "Pass --download" in capsys.readouterr().err

    def fake_download(directory, *args, **kwargs):  # the bundled files stand in for the network
        for path in mnist_module.bundled_dir().iterdir():
            shutil.copy(path, directory)

    monkeypatch.setattr(mnist_module, "download_mnist", fake_download)
    assert main(["evaluate", "--model", model, "--data-dir", str(folder), "--download"]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_evaluate_needs_only_the_two_test_files(trained, tmp_path, capsys):
    """evaluate reads only the test split: a folder with just the t10k files is enough."""
    import shutil

    from softmax_xp.datasets.mnist import bundled_dir

    model, folder = str(trained / "model.npz"), tmp_path / "t10k"
    folder.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(bundled_dir() / name, folder)
    assert main(["evaluate", "--model", model, "--data-dir", str(folder), "--json"]) == 0
    only_test = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--model", model, "--json"]) == 0  # the bundled four files
    assert only_test["test_accuracy"] == json.loads(capsys.readouterr().out)["test_accuracy"]

    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", model, "--data-dir", str(folder)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "MNIST test files (t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte) not found" in err
    assert "missing t10k-labels-idx1-ubyte" in err and "train-" not in err


def test_predict_says_when_a_picture_has_no_ink(trained, mnist, tmp_path, capsys):
    """A blank picture (one colour) gets a note instead of a digit; the others are predicted."""
    PIL = pytest.importorskip("PIL.Image")
    _, (X_test, _) = mnist
    PIL.new("L", (64, 64), 255).save(tmp_path / "blank.png")  # white paper, no digit
    np.save(tmp_path / "two.npy", np.stack([X_test[0], np.zeros(784, np.float32)]))
    model, blank, two = str(trained / "model.npz"), tmp_path / "blank.png", tmp_path / "two.npy"
    capsys.readouterr()
    assert main(["predict", "--model", model, str(two)]) == 0
    alone = capsys.readouterr().out.strip().splitlines()[0]
    assert main(["predict", "--model", model, str(blank), str(two)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [
        f"{blank}: no ink found (a blank image); no digit predicted",
        alone,  # the inked image's line is as before
        f"{two}[1]: no ink found (a blank image); no digit predicted",
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--model", model, str(blank)])
    assert exit_info.value.code == 2
    assert "every image is blank (no ink found)" in capsys.readouterr().err
