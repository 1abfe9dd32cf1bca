"""Metrics against hand-computed values, on every backend."""

from __future__ import annotations

import json

import numpy as np
import pytest

from softmax_xp import metrics
from softmax_xp._backend import index_dtype
from softmax_xp.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    precision_recall_f1,
)

# Worked example: 7 samples, 3 classes.
Y_TRUE = [0, 0, 1, 1, 2, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0, 2]
# rows = true class, columns = predicted class
CM = [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
# tp = [1, 2, 2], predicted (column sums) = [2, 3, 2], support (row sums) = [2, 2, 3]
PRECISION = [1 / 2, 2 / 3, 2 / 2]
RECALL = [1 / 2, 2 / 2, 2 / 3]
F1 = [2 * 1 / (2 + 2), 2 * 2 / (2 + 3), 2 * 2 / (3 + 2)]  # 2 tp / (support + predicted)
SUPPORT = [2, 2, 3]
ACCURACY = 5 / 7
MACRO = (13 / 18, 13 / 18, 0.7)  # means of the three lists above
WEIGHTED = (16 / 21, 5 / 7, 5 / 7)  # sum(v * support) / 7


def test_confusion_matrix_by_hand(arrays):
    y_true, y_pred = arrays(Y_TRUE, dtype="int64"), arrays(Y_PRED, dtype="int64")
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.dtype == index_dtype(arrays.xp, arrays.device)
    assert cm.shape == (3, 3)
    np.testing.assert_array_equal(arrays.host(cm), CM)


def test_confusion_matrix_stays_on_device(backend, arrays):
    import array_api_compat

    cm = confusion_matrix(arrays(Y_TRUE, "int64"), arrays(Y_PRED, "int64"), 3)
    assert array_api_compat.device(cm) == backend.device
    assert array_api_compat.array_namespace(cm) == array_api_compat.array_namespace(
        arrays([0], "int64")
    )


def test_confusion_matrix_unused_class_and_int32(arrays):
    cm = confusion_matrix(arrays(Y_TRUE, "int32"), arrays(Y_PRED, "int64"), 5)
    expected = np.zeros((5, 5), dtype=np.int64)
    expected[:3, :3] = CM
    np.testing.assert_array_equal(arrays.host(cm), expected)


def test_confusion_matrix_chunks_add_up(arrays, monkeypatch):
    """Chunk boundaries (here 4 rows per chunk, 7 samples) do not change the counts."""
    monkeypatch.setattr(metrics, "_CHUNK_ELEMENTS", 12)
    cm = confusion_matrix(arrays(Y_TRUE, "int64"), arrays(Y_PRED, "int64"), 3)
    np.testing.assert_array_equal(arrays.host(cm), CM)


def test_confusion_matrix_random_against_loop(arrays):
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    expected = np.zeros((10, 10), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        expected[t, p] += 1
    cm = confusion_matrix(arrays(y_true, "int64"), arrays(y_pred, "int64"), 10)
    np.testing.assert_array_equal(arrays.host(cm), expected)


def test_confusion_matrix_empty(arrays):
    cm = confusion_matrix(arrays([], "int64"), arrays([], "int64"), 2)
    np.testing.assert_array_equal(arrays.host(cm), np.zeros((2, 2)))


def test_accuracy(arrays):
    value = accuracy(arrays(Y_TRUE, "int64"), arrays(Y_PRED, "int64"))
    assert type(value) is float
    assert value == pytest.approx(ACCURACY)


def test_precision_recall_f1_by_hand(backend, arrays):
    import array_api_compat

    scores = precision_recall_f1(arrays(Y_TRUE, "int64"), arrays(Y_PRED, "int64"), 3)
    np.testing.assert_allclose(arrays.host(scores.precision), PRECISION)
    np.testing.assert_allclose(arrays.host(scores.recall), RECALL)
    np.testing.assert_allclose(arrays.host(scores.f1), F1)
    np.testing.assert_array_equal(arrays.host(scores.support), SUPPORT)
    assert scores.support.dtype == index_dtype(arrays.xp, arrays.device)
    np.testing.assert_allclose([float(arrays.host(v)) for v in scores.macro], MACRO)
    np.testing.assert_allclose([float(arrays.host(v)) for v in scores.weighted], WEIGHTED)
    assert array_api_compat.device(scores.f1) == backend.device


def test_never_predicted_class_scores_zero_without_warning(arrays):
    # class 2 is never predicted (precision 0/0), class 3 never occurs (recall 0/0)
    scores = precision_recall_f1(arrays([0, 1, 2, 2], "int64"), arrays([0, 1, 1, 1], "int64"), 4)
    np.testing.assert_allclose(arrays.host(scores.precision), [1.0, 1 / 3, 0.0, 0.0])
    np.testing.assert_allclose(arrays.host(scores.recall), [1.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(arrays.host(scores.f1), [1.0, 0.5, 0.0, 0.0])
    np.testing.assert_array_equal(arrays.host(scores.support), [1, 1, 2, 0])
    assert np.isfinite(arrays.host(scores.precision)).all()


def test_report_dict(arrays):
    report = classification_report(
        arrays(Y_TRUE, "int64"), arrays(Y_PRED, "int64"), 3, output="dict"
    )
    assert list(report) == ["0", "1", "2", "accuracy", "macro avg", "weighted avg"]
    for k, name in enumerate(["0", "1", "2"]):
        row = report[name]
        assert row["precision"] == pytest.approx(PRECISION[k])
        assert row["recall"] == pytest.approx(RECALL[k])
        assert row["f1-score"] == pytest.approx(F1[k])
        assert row["support"] == SUPPORT[k] and type(row["support"]) is int
    assert report["accuracy"] == pytest.approx(ACCURACY)
    for key, expected in (("macro avg", MACRO), ("weighted avg", WEIGHTED)):
        row = report[key]
        assert [row["precision"], row["recall"], row["f1-score"]] == pytest.approx(expected)
        assert row["support"] == 7
    assert json.loads(json.dumps(report)) == report  # plain Python numbers only


def test_report_text(arrays):
    text = classification_report(
        arrays(Y_TRUE, "int64"), arrays(Y_PRED, "int64"), 3, target_names=["cat", "dog", "bird"]
    )
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[1] == ""
    assert lines[2].split() == ["cat", "0.5000", "0.5000", "0.5000", "2"]
    assert lines[3].split() == ["dog", "0.6667", "1.0000", "0.8000", "2"]
    assert lines[4].split() == ["bird", "1.0000", "0.6667", "0.8000", "3"]
    assert lines[5] == ""
    assert lines[6].split() == ["accuracy", "0.7143", "7"]
    assert lines[7].split() == ["macro", "avg", "0.7222", "0.7222", "0.7000", "7"]
    assert lines[8].split() == ["weighted", "avg", "0.7619", "0.7143", "0.7143", "7"]
    # right-aligned columns: every number ends where its header ends
    ends = [lines[0].index(h) + len(h) for h in ("precision", "recall", "f1-score", "support")]
    for line in (lines[2], lines[7], lines[8]):
        assert all(line[end - 1] != " " for end in ends)
        assert len(line) == ends[-1]
    assert lines[6][ends[2] - 6 : ends[2]] == "0.7143"  # accuracy sits in the f1-score column


def test_report_text_digits(arrays):
    text = classification_report(arrays(Y_TRUE, "int64"), arrays(Y_PRED, "int64"), 3, digits=2)
    assert "weighted avg" in text
    assert text.splitlines()[3].split() == ["1", "0.67", "1.00", "0.80", "2"]


def test_report_markdown(arrays):
    md = classification_report(
        arrays(Y_TRUE, "int64"), arrays(Y_PRED, "int64"), 3, output="markdown"
    )
    lines = md.splitlines()
    assert lines[0] == "| class | precision | recall | f1-score | support |"
    assert lines[1] == "|:--|--:|--:|--:|--:|"
    assert lines[2] == "| 0 | 0.5000 | 0.5000 | 0.5000 | 2 |"
    assert lines[5] == "| accuracy |  |  | 0.7143 | 7 |"
    assert lines[6] == "| macro avg | 0.7222 | 0.7222 | 0.7000 | 7 |"
    assert lines[7] == "| weighted avg | 0.7619 | 0.7143 | 0.7143 | 7 |"
    assert len(lines) == 8


def test_report_unknown_output():
    with pytest.raises(ValueError, match=r"'html'.*text, markdown, dict"):
        classification_report(Y_TRUE, Y_PRED, 3, output="html")


def test_report_target_names_length():
    with pytest.raises(ValueError, match="target_names has 2 entries"):
        classification_report(Y_TRUE, Y_PRED, 3, target_names=["a", "b"])


@pytest.mark.parametrize("fn", [confusion_matrix, precision_recall_f1, classification_report])
def test_labels_out_of_range(arrays, fn):
    with pytest.raises(ValueError, match=r"y_true contains label 3.*\[0, 3\)"):
        fn(arrays([0, 1, 3], "int64"), arrays([0, 1, 2], "int64"), 3)
    with pytest.raises(ValueError, match=r"y_pred contains label -1.*\[0, 3\)"):
        fn(arrays([0, 1, 2], "int64"), arrays([0, -1, 2], "int64"), 3)


@pytest.mark.parametrize(
    "fn",
    [
        accuracy,
        lambda a, b: confusion_matrix(a, b, 3),
        lambda a, b: classification_report(a, b, 3, output="dict"),
    ],
)
def test_inconsistent_lengths(arrays, fn):
    message = r"Found input variables with inconsistent numbers of samples: \[3, 2\]"
    with pytest.raises(ValueError, match=message):
        fn(arrays([0, 1, 2], "int64"), arrays([0, 1], "int64"))


def test_inputs_not_modified(arrays):
    y_true, y_pred = arrays(Y_TRUE, "int32"), arrays(Y_PRED, "int64")
    before = arrays.host(y_true).copy(), arrays.host(y_pred).copy()
    confusion_matrix(y_true, y_pred, 3)
    precision_recall_f1(y_true, y_pred, 3)
    classification_report(y_true, y_pred, 3, output="dict")
    accuracy(y_true, y_pred)
    np.testing.assert_array_equal(arrays.host(y_true), before[0])
    np.testing.assert_array_equal(arrays.host(y_pred), before[1])
    assert y_true.dtype == arrays.xp.int32


def test_readonly_numpy_inputs():
    y_true, y_pred = np.array(Y_TRUE), np.array(Y_PRED)
    y_true.flags.writeable = y_pred.flags.writeable = False
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, 3), CM)


def test_lists_and_mixed_inputs(arrays):
    """Lists and NumPy labels follow the other input's backend and device."""
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(ACCURACY)
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED, 3), CM)
    cm = confusion_matrix(np.asarray(Y_TRUE), arrays(Y_PRED, "int64"), 3)
    np.testing.assert_array_equal(arrays.host(cm), CM)
    cm = confusion_matrix(arrays(Y_TRUE, "int64"), Y_PRED, 3)
    np.testing.assert_array_equal(arrays.host(cm), CM)


def test_float_labels_rejected(arrays):
    with pytest.raises(TypeError, match="integer class labels"):
        confusion_matrix(arrays([0.0, 1.0]), arrays([0, 1], "int64"), 2)


def test_empty_inputs_rejected_where_undefined(arrays):
    empty = arrays([], "int64")
    with pytest.raises(ValueError, match="empty"):
        accuracy(empty, empty)
    with pytest.raises(ValueError, match="empty"):
        classification_report(empty, empty, 2)


def test_target_names_must_not_clash():
    with pytest.raises(ValueError, match="unique"):
        classification_report(Y_TRUE, Y_PRED, 3, target_names=["a", "a", "b"])
    with pytest.raises(ValueError, match="accuracy"):
        classification_report(Y_TRUE, Y_PRED, 3, target_names=["a", "accuracy", "b"])
