"""Model files: a .npz of plain arrays plus a JSON header, written atomically, read without pickle."""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

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


class ModelFileError(ValueError):
    """A model or checkpoint file is missing parts, corrupted, foreign or unsafe to load."""


def write_npz_atomic(
    path: str | os.PathLike | BinaryIO, arrays: Mapping[str, np.ndarray], header: dict
) -> Path | BinaryIO:
    """Write ``arrays`` and a JSON ``header`` to ``path`` (a .npz) atomically.

    The data goes to a temporary file in the same directory, is flushed and fsync'ed, then renamed
    over ``path``: a crash leaves either the old file or the new one, never half of one (see
    :mod:`softmax_xp._atomic`). ``path`` may also be an open binary file, written as it is.
    """
    header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **header}
    payload = {_HEADER_KEY: np.asarray(json.dumps(header)), **arrays}
    if hasattr(path, "write"):
        np.savez(path, **payload)
        return path
    return write_atomic(npz_path(path), lambda f: np.savez(f, **payload))


def npz_path(path: str | os.PathLike) -> Path:
    """``path`` with ``.npz`` appended unless it already ends so (as :func:`write_npz_atomic`
    names its files)."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def read_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`write_npz_atomic`: ``(arrays, header)``.

    Each member's .npy header is checked before any data is read: object (pickled) arrays are
    refused, so loading never runs code, and a member claiming more data than it holds is refused
    before memory is allocated for it. Anything that is not a softmax_xp file of a known format
    version raises :class:`ModelFileError`. ``path`` without ``.npz`` also finds ``path.npz``.
    """
    path = Path(path)
    if not path.is_file() and npz_path(path).is_file():
        path = npz_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {str(path)!r}.")
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {
                _member_key(path, info): _read_member(path, archive, info)
                for info in archive.infolist()
            }
    except ModelFileError:
        raise
    except Exception as exc:  # zipfile, zlib and numpy raise many kinds on damaged bytes
        raise ModelFileError(
            f"{path}: not a readable .npz file ({type(exc).__name__}: {exc}); "
            "the file may be truncated or not a softmax_xp model."
        ) from exc
    return arrays, _header(path, arrays.pop(_HEADER_KEY, None))


def _member_key(path: Path, info: zipfile.ZipInfo) -> str:
    if not info.filename.endswith(".npy"):
        raise ModelFileError(f"{path}: not a softmax_xp model file (member {info.filename!r}).")
    return info.filename[: -len(".npy")]


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One .npy member, its header checked before its data is read."""
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
        data = f.read(size + 1)  # reads to the end, so the zip CRC is checked
    if len(data) != size:
        raise ModelFileError(
            f"{path}: {info.filename} holds {len(data)} bytes of data where its header says {size}; "
            "the file is truncated or was edited."
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return array.copy()


def _header(path: Path, raw: np.ndarray | None) -> dict[str, Any]:
    """The JSON header, checked to be ours and of the format version this code reads."""
    if raw is None or raw.dtype.kind != "U" or raw.shape != ():
        raise ModelFileError(f"{path}: not a softmax_xp model file (no header).")
    try:
        header = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: the header is not valid JSON ({exc}).") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: not a softmax_xp model file (unknown format).")
    version = header.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {version!r} is not supported by this softmax_xp "
            f"(which reads version {FORMAT_VERSION}); a newer file needs a newer softmax_xp."
        )
    return header
