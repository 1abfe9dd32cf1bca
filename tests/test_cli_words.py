"""The CLI's sentences: each says what is wrong and what the user can type instead."""

from __future__ import annotations

import errno
import json

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
