"""The one atomic writer (softmax_xp._atomic): whole files or none, the user's umask, errors that
name the file, batches that replace nothing until all are written, stray temporaries removed."""

from __future__ import annotations

import errno
import os
import re
import sys

import pytest

from softmax_xp import SoftmaxXP
from softmax_xp._atomic import AtomicBatch, remove_stale_temporaries, write_atomic

posix_modes = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def disk_full(f):
    f.write(b"half")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_write_atomic_replaces_the_file(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    write_atomic(path, lambda f: f.write(b"one"))
    write_atomic(path, lambda f: f.write(b"two"))
    assert path.read_bytes() == b"two" and os.listdir(path.parent) == ["a.txt"]


def test_a_full_disk_keeps_the_old_file_and_names_it(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old")
    message = re.escape(f"cannot write {path}: No space left on device")
    with pytest.raises(OSError, match=message) as info:
        write_atomic(path, disk_full)
    assert info.value.errno == errno.ENOSPC
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["report.json"]


def test_a_failed_fsync_names_the_file(tmp_path, monkeypatch):
    def fsync(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match=r"cannot write .*model\.npz: Input/output error"):
        SoftmaxXP(4, 2, backend="numpy").save(tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []


def test_an_interrupt_removes_the_temporary_file(tmp_path):
    def interrupted(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "a", interrupted)
    assert os.listdir(tmp_path) == []


def test_a_batch_replaces_nothing_until_every_file_is_written(tmp_path):
    for name in ("model.npz", "report.json", "report.md"):
        (tmp_path / name).write_text(f"old {name}")
    with pytest.raises(OSError, match=r"report\.md"), AtomicBatch() as batch:
        batch.add(tmp_path / "model.npz", lambda f: f.write(b"new"))
        batch.add(tmp_path / "report.json", lambda f: f.write(b"new"))
        batch.add(tmp_path / "report.md", disk_full)
    assert sorted(os.listdir(tmp_path)) == ["model.npz", "report.json", "report.md"]
    assert all(p.read_text().startswith("old") for p in tmp_path.iterdir())
    with AtomicBatch() as batch:
        batch.add(tmp_path / "model.npz", lambda f: f.write(b"new"))
        assert (tmp_path / "model.npz").read_text() == "old model.npz"  # not before commit
    assert (tmp_path / "model.npz").read_text() == "new"


@posix_modes
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_files_are_created_with_the_users_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "report.json", lambda f: f.write(b"{}"))
        SoftmaxXP(4, 2, backend="numpy").save(tmp_path / "model.npz")
    finally:
        os.umask(old)
    for name in ("report.json", "model.npz"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    keep = ["model.npz", ".softmax-xp.lock", "notes.tmp", ".hidden"]
    stale = [".model.npz.1a2b3c4d.tmp", ".report.json.0f0f0f0f.tmp"]
    for name in keep + stale:
        (tmp_path / name).write_bytes(b"x")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(stale)
    assert sorted(os.listdir(tmp_path)) == sorted(keep)
