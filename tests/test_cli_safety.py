"""``softmax-xp train`` never loses a good model: earlier runs, interruptions (Ctrl-C, SIGTERM,
SIGHUP, a second signal during the save), divergence, full disks, two runs in one folder, stray
temporary files, file modes; resume settings, data-set sizes, and messages in CLI words."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import softmax_xp.cli as cli
from softmax_xp import SoftmaxXP
from softmax_xp._atomic import AtomicBatch
from softmax_xp._backend import _problem
from softmax_xp.cli import cli_words, main
from softmax_xp.cli._rundir import LOCK_NAME, RunFolder
from softmax_xp.datasets import MNIST_FILES, load_mnist
from softmax_xp.datasets.idx import write_idx
from softmax_xp.solvers.sgd import sgd_epoch as real_sgd_epoch

pytestmark = pytest.mark.usefixtures("mnist_read_once", "in_empty_folder")

SMALL = ["--limit", "3000", "--epochs", "2", "--backend", "numpy", "--quiet", "--no-plots"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    """A finished small run, never modified: tests copy it."""
    out = tmp_path_factory.mktemp("good") / "run"
    assert main(["train", *SMALL, "--out", str(out)]) == 0
    return out


@pytest.fixture
def earlier(good_run, tmp_path) -> Path:
    """A private copy of the finished run."""
    out = tmp_path / "run"
    shutil.copytree(good_run, out)
    return out


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != LOCK_NAME}


def exit_code(argv: list[str]) -> int:
    """main(argv)'s exit code, whether returned or raised by argparse's exit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def fail_on_call(internals, call: int, make_error) -> None:
    """The ``call``-th SGD epoch raises ``make_error()`` (or returns its result, if it is one)."""
    calls = {"n": 0}

    def sgd_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise make_error()
        return real_sgd_epoch(*args, **kwargs)

    internals.patch_sgd_epoch(sgd_epoch)


# -- an earlier run is never replaced by accident -------------------------------------------------
def test_an_out_holding_an_earlier_run_is_refused(earlier, capsys):
    before = files_of(earlier)
    assert exit_code(["train", *SMALL, "--seed", "1", "--out", str(earlier)]) == 2
    err = capsys.readouterr().err
    assert "holds an earlier run (model.npz" in err and "--overwrite" in err and "--resume" in err
    assert len(err.strip().splitlines()) == 1
    assert files_of(earlier) == before


def test_overwrite_replaces_the_earlier_run(earlier):
    before = files_of(earlier)
    assert main(["train", *SMALL, "--seed", "1", "--overwrite", "--out", str(earlier)]) == 0
    after = files_of(earlier)
    assert after["model.npz"] != before["model.npz"]
    assert json.loads(after["report.json"])["seed"] == 1


def test_overwrite_removes_figures_it_does_not_redraw(earlier):
    (earlier / "sigmoid.png").write_bytes(b"an old figure")
    assert main(["train", *SMALL, "--overwrite", "--out", str(earlier)]) == 0
    assert not (earlier / "sigmoid.png").exists()


@pytest.mark.parametrize("mode", ["--overwrite", "--resume"])
def test_zero_epochs_never_replace_the_model(earlier, capsys, mode):
    """An --epochs 0 run would write an untrained model over the good one (accuracy 0.08)."""
    before = files_of(earlier)
    argv = ["train", "--backend", "numpy", "--quiet", "--epochs", "0", mode, "--out", str(earlier)]
    assert exit_code(argv) == 2
    assert "--epochs: must be a positive integer (1 or more), got 0" in capsys.readouterr().err
    assert files_of(earlier) == before


def test_malformed_counts_are_named(tmp_path, capsys):
    assert exit_code(["train", "--batch-size", "abc", "--out", str(tmp_path)]) == 2
    assert "argument --batch-size: invalid int value: 'abc'" in capsys.readouterr().err


def test_resume_and_overwrite_exclude_each_other(tmp_path, capsys):
    assert exit_code(["train", "--resume", "--overwrite", "--out", str(tmp_path)]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_help_states_the_convention(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("--overwrite", "--resume", "must not hold an earlier run", "SIGTERM", "143"):
        assert phrase in text, phrase


# -- interruptions ------------------------------------------------------------------------------
def test_interrupt_before_the_first_epoch_keeps_the_earlier_model(
    earlier, monkeypatch, capsys, internals
):
    before = files_of(earlier)
    fail_on_call(internals, 1, KeyboardInterrupt)
    argv = ["train", *SMALL, "--epochs", "5", "--overwrite", "--out", str(earlier)]
    assert main(argv) == 130
    captured = capsys.readouterr()
    assert "no epoch completed, so nothing was written" in captured.err
    assert "test accuracy" not in captured.out
    assert files_of(earlier) == before


def test_an_interrupted_report_says_how_many_epochs_it_has(
    tmp_path, monkeypatch, capsys, internals
):
    fail_on_call(internals, 3, KeyboardInterrupt)
    assert main(["train", *SMALL, "--epochs", "5", "--out", str(tmp_path)]) == 130
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("test accuracy: 0.")
    assert "interrupted by Ctrl-C after 2 of 5 epochs" in first and "partial" in first
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "interrupted" and report["interrupted"] is True
    assert (report["epochs_completed"], report["epochs"]) == (2, 5)
    assert report["summary"] == "interrupted by Ctrl-C after 2 of 5 epochs"
    assert "interrupted by Ctrl-C after 2 of 5 epochs" in (tmp_path / "report.md").read_text()
    assert SoftmaxXP.load(tmp_path / "model.npz").score(*load_mnist()[1]) == report["test_accuracy"]


def test_a_complete_run_prints_its_accuracy_plainly(good_run):
    report = json.loads((good_run / "report.json").read_text())
    assert report["status"] == "complete" and report["summary"] == "complete: 2 of 2 epochs"
    assert "of 2 epochs" in (good_run / "report.md").read_text()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A small data set in MNIST's layout that loads fast (no checksums) in a subprocess."""
    return _idx_dir(tmp_path_factory.mktemp("data") / "mnist", 10_500, 200)


def _start(out: Path, data: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    argv = ["train", "--data-dir", str(data), "--epochs", "100000", "--backend", "numpy", "--quiet"]
    return subprocess.Popen(
        [sys.executable, "-m", "softmax_xp", *argv, "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_default_signals,  # a background test runner may have them ignored
    )


def _default_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_saves_the_completed_epochs(tmp_path, data_dir, name):
    signum = getattr(signal, name)
    process = _start(tmp_path, data_dir, "--no-plots")
    _wait_for(tmp_path / "checkpoint.npz", process)  # written after epoch 1
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, err
    assert "Traceback" not in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "interrupted" and report["epochs_completed"] >= 1
    who = "Ctrl-C" if name == "SIGINT" else name
    assert f"interrupted by {who} after {report['epochs_completed']} of 100000 epochs" in out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sighup_from_a_closed_terminal_still_saves(tmp_path, data_dir):
    process = _start(tmp_path, data_dir, "--no-plots")
    _wait_for(tmp_path / "checkpoint.npz", process)
    process.stdout.close()  # the terminal is gone: every message now fails with EPIPE
    process.stderr.close()
    process.send_signal(signal.SIGHUP)
    assert process.wait(timeout=60) == 128 + signal.SIGHUP
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "interrupted" and "SIGHUP" in report["summary"]
    SoftmaxXP.load(tmp_path / "model.npz")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_second_ctrl_c_during_the_save_waits_for_it(tmp_path, data_dir):
    pytest.importorskip("matplotlib")  # the figures make the save long enough to hit it
    process = _start(tmp_path, data_dir)
    _wait_for(tmp_path / "checkpoint.npz", process)
    process.send_signal(signal.SIGINT)
    for line in process.stderr:  # the save has begun
        if "saving the" in line:
            break
    for _ in range(3):
        process.send_signal(signal.SIGINT)
        time.sleep(0.02)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "still saving, please wait" in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "interrupted"
    SoftmaxXP.load(tmp_path / "model.npz")
    assert len(list(tmp_path.glob("*.png"))) == 6 and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_signal_ignored_at_start_stays_ignored(monkeypatch):
    from softmax_xp.cli._signals import Interruptions

    monkeypatch.setattr(
        signal, "getsignal", lambda s: signal.SIG_IGN if s == signal.SIGHUP else None
    )
    installed = []
    monkeypatch.setattr(signal, "signal", lambda s, h: installed.append(s))
    with Interruptions(print):
        pass
    assert signal.SIGHUP not in installed and signal.SIGTERM in installed


# -- divergence ---------------------------------------------------------------------------------
def test_divergence_keeps_the_last_finite_epoch(tmp_path, monkeypatch, capsys, internals):
    def diverging(*args, **kwargs):
        W, b, velocity, losses = real_sgd_epoch(*args, **kwargs)
        return W, b, velocity, losses + float("inf")

    calls = {"n": 0}

    def sgd_epoch(*args, **kwargs):
        calls["n"] += 1
        return (diverging if calls["n"] == 3 else real_sgd_epoch)(*args, **kwargs)

    internals.patch_sgd_epoch(sgd_epoch)
    assert exit_code(["train", *SMALL, "--epochs", "5", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    error = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(error) == 1 and "Traceback" not in captured.err
    assert "Training diverged in epoch 3" in error[0] and "Saved epoch 2" in error[0]
    assert "--lr 0.01" in error[0] and "lr=" not in error[0]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "diverged" and report["epochs_completed"] == 2
    assert "diverged in epoch 3" in captured.out.splitlines()[0]
    SoftmaxXP.load(tmp_path / "model.npz")


def test_a_huge_lr_is_a_one_line_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert exit_code(["train", *SMALL, "--lr", "1e10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 2  # banner, error
    assert "Training diverged in epoch 1" in err and "nothing was written" in err
    assert not out.exists()


# -- files: atomic, complete, named in errors, the user's umask, no strays -----------------------
def test_a_full_disk_names_the_file_and_keeps_the_earlier_run(earlier, monkeypatch, capsys):
    before = files_of(earlier)
    real_add = AtomicBatch.add

    def add(self, path, write):
        if Path(path).name == "report.json":

            def write(f):  # the disk fills up half-way through the report
                f.write(b'{"test_accuracy": 0.')
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return real_add(self, path, write)

    monkeypatch.setattr(AtomicBatch, "add", add)
    assert exit_code(["train", *SMALL, "--overwrite", "--out", str(earlier)]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {earlier / 'report.json'}: No space left on device" in err
    # nothing replaced (the new model.npz was staged, then discarded), nothing left over
    checkpoint = before.pop("checkpoint.npz")
    after = files_of(earlier)
    assert after.pop("checkpoint.npz") != checkpoint  # the new run's own, written per epoch
    assert after == before


def test_stray_temporary_files_are_removed(earlier, capsys):
    stray = earlier / ".model.npz.1a2b3c4d.tmp"
    stray.write_bytes(b"half a model")
    assert main(["train", *SMALL, "--overwrite", "--out", str(earlier)]) == 0
    assert not stray.exists() and f"removed {stray}" in capsys.readouterr().err


def test_files_get_the_users_umask(tmp_path):
    old = os.umask(0o027)
    try:
        assert main(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path)]) == 0
        if importlib.util.find_spec("matplotlib"):
            from softmax_xp import plots

            plots.plot_sigmoid(path=tmp_path / "sigmoid.png")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert set(modes.values()) == {0o640}, modes
    assert {"model.npz", "checkpoint.npz", "report.json", "report.md"} <= set(modes)


def test_a_second_run_into_the_same_out_is_refused(tmp_path, capsys):
    with RunFolder(tmp_path):
        assert exit_code(["train", *SMALL, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"is in use by another softmax-xp train (pid {os.getpid()})" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_the_lock_of_a_killed_run_is_not_stale(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from softmax_xp.cli._rundir import RunFolder; "
            "RunFolder(sys.argv[1]).lock(); print('locked', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert holder.stdout.readline().strip() == "locked"
    assert exit_code(["train", *SMALL, "--out", str(tmp_path)]) == 2
    holder.kill()  # kill -9: the kernel drops its lock
    holder.wait()
    assert main(["train", *SMALL, "--out", str(tmp_path)]) == 0


# -- resume ---------------------------------------------------------------------------------------
def test_resume_takes_the_settings_of_the_run(tmp_path, capsys):
    assert main(["train", *SMALL, "--epochs", "1", "--seed", "5", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    argv = ["train", "--backend", "numpy", "--quiet", "--no-plots", "--resume"]
    assert main([*argv, "--epochs", "2", "--out", str(tmp_path)]) == 0  # no --seed, no --limit
    assert "resuming from epoch 1 of 2" in capsys.readouterr().err
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["seed"], report["train_size"], report["epochs_completed"]) == (5, 3000, 2)
    assert report["resumed_from_epoch"] == 1


def test_resume_after_kill_9_finishes_the_run_it_was(tmp_path, monkeypatch, capsys, internals):
    fail_on_call(internals, 3, KeyboardInterrupt)
    assert main(["train", *SMALL, "--epochs", "5", "--seed", "2", "--out", str(tmp_path)]) == 130
    for name in ("model.npz", "report.json", "report.md"):  # as if killed before the save
        (tmp_path / name).unlink()
    internals.patch_sgd_epoch(real_sgd_epoch)
    capsys.readouterr()
    assert main(["train", "--backend", "numpy", "--quiet", "--resume", "--out", str(tmp_path)]) == 0
    assert "resuming from epoch 2 of 5" in capsys.readouterr().err
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["epochs_completed"], report["seed"], report["train_size"]) == (5, 2, 3000)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--seed", "3"], "trained with --seed 0, not --seed 3"),
        (["--lr", "0.5"], "trained with --lr 0.1, not --lr 0.5"),
        (["--fast"], "trained with --lr 0.1, --momentum 0.0"),
        (["--limit", "2000"], "trained on 3000 images, this one would use 2000"),
    ],
)
def test_resume_refuses_flags_that_contradict_the_run(tmp_path, capsys, flags, message):
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path)]) == 0
    before = files_of(tmp_path)
    capsys.readouterr()
    argv = ["train", "--backend", "numpy", "--quiet", "--resume", "--out", str(tmp_path)]
    assert exit_code([*argv, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert files_of(tmp_path) == before


# -- data sets and messages -------------------------------------------------------------------
def _idx_dir(folder: Path, n_train: int, n_test: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in zip(MNIST_FILES[::2], (n_train, n_test), strict=True):
        write_idx(folder / name, rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
    for name, n in zip(MNIST_FILES[1::2], (n_train, n_test), strict=True):
        write_idx(folder / name, rng.integers(0, 10, size=n, dtype=np.uint8))
    return folder


def test_an_empty_test_set_is_found_before_training(tmp_path, monkeypatch, capsys):
    data = _idx_dir(tmp_path / "data", 10_100, 0)
    monkeypatch.setattr(SoftmaxXP, "train", lambda *a, **k: pytest.fail("trained"))
    out = tmp_path / "run"
    assert exit_code(["train", *SMALL, "--data-dir", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--data-dir {data}: the test set (t10k-images-idx3-ubyte" in err
    assert "has no images" in err and not out.exists()


def test_a_small_training_set_is_explained_in_cli_words(tmp_path, capsys):
    data = _idx_dir(tmp_path / "data", 500, 20)
    assert exit_code(["train", *SMALL, "--data-dir", str(data), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "the training set (train-images-idx3-ubyte) has 500 images" in err
    assert "more than 10,000" in err and "n_val" not in err


def test_missing_mnist_keeps_the_whole_message_in_cli_words(tmp_path, monkeypatch, capsys):
    import softmax_xp.datasets.mnist as mnist

    monkeypatch.setattr(cli.data, "load_mnist", mnist.load_mnist)  # the real search, not the cache
    monkeypatch.setattr(mnist, "bundled_dir", lambda: tmp_path / "bundled")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SOFTMAX_XP_DATA", raising=False)
    assert exit_code(["train", *SMALL, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "Looked in:" in err and "(bundled): missing" in err and "(cache): missing" in err
    assert "Pass --download to download MNIST" in err and "download=True" not in err
    assert exit_code(["train", "--data-dir", str(tmp_path / "none"), "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert "(--data-dir): missing" in err and "Pass --download" in err and "=" not in err


needs_no_cupy = pytest.mark.skipif(_problem("cupy") is None, reason="this machine runs CuPy")


@needs_no_cupy
def test_no_fallback_fails_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli.data, "load_mnist", lambda *a, **k: pytest.fail("loaded the data"))
    out = tmp_path / "run"
    argv = ["train", "--backend", "cupy", "--no-fallback", "--out", str(out)]
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert "--backend cupy --no-fallback: Backend 'cupy' is unavailable" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


@needs_no_cupy
def test_the_fallback_warning_names_the_flag(tmp_path, capsys):
    argv = ["train", *SMALL, "--backend", "cupy", "--epochs", "1", "--out", str(tmp_path)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "pass --no-fallback to raise instead" in err and "fallback=False" not in err


@pytest.mark.parametrize(
    ("python", "cli_text"),
    [
        ("Pass download=True to download", "Pass --download to download"),
        ("(pass fallback=False to raise instead)", "(pass --no-fallback to raise instead)"),
        ("Try a smaller lr, e.g. lr=1e+09.", "Try a smaller lr, e.g. --lr 1e+09."),
        ("got device='cuda'. Use device=None.", "got --device cuda. Leave out --device."),
        ("lower batch_size=256 or", "lower --batch-size 256 or"),
        ("chunk_size=4 stays", "chunk_size=4 stays"),
        ("lr_decay must be a finite number", "--lr-decay must be a finite number"),
    ],
)
def test_cli_words(python, cli_text):
    assert cli_words(python) == cli_text


def test_without_matplotlib_no_figures_are_claimed(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["train", *SMALL[:-1], "--epochs", "1", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert 'no figures: matplotlib is required for plotting: pip install "softmax-xp[plot]"' in err
    wrote = [line for line in err.splitlines() if line.startswith("wrote")]
    assert wrote == [f"wrote model.npz, report.json, report.md to {tmp_path}"]
    assert not list(tmp_path.glob("*.png"))
