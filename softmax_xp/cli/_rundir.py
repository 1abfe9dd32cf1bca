"""The output folder of a ``softmax-xp train`` run: one run at a time, and what an earlier run left.

A run holds an exclusive ``flock`` on ``<out>/.softmax-xp.lock`` for as long as it writes there; the
kernel releases it when the process ends, even by ``kill -9``, so a lock is never stale. The lock
file holds the pid of the run that last took it, for the error message of a refused second run.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .._atomic import remove_stale_temporaries

__all__ = ["LOCK_NAME", "RUN_FILES", "FolderBusyError", "RunFolder"]

LOCK_NAME = ".softmax-xp.lock"
FIGURES = (
    "training_curves",
    "confusion_matrix",
    "weight_templates",
    "misclassified",
    "sigmoid",
    "softmax_example",
)
RUN_FILES = (
    "model.npz",
    "report.json",
    "report.md",
    "checkpoint.npz",
    "run.json",
    *(f"{name}.png" for name in FIGURES),
)


class FolderBusyError(OSError):
    """Another process holds the folder's lock."""


class RunFolder:
    """``path``, locked for this process while the ``with`` block runs (the folder is created)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._fd: int | None = None
        self._created: list[Path] = []  # the folders lock() created, deepest first

    def __enter__(self) -> RunFolder:
        self.lock()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def lock(self) -> None:
        """Take the folder's lock, or raise :class:`FolderBusyError` naming the holder's pid."""
        self._created = [p for p in (self.path, *self.path.parents) if not p.exists()]
        self.path.mkdir(parents=True, exist_ok=True)
        lock = self.path / LOCK_NAME
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                if not _try_lock(fd):
                    holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                    raise FolderBusyError(
                        f"{self.path} is in use by another softmax-xp train (pid {holder})"
                    )
                if _same_file(fd, lock):  # not a lock file its holder removed meanwhile
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        self._fd = fd

    def release(self) -> None:
        """Release the lock; a folder left holding nothing but the lock file is removed again
        (the lock file, and the folders that :meth:`lock` created)."""
        if self._fd is None:
            return
        try:
            if [p.name for p in self.path.iterdir()] == [LOCK_NAME]:
                (self.path / LOCK_NAME).unlink()  # while locked: see _same_file
                for folder in self._created:
                    folder.rmdir()
        except OSError:
            pass
        finally:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def previous_outputs(self) -> list[str]:
        """The files of an earlier run in the folder (model, reports, checkpoint, figures)."""
        return [name for name in RUN_FILES if (self.path / name).exists()]

    def remove_stale_temporaries(self) -> list[Path]:
        """Remove the temporary files of writes that were killed; call it while locked."""
        return remove_stale_temporaries(self.path)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _try_lock(fd: int) -> bool:
    """An exclusive, non-blocking lock on ``fd``: True if taken, False if another process has it.
    Where ``fcntl`` does not exist (Windows), or the file system has no locks (some network
    file systems), no lock is taken."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in _NO_LOCKS:
            return True
        raise
    return True


# flock's errors on a file system without locks
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}
