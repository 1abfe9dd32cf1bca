"""``softmax-xp predict --json``: one JSON object per image and line, for scripts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from softmax_xp import SoftmaxXP
from softmax_xp.cli import main

pytestmark = pytest.mark.usefixtures("in_empty_folder")


@pytest.fixture
def model_file(tmp_path) -> Path:
    return SoftmaxXP(784, 10, backend="numpy", seed=0).save(tmp_path / "model.npz")


def test_predict_json_gives_one_object_per_image(model_file, tmp_path, capsys):
    stack = np.zeros((3, 28, 28), np.uint8)
    stack[0, 4:24, 12:16] = 255  # a one
    stack[2, 8:20, 8:20] = 200  # a blob
    np.save(tmp_path / "three.npy", stack)  # the middle image is blank
    capsys.readouterr()
    model = str(model_file)
    assert main(["predict", "--model", model, "--json", str(tmp_path / "three.npy")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    objects = [json.loads(line) for line in lines]
    assert [o["file"] for o in objects] == [f"{tmp_path / 'three.npy'}[{i}]" for i in range(3)]
    assert [o["blank"] for o in objects] == [False, True, False]
    assert objects[1]["label"] is None and objects[1]["probability"] is None
    assert main(["predict", "--model", model, str(tmp_path / "three.npy")]) == 0
    text = capsys.readouterr().out.strip().splitlines()
    for obj, line in zip(objects[::2], text[::2], strict=True):
        assert line.startswith(f"{obj['file']}: {obj['label']}  (")
        assert len(obj["probabilities"]) == 10
        assert obj["probability"] == max(obj["probabilities"])
        assert sum(obj["probabilities"]) == pytest.approx(1.0, abs=1e-5)
