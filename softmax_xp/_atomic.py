"""Atomic file writes: a temporary file in the target's folder, fsync'ed, then renamed over it.

A crash, a kill or a full disk leaves either the old file or the new one, never half of one. The
temporary file is ``.<name>.<random>.tmp`` beside the target (so the rename never crosses file
systems) and is created with mode 0666 minus the umask, like any file the user creates.
:class:`AtomicBatch` writes several files so that none replaces its old version until all are
written. Every OSError names the file it was writing.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, TypeVar

__all__ = [
    "TEMP_SUFFIX",
    "AtomicBatch",
    "check_writable",
    "remove_stale_temporaries",
    "write_atomic",
]

TEMP_SUFFIX = ".tmp"
Writer = Callable[[BinaryIO], object]
T = TypeVar("T")


def write_atomic(path: str | os.PathLike[str], write: Writer) -> Path:
    """Call ``write(file)`` on a temporary file, fsync it and rename it to ``path``; return ``path``."""
    with AtomicBatch() as batch:
        batch.add(path, write)
    return Path(path)


class AtomicBatch:
    """Files staged with :meth:`add` replace their targets only on :meth:`commit` (done by the
    ``with`` block when it ends without an exception); an exception removes every staged file."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def add(self, path: str | os.PathLike[str], write: Writer) -> None:
        """Write ``path``'s new content into a synced temporary file now (not yet renamed)."""
        path = Path(path)
        self._staged.append((_write_temporary(path, write), path))

    def commit(self) -> None:
        folders = set()
        try:
            while self._staged:
                tmp, path = self._staged[0]
                _named(path, os.replace, tmp, path)
                self._staged.pop(0)
                folders.add(path.parent)
        finally:
            self.discard()
        for folder in folders:
            _sync_folder(folder)

    def discard(self) -> None:
        while self._staged:
            Path(self._staged.pop()[0]).unlink(missing_ok=True)

    def __enter__(self) -> AtomicBatch:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise now the OSError that writing ``path`` would raise (naming it), before work that a
    failed write would waste: its folder is created, and a temporary file made and removed."""
    fd, tmp = _create_temporary(Path(path))
    os.close(fd)
    tmp.unlink(missing_ok=True)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files (``.<name>.<random>.tmp``) that a killed write left in
    ``folder``; return them. Call it only while no other writer uses ``folder``."""
    removed = []
    for path in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _write_temporary(path: Path, write: Writer) -> Path:
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            _named(path, write, f)
            _named(path, f.flush)
            _named(path, os.fsync, f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _create_temporary(path: Path) -> tuple[int, Path]:
    """An open descriptor on a new temporary file beside ``path``, and its name."""
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"cannot write {path}: it is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise NotADirectoryError(
            errno.ENOTDIR, f"cannot write {path}: {path.parent} or a folder above it is a file"
        ) from exc
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        try:
            # O_EXCL: never follow or reuse an existing name; 0o666 is reduced by the umask.
            fd = _named(path, os.open, tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    return fd, tmp


def _named(path: Path, call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, with an OSError re-raised as one that names ``path``."""
    try:
        return call(*args)
    except OSError as exc:
        if str(path) in str(exc):
            raise
        message = f"cannot write {path}: {exc.strerror or exc}"
        raise (OSError(exc.errno, message) if exc.errno else OSError(message)) from exc


def _sync_folder(folder: Path) -> None:
    """fsync a folder so a rename in it survives a power cut (a no-op where folders cannot be
    opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
