"""Model files: a .npz of plain arrays plus a JSON header, written atomically, read without pickle."""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, cast, overload

import numpy as np

from ._atomic import write_atomic

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFileError",
    "npz_path",
    "read_npz",
    "write_npz_atomic",
]

FORMAT_NAME = "softmax_xp"
FORMAT_VERSION = 1
_HEADER_KEY = "__header__"
_MAX_HEADER_BYTES = 64 * 2**20  # the JSON header (a checkpoint's History grows with its epochs)
_NPY_HEADER_BYTES = 2**16  # room for a member's own .npy header


class ModelFileError(ValueError):
    """A model or checkpoint file is missing parts, corrupted, foreign or unsafe to load."""


@overload
def write_npz_atomic(
    path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], header: dict[str, Any]
) -> Path: ...
@overload
def write_npz_atomic(
    path: BinaryIO, arrays: Mapping[str, np.ndarray], header: dict[str, Any]
) -> BinaryIO: ...
def write_npz_atomic(
    path: str | os.PathLike[str] | BinaryIO,
    arrays: Mapping[str, np.ndarray],
    header: dict[str, Any],
) -> Path | BinaryIO:
    """Write ``arrays`` and a JSON ``header`` to ``path`` (a .npz) atomically.

    The data goes to a temporary file in the same directory, is flushed and fsync'ed, then renamed
    over ``path``: a crash leaves either the old file or the new one, never half of one (see
    :mod:`softmax_xp._atomic`). ``path`` may also be an open binary file, written as it is.
    """
    header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **header}
    payload: dict[str, Any] = {_HEADER_KEY: np.asarray(json.dumps(header)), **arrays}
    if hasattr(path, "write"):
        np.savez(path, **payload)
        return cast(BinaryIO, path)  # an open file (hasattr does not narrow the type)
    if Path(path).expanduser().is_dir() or str(path).endswith(("/", os.sep)):
        raise IsADirectoryError(
            f"{str(path)!r} is a folder; give the file's name, e.g. "
            f"{str(Path(path) / 'model.npz')!r}."
        )
    return write_atomic(npz_path(path), lambda f: np.savez(f, **payload))


def npz_path(path: str | os.PathLike[str]) -> Path:
    """``path`` (``~`` expanded) with ``.npz`` appended unless it already ends so (as
    :func:`write_npz_atomic` names its files)."""
    path = Path(path).expanduser()
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def read_npz(
    path: str | os.PathLike[str],
    data_bytes: Callable[[dict[str, Any]], Mapping[str, int]] | None = None,
    what: str = "model file",
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`write_npz_atomic`: ``(arrays, header)``.

    The JSON header is read first; ``data_bytes(header)`` then gives the number of data bytes
    each expected member needs. A member that is not expected is skipped unread, and one that
    the zip directory or its .npy header says is far larger than expected (more than twice, plus
    64 KiB) is refused before it is inflated: a small zip bomb cannot fill memory. Each member's
    .npy header is checked before any data is read: object (pickled) arrays are refused, so
    loading never runs code, and a member claiming more data than it holds is refused before
    memory is allocated for it. Anything that is not a softmax_xp file of a known format version
    raises :class:`ModelFileError`. ``path`` without ``.npz`` also finds ``path.npz``. ``what``
    names the file in the messages for a missing file or a folder.
    """
    path = Path(path).expanduser()
    if not path.is_file() and not path.is_dir() and npz_path(path).is_file():
        path = npz_path(path)
    if path.is_dir():
        hint = (
            f" (did you mean {str(path / 'model.npz')!r}?)"
            if (path / "model.npz").is_file()
            else ""
        )
        raise FileNotFoundError(f"{str(path)!r} is a folder, not a {what}{hint}.")
    if not path.is_file():
        raise FileNotFoundError(f"No {what} at {str(path)!r}.")
    try:
        with zipfile.ZipFile(path) as archive:
            members = {_member_key(path, info): info for info in archive.infolist()}
            if _HEADER_KEY not in members:
                raise ModelFileError(f"{path}: not a softmax_xp model file (no header).")
            raw = _read_member(path, archive, members.pop(_HEADER_KEY), _MAX_HEADER_BYTES)
            header = _header(path, raw)
            limits = None if data_bytes is None else data_bytes(header)
            arrays = {
                key: _read_member(
                    path,
                    archive,
                    info,
                    None if limits is None else 2 * limits[key] + _NPY_HEADER_BYTES,
                )
                for key, info in members.items()
                if limits is None or key in limits
            }
    except ModelFileError:
        raise
    except Exception as exc:  # zipfile, zlib and numpy raise many kinds on damaged bytes
        raise ModelFileError(
            f"{path}: not a readable .npz file ({type(exc).__name__}: {exc}); "
            "the file may be truncated or not a softmax_xp model."
        ) from exc
    return arrays, header


def _member_key(path: Path, info: zipfile.ZipInfo) -> str:
    if not info.filename.endswith(".npy"):
        raise ModelFileError(f"{path}: not a softmax_xp model file (member {info.filename!r}).")
    return info.filename[: -len(".npy")]


def _read_member(
    path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int | None
) -> np.ndarray:
    """One .npy member, its header checked before its data is read; with ``max_bytes``, a
    member larger than that (by the zip directory or its .npy header) is refused unread."""
    if max_bytes is not None and info.file_size > max_bytes + _NPY_HEADER_BYTES:
        raise _too_large(path, info, info.file_size, max_bytes)
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ModelFileError(f"{path}: {info.filename} has unsupported .npy version {version}.")
        if dtype.hasobject:
            raise ModelFileError(
                f"{path}: {info.filename} holds pickled objects, which are never loaded "
                "(they could run code)."
            )
        size = math.prod(shape) * dtype.itemsize
        if size > info.file_size:
            raise ModelFileError(
                f"{path}: {info.filename} claims {size} bytes of data but holds fewer; "
                "the file is truncated or was edited."
            )
        if max_bytes is not None and size > max_bytes:
            raise _too_large(path, info, size, max_bytes)
        data = f.read(size + 1)  # reads to the end, so the zip CRC is checked
    if len(data) != size:
        raise ModelFileError(
            f"{path}: {info.filename} holds {len(data)} bytes of data where its header says {size}; "
            "the file is truncated or was edited."
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    copy: np.ndarray = array.copy()
    return copy


def _too_large(path: Path, info: zipfile.ZipInfo, size: int, max_bytes: int) -> ModelFileError:
    return ModelFileError(
        f"{path}: {info.filename} is {size} bytes, far more than the {max_bytes} bytes it may "
        "hold; refused without inflating it (a corrupted file or a zip bomb)."
    )


def _header(path: Path, raw: np.ndarray) -> dict[str, Any]:
    """The JSON header, checked to be ours and of the format version this code reads."""
    if raw.dtype.kind != "U" or raw.shape != ():
        raise ModelFileError(f"{path}: not a softmax_xp model file (no header).")
    try:
        header = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: the header is not valid JSON ({exc}).") from exc
    except RecursionError:  # e.g. [[[[...]]]] 100,000 deep
        raise ModelFileError(f"{path}: the header is not valid JSON (nested too deeply).") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: not a softmax_xp model file (unknown format).")
    version = header.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {version!r} is not supported by this softmax_xp "
            f"(which reads version {FORMAT_VERSION}); a newer file needs a newer softmax_xp."
        )
    return header
