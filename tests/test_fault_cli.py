"""Fault injection on the ``softmax-xp`` command: path arguments that are empty, files where
folders should be and the reverse, devices, models of another size, folder names that are not
UTF-8. Each is one line on stderr and exit 2, and nothing is written where it should not be."""

from __future__ import annotations

import errno
import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest

import softmax_xp.cli as cli
from softmax_xp import SoftmaxXP
from softmax_xp.cli import main
from softmax_xp.cli._rundir import RunFolder
from softmax_xp.solvers.sgd import sgd_epoch as real_sgd_epoch

pytestmark = pytest.mark.usefixtures("mnist_read_once", "in_empty_folder")

SMALL = ["--limit", "300", "--epochs", "2", "--backend", "numpy", "--quiet", "--no-plots"]


def run(argv: list[str], capsys) -> tuple[int, str]:
    """``main(argv)``'s exit code and stderr; no exception but SystemExit may escape."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def one_line_error(code: int, err: str, command: str) -> str:
    """The error line, checked to be the last line on stderr, with exit code 2."""
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"softmax-xp {command}: error: "), err
    return last


@pytest.fixture
def model_file(tmp_path) -> Path:
    return SoftmaxXP(784, 10, backend="numpy", seed=0).save(tmp_path / "model.npz")


@pytest.fixture
def digit(tmp_path) -> Path:
    path = tmp_path / "digit.npy"
    np.save(path, np.eye(28, dtype=np.uint8) * 255)
    return path


# -- path arguments -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["train", *SMALL, "--out", ""], "--out"),
        (["train", *SMALL, "--data-dir", " "], "--data-dir"),
        (["evaluate", "--model", ""], "--model"),
        (["predict", "--model", "", "x.npy"], "--model"),
        (["predict", "--model", "m.npz", ""], "FILE"),
    ],
)
def test_an_empty_path_is_refused_not_read_as_the_current_folder(
    argv, flag, tmp_path, monkeypatch, capsys
):
    """``--out "$OUT"`` with OUT unset must not train into the current folder."""
    monkeypatch.chdir(tmp_path)
    code, err = run(argv, capsys)
    assert code == 2 and f"argument {flag}: is empty; give a path" in err
    assert list(tmp_path.iterdir()) == []


def test_a_tilde_in_out_is_the_home_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert main(["train", *SMALL, "--out", "~/run"]) == 0
    assert (tmp_path / "home" / "run" / "model.npz").is_file()
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize(
    "case", ["a file", "under a file", "name too long", "read-only", "broken link"]
)
def test_an_out_that_cannot_hold_a_run_names_the_flag(case, tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("mine")
    out = {
        "a file": tmp_path / "file",
        "under a file": tmp_path / "file" / "run",
        "name too long": tmp_path / ("x" * 300),
        "read-only": tmp_path / "ro",
        "broken link": tmp_path / "link",
    }[case]
    if case == "broken link":
        (tmp_path / "link").symlink_to(tmp_path / "gone")
    if case == "read-only":

        def lock(self):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self.path))

        monkeypatch.setattr(RunFolder, "lock", lock)
    code, err = run(["train", *SMALL, "--out", str(out)], capsys)
    line = one_line_error(code, err, "train")
    why = {"a file": "is a file, not a folder", "broken link": "is a broken symbolic link"}.get(
        case, "cannot be created or written"
    )
    assert f"--out {out} {why}" in line and "give a folder you can write to" in line
    assert (tmp_path / "file").read_text() == "mine"


# -- predict and evaluate -------------------------------------------------------------------------
def test_predict_on_a_folder_says_to_name_its_images(model_file, tmp_path, capsys):
    folder = tmp_path / "digits"
    folder.mkdir()
    np.save(folder / "a.npy", np.ones(784, dtype=np.float32))
    (folder / "notes.txt").write_text("not an image")
    code, err = run(["predict", "--model", str(model_file), str(folder)], capsys)
    line = one_line_error(code, err, "predict")
    assert "is a folder, not an image file" in line and f"{folder}/*.png" in line


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null here")
def test_predict_on_a_device_says_it_is_not_a_file(model_file, capsys):
    code, err = run(["predict", "--model", str(model_file), "/dev/null"], capsys)
    assert "'/dev/null' is not a regular file" in one_line_error(code, err, "predict")


def test_predict_on_an_empty_stack_names_the_file(model_file, tmp_path, capsys):
    np.save(tmp_path / "none.npy", np.zeros((0, 784), dtype=np.float32))
    code, err = run(["predict", "--model", str(model_file), str(tmp_path / "none.npy")], capsys)
    assert f"{tmp_path / 'none.npy'}: holds no images" in one_line_error(code, err, "predict")


@pytest.mark.parametrize(
    ("command", "shape", "message"),
    [
        ("predict", (20, 10), "takes 20 features, not the 784 pixels of a 28x28 image"),
        ("evaluate", (20, 10), "takes 20 features, not the 784 pixels of a 28x28 image"),
        ("evaluate", (784, 3), "has 3 classes, not the 10 digits of the test set"),
    ],
)
def test_a_model_of_another_size_is_named(command, shape, message, digit, tmp_path, capsys):
    path = SoftmaxXP(*shape, backend="numpy", seed=0).save(tmp_path / "other.npz")
    extra = [str(digit)] if command == "predict" else []
    code, err = run([command, "--model", str(path), *extra], capsys)
    assert f"--model {path} {message}" in one_line_error(code, err, command)


def test_predict_with_a_model_of_other_classes_still_works(digit, tmp_path, capsys):
    """A 784-input model of 3 classes predicts pictures (a user's own digits 0-2)."""
    path = SoftmaxXP(784, 3, backend="numpy", seed=0).save(tmp_path / "three.npz")
    assert main(["predict", "--model", str(path), str(digit)]) == 0
    assert "(0:" in capsys.readouterr().out


# -- non-UTF-8 folder names -----------------------------------------------------------------------
def test_an_interrupted_run_in_a_folder_named_in_other_bytes_is_saved(
    tmp_path, monkeypatch, internals
):
    """report.md names the folder ("--resume --out <folder>"): undecodable bytes in that name
    must not make the save fail and lose the completed epochs."""
    out = Path(os.fsdecode(bytes(tmp_path) + b"/run-\xff"))
    try:
        out.mkdir()
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    calls = {"n": 0}

    def interrupt_on_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_sgd_epoch(*args, **kwargs)

    internals.patch_sgd_epoch(interrupt_on_second_epoch)
    assert main(["train", *SMALL, "--out", str(out)]) == cli.EXIT_INTERRUPTED
    report = json.loads((out / "report.json").read_text())
    assert report["epochs_completed"] == 1
    assert b"--out " + os.fsencode(out) in (out / "report.md").read_bytes()


# -- resume on other data -------------------------------------------------------------------------
def synthetic_mnist(directory: Path, seed: int) -> Path:
    """Random images in MNIST's layout: 10,050 training images (50 beyond the validation set)."""
    from softmax_xp.datasets import MNIST_FILES, write_idx

    rng = np.random.default_rng(seed)
    directory.mkdir()
    for name, n in zip(MNIST_FILES, (10_050, 10_050, 10, 10), strict=True):
        shape = (n, 28, 28) if "images" in name else (n,)
        write_idx(
            directory / name, rng.integers(0, 256 if "images" in name else 10, shape, np.uint8)
        )
    return directory


def test_resume_with_another_data_dir_of_the_same_size_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    first = ["train", *SMALL, "--epochs", "1", "--out", str(out)]
    assert main([*first, "--data-dir", str(synthetic_mnist(tmp_path / "a", 0))]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other = str(synthetic_mnist(tmp_path / "b", 1))
    resume = ["train", *SMALL, "--resume", "--out", str(out), "--data-dir", other]
    code, err = run(resume, capsys)
    line = one_line_error(code, err, "train")
    assert f"--resume: the run in {out} was trained on other data than this one" in line
    assert "give the --data-dir and --limit of that run" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# -- out of memory --------------------------------------------------------------------------------
@pytest.mark.parametrize("at", [1, 2])
def test_out_of_memory_in_training_is_one_line_saying_what_is_kept(
    at, tmp_path, monkeypatch, capsys, internals
):
    calls = {"n": 0}

    def sgd_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at:
            raise MemoryError("Unable to allocate 1.2 GiB for an array")
        return real_sgd_epoch(*args, **kwargs)

    internals.patch_sgd_epoch(sgd_epoch)
    out = tmp_path / "run"
    code, err = run(["train", *SMALL, "--out", str(out)], capsys)
    line = one_line_error(code, err, "train")
    assert "out of memory while training (Unable to allocate 1.2 GiB" in line
    assert "try a smaller --batch-size or --limit" in line
    if at == 1:
        assert "Nothing was written" in line and not out.exists()
    else:
        assert f"{out / 'checkpoint.npz'} (--resume continues them)" in line
        monkeypatch.undo()
        assert main(["train", *SMALL, "--resume", "--out", str(out)]) == 0
        assert json.loads((out / "report.json").read_text())["epochs_completed"] == 2


def test_out_of_memory_in_predict_is_one_line(model_file, digit, monkeypatch, capsys):
    def predict_proba(self, X, **kwargs):
        raise MemoryError("Unable to allocate 8.0 GiB")

    monkeypatch.setattr(SoftmaxXP, "predict_proba", predict_proba)
    code, err = run(["predict", "--model", str(model_file), str(digit)], capsys)
    assert "Unable to allocate 8.0 GiB" in one_line_error(code, err, "predict")


# -- figures --------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage", ["drawing", "saving"])
def test_a_figure_that_fails_costs_only_that_figure(stage, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    import softmax_xp.plots as plots
    from softmax_xp.cli._rundir import FIGURES

    def broken(*args, **kwargs):
        raise RuntimeError("the font cache is broken")

    for name in FIGURES:  # small stand-ins, each titled with its name, keep the test quick
        monkeypatch.setattr(plots, f"plot_{name}", functools.partial(_titled, plots, name))
    if stage == "drawing":
        monkeypatch.setattr(plots, "plot_weight_templates", broken)
    else:
        real_save = plots.save_png

        def save_png(fig, file):
            if fig.axes[0].get_title() == "weight_templates":
                broken()
            real_save(fig, file)

        monkeypatch.setattr(plots, "save_png", save_png)
    out = tmp_path / "run"
    argv = [a for a in SMALL if a != "--no-plots"]
    assert main(["train", *argv, "--epochs", "1", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "no weight_templates.png: RuntimeError: the font cache is broken" in err
    assert (out / "model.npz").is_file() and (out / "report.json").is_file()
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(set(FIGURES) - {"weight_templates"})
    assert "and 5 figures" in err


def _titled(plots, title, *args, **kwargs):
    fig = plots._pyplot().figure(figsize=(1, 1))
    fig.add_subplot().set_title(title)
    return fig


def test_resume_from_a_damaged_checkpoint_says_how_to_go_on(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(out)]) == 0
    checkpoint = out / "checkpoint.npz"
    checkpoint.write_bytes(checkpoint.read_bytes()[:500])  # a disk error, a copy cut short
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, err = run(["train", *SMALL, "--resume", "--out", str(out)], capsys)
    line = one_line_error(code, err, "train")
    assert f"--resume: {checkpoint}: not a readable .npz file" in line
    assert "give --overwrite instead of --resume to start the run again" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main(["train", *SMALL, "--overwrite", "--out", str(out)]) == 0


def test_predict_on_mixed_files_predicts_the_images_and_names_each_other_file(
    model_file, digit, tmp_path, capsys
):
    """``softmax-xp predict --model m.npz digits/*`` with a README among the digits."""
    pytest.importorskip("PIL")  # without Pillow, no file can be told to be no picture
    notes, folder = tmp_path / "notes.txt", tmp_path / "sub"
    notes.write_text("not an image")
    folder.mkdir()
    files = [notes, digit, folder, digit]
    code = exit_code_of(["predict", "--model", str(model_file), *map(str, files)])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err
    assert [line.split(":")[0] for line in captured.out.splitlines()] == [str(digit)] * 2
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("softmax-xp predict: error: ") for e in errors)
    assert f"{notes}: not a readable image" in errors[0] and "is a folder" in errors[1]


def test_predict_without_pillow_reads_the_arrays_and_names_the_pictures_in_one_line(
    model_file, digit, tmp_path, capsys, monkeypatch
):
    import softmax_xp.cli._images as images

    def no_pillow():
        raise ImportError('Reading PNG/JPEG images needs Pillow: pip install "softmax-xp[plot]".')

    monkeypatch.setattr(images, "_pillow", no_pillow)
    pictures = [tmp_path / f"{k}.png" for k in range(5)]
    for picture in pictures:
        picture.write_bytes(b"\x89PNG\r\n\x1a\n")
    code = exit_code_of(["predict", "--model", str(model_file), *map(str, [*pictures, digit])])
    captured = capsys.readouterr()
    assert code == 2 and captured.out.startswith(f"{digit}: ")
    (error,) = captured.err.strip().splitlines()
    assert f"5 file(s) not read ({pictures[0]}, {pictures[1]}, {pictures[2]}, ...)" in error
    assert "needs Pillow" in error


def exit_code_of(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_resume_from_a_checkpoint_of_another_model_size_is_named(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    rng = np.random.default_rng(0)
    X, y = rng.random((30, 20)).astype(np.float32), rng.integers(0, 10, 30)
    SoftmaxXP(20, 10, backend="numpy", seed=0).train(
        X, y, epochs=1, checkpoint=out / "checkpoint.npz"
    )
    code, err = run(["train", *SMALL, "--resume", "--out", str(out)], capsys)
    line = one_line_error(code, err, "train")
    assert "is the checkpoint of a model of 20 features and 10 classes" in line
    assert "give --overwrite instead of --resume" in line and "resume_from=" not in line


def test_a_reader_that_stops_early_ends_predict_quietly(model_file, tmp_path):
    """``softmax-xp predict ... | head -1``: no "Broken pipe" error, exit 141 (128 + SIGPIPE)."""
    import subprocess
    import sys

    rng = np.random.default_rng(0)
    np.save(tmp_path / "many.npy", rng.random((3000, 784), dtype=np.float32))
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    argv = ["predict", "--model", str(model_file), str(tmp_path / "many.npy")]
    with subprocess.Popen(
        [sys.executable, "-m", "softmax_xp", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        assert process.stdout.readline().startswith(f"{tmp_path / 'many.npy'}[0]: ".encode())
        process.stdout.close()
        err = process.stderr.read().decode()
        assert process.wait(timeout=120) == cli.EXIT_BROKEN_PIPE, err
    assert err == ""


def test_a_data_file_without_read_permission_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    """(chmod 000 cannot be tested as root: the file's open is made to fail as it would.)"""
    import builtins

    import softmax_xp.datasets.idx as idx

    data_dir = synthetic_mnist(tmp_path / "data", 0)
    locked = data_dir / "t10k-labels-idx1-ubyte"

    def open_(file, *args, **kwargs):
        if Path(file) == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(idx, "open", open_, raising=False)
    model = SoftmaxXP(784, 10, backend="numpy", seed=0).save(tmp_path / "m.npz")
    code, err = run(["evaluate", "--model", str(model), "--data-dir", str(data_dir)], capsys)
    line = one_line_error(code, err, "evaluate")
    assert f"Permission denied: '{locked}'" in line


def test_a_full_disk_during_training_says_what_is_kept(tmp_path, monkeypatch, capsys):
    """The checkpoint of epoch 2 cannot be written: epoch 1's stays, and --resume continues."""
    real_replace, calls = os.replace, {"n": 0}

    def replace(source, target):
        if Path(target).name == "checkpoint.npz":
            calls["n"] += 1
            if calls["n"] == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "run"
    code, err = run(["train", *SMALL, "--out", str(out)], capsys)
    line = one_line_error(code, err, "train")
    checkpoint = out / "checkpoint.npz"
    assert f"cannot write {checkpoint}: No space left on device." in line
    assert f"The completed epochs are in {checkpoint} (--resume continues them)." in line
    monkeypatch.setattr(os, "replace", real_replace)
    assert main(["train", *SMALL, "--resume", "--out", str(out)]) == 0
    assert json.loads((out / "report.json").read_text())["resumed_from_epoch"] == 1


@pytest.mark.parametrize("code", ["ENOLCK", "EOPNOTSUPP"])
def test_a_file_system_without_locks_still_trains(code, tmp_path, monkeypatch, capsys):
    """Some network file systems refuse flock: the run goes on unlocked (as on Windows)."""
    fcntl = pytest.importorskip("fcntl")
    number = getattr(errno, code)

    def flock(fd, operation):
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(fcntl, "flock", flock)
    assert main(["train", *SMALL, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "model.npz").is_file()


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_the_no_fallback_flag_the_warning_names_exists_for_every_command(
    command, model_file, digit, capsys
):
    """The fallback warning says "pass --no-fallback": evaluate and predict accept it too."""
    from softmax_xp._backend import _problem

    if _problem("cupy") is None:
        pytest.skip("this machine runs CuPy")
    extra = [str(digit)] if command == "predict" else []
    argv = [command, "--model", str(model_file), "--backend", "cupy", *extra]
    assert main(argv) == 0
    assert "pass --no-fallback to raise instead" in capsys.readouterr().err
    code, err = run([*argv, "--no-fallback"], capsys)
    line = one_line_error(code, err, command)
    assert "--backend cupy --no-fallback: Backend 'cupy' is unavailable" in line
