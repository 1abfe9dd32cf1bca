"""A train run's end and its resume: a signal after the last epoch, a lost run.json, the signal
handlers left as they were, and resume mismatches in the CLI's words."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

import softmax_xp.cli.train as train_module
from softmax_xp.cli import main

pytestmark = pytest.mark.usefixtures("mnist_read_once", "in_empty_folder")

SMALL = ["--limit", "500", "--backend", "numpy", "--quiet", "--no-plots"]
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def report_of(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def stop_after_epoch(monkeypatch, epoch: int, signum: int | None = None) -> None:
    """Right after epoch ``epoch`` (its checkpoint written), send ``signum`` to this process, or
    (None) raise KeyboardInterrupt."""
    real = train_module._Progress.update

    def update(self, done: int, history) -> None:
        real(self, done, history)
        if done == epoch:
            if signum is None:
                raise KeyboardInterrupt
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(train_module._Progress, "update", update)


@POSIX
def test_a_signal_after_the_last_epoch_leaves_a_complete_run(tmp_path, monkeypatch, capsys):
    stop_after_epoch(monkeypatch, 2, signal.SIGTERM)
    assert main(["train", *SMALL, "--epochs", "2", "--out", str(tmp_path)]) == 128 + 15
    report = report_of(tmp_path)
    assert report["status"] == "complete" and report["summary"] == "complete: 2 of 2 epochs"
    assert report["interrupted"] is False and report["epochs_completed"] == 2
    captured = capsys.readouterr()
    assert "partial model" not in captured.out and "interrupted" not in captured.out
    assert "SIGTERM: the run is complete (2 of 2 epochs); saving it" in captured.err
    assert "--resume" not in (tmp_path / "report.md").read_text()


def test_a_signal_before_the_last_epoch_still_asks_to_resume(tmp_path, monkeypatch):
    stop_after_epoch(monkeypatch, 1)
    assert main(["train", *SMALL, "--epochs", "2", "--out", str(tmp_path)]) == 130
    assert report_of(tmp_path)["summary"] == "interrupted by Ctrl-C after 1 of 2 epochs"
    assert "--resume" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("damage", ["delete", "corrupt"])
def test_resume_without_run_json_finishes_the_run_it_was(tmp_path, monkeypatch, capsys, damage):
    """The checkpoint alone says how many epochs the run was asked for."""
    stop_after_epoch(monkeypatch, 1)
    assert main(["train", *SMALL, "--epochs", "3", "--out", str(tmp_path)]) == 130
    for name in ("model.npz", "report.json", "report.md"):  # as if killed before the save
        (tmp_path / name).unlink()
    if damage == "delete":
        (tmp_path / "run.json").unlink()
    else:
        (tmp_path / "run.json").write_text('{"epochs": ')
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    argv = ["train", "--backend", "numpy", "--quiet", "--no-plots", "--resume", "--out", "."]
    assert main(argv) == 0
    assert "resuming from epoch 1 of 3" in capsys.readouterr().err
    report = report_of(tmp_path)
    assert (report["epochs"], report["epochs_completed"]) == (3, 3)


@POSIX
def test_main_restores_the_signal_handlers(tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path)]) == 0
    after = {s: signal.getsignal(s) for s in before}
    assert after == before


@POSIX
def test_main_restores_the_signal_handlers_after_a_signal(tmp_path, monkeypatch):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    stop_after_epoch(monkeypatch, 1, signal.SIGTERM)
    assert main(["train", *SMALL, "--epochs", "2", "--out", str(tmp_path)]) == 143
    assert {s: signal.getsignal(s) for s in before} == before


def test_resume_on_other_data_names_the_flags_of_that_run(tmp_path, monkeypatch, capsys):
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path)]) == 0

    import softmax_xp.cli.data as data

    real_load = data.load_mnist

    def other_data(*args, **kwargs):  # the same number of images, other labels
        (X, y), test = real_load(*args, **kwargs)
        return (X, (y + 1) % 10), test

    monkeypatch.setattr(data, "load_mnist", other_data)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *SMALL, "--epochs", "2", "--resume", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--resume: the run in {tmp_path} was trained on other data than this one" in err
    assert err.endswith("give the --data-dir and --limit of that run.")
    assert "resume_from" not in err and "checkpoint.npz" not in err
