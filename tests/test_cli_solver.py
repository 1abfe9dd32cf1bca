"""``softmax-xp train --solver lbfgs`` and ``--tol``."""

from __future__ import annotations

import json

import pytest

from softmax_xp.cli import main

pytestmark = pytest.mark.usefixtures("mnist_read_once", "in_empty_folder")

SMALL = ["--limit", "1000", "--backend", "numpy", "--quiet", "--no-plots"]


def test_train_with_lbfgs_reports_the_solver_and_its_tolerance(tmp_path, capsys):
    pytest.importorskip("scipy")
    argv = ["train", *SMALL, "--solver", "lbfgs", "--tol", "1e-3", "--epochs", "5"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    assert "L-BFGS, up to 5 iterations" in capsys.readouterr().err
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["solver"], report["tol"], report["epochs"]) == ("lbfgs", 1e-3, 5)
    assert 1 <= report["epochs_completed"] <= 5 and report["test_accuracy"] > 0.6
    assert "solver lbfgs" in (tmp_path / "report.md").read_text()
    resumed = ["train", "--backend", "numpy", "--quiet", "--no-plots", "--resume"]
    assert main([*resumed, "--epochs", "7", "--tol", "1e-3", "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["solver"] == "lbfgs"


def test_sgd_is_the_default_solver(tmp_path):
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["solver"], report["tol"]) == ("sgd", None)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tol", "1e-3"], "--tol is the stopping rule of --solver lbfgs"),
        (["--solver", "sgd", "--tol", "1e-3"], "give --solver lbfgs too, or leave out --tol"),
        (["--solver", "lbfgs", "--lr", "0.5"], "--lr: not used by --solver lbfgs"),
        (["--solver", "lbfgs", "--batch-size", "64"], "--batch-size: not used by --solver lbfgs"),
    ],
)
def test_flags_the_solver_does_not_use_are_refused(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *SMALL, *flags, "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("tol", ["0", "-1", "nan", "inf", "x"])
def test_tol_must_be_a_number_above_zero(tol, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--solver", "lbfgs", "--tol", tol])
    err = capsys.readouterr().err
    assert "argument --tol:" in err


def test_resume_with_another_solver_names_both(tmp_path, capsys):
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["train", *SMALL, "--solver", "lbfgs", "--resume", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "trained with --solver sgd, not --solver lbfgs" in err
