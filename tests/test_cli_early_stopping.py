"""``softmax-xp train --early-stopping [--patience N]``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from softmax_xp import SoftmaxXP
from softmax_xp.cli import main

pytestmark = pytest.mark.usefixtures("mnist_read_once", "in_empty_folder")

SMALL = ["--limit", "1000", "--backend", "numpy", "--quiet", "--no-plots"]


def test_early_stopping_stops_and_keeps_the_best_epoch(tmp_path):
    # a step so large that the validation loss soon stops improving
    argv = ["train", *SMALL, "--lr", "5", "--epochs", "60", "--early-stopping", "--patience", "2"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    val_loss = report["history"]["val_loss"]
    best = int(np.argmin(val_loss)) + 1
    assert report["epochs_completed"] == len(val_loss) == best + 2 < 60
    assert report["summary"].startswith(f"stopped early: {best + 2} of 60 epochs")
    assert f"best in epoch {best}" in report["summary"]
    model = SoftmaxXP.load(tmp_path / "model.npz", backend="numpy")
    assert model.score(*_val()) == pytest.approx(report["history"]["val_accuracy"][best - 1])


def _val():
    from softmax_xp.datasets import load_mnist, split_validation

    (X, y), _ = load_mnist()
    return split_validation(X, y, 10_000)[1]


def test_patience_without_early_stopping_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", *SMALL, "--patience", "3", "--out", str(tmp_path)])
    assert info.value.code == 2
    assert "--patience is for --early-stopping" in capsys.readouterr().err
