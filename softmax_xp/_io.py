"""Model files: a .npz of plain arrays plus a JSON header, written atomically, read without pickle."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ModelFileError", "read_npz", "write_npz_atomic"]

FORMAT_NAME = "softmax_xp"
FORMAT_VERSION = 1
_HEADER_KEY = "__header__"


class ModelFileError(ValueError):
    """A model or checkpoint file is missing parts, corrupted, foreign or unsafe to load."""


def write_npz_atomic(
    path: str | os.PathLike, arrays: Mapping[str, np.ndarray], header: dict
) -> Path:
    """Write ``arrays`` and a JSON ``header`` to ``path`` (a .npz) atomically.

    The data goes to a temporary file in the same directory, is flushed and fsync'ed, then renamed
    over ``path``: a crash leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **header}
    payload = {_HEADER_KEY: np.asarray(json.dumps(header)), **arrays}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :func:`write_npz_atomic`: ``(arrays, header)``.

    Object arrays are refused (``allow_pickle=False``), so loading never runs code. Anything that is
    not a softmax_xp file of a known format version raises :class:`ModelFileError`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {str(path)!r}.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as exc:  # numpy refuses object (pickled) arrays with a ValueError
        raise ModelFileError(
            f"{path}: holds pickled objects, which are never loaded (they could run code)."
        ) from exc
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise ModelFileError(
            f"{path}: not a readable .npz file ({type(exc).__name__}: {exc}); "
            "the file may be truncated or not a softmax_xp model."
        ) from exc
    raw_header = arrays.pop(_HEADER_KEY, None)
    if raw_header is None or raw_header.dtype.kind != "U" or raw_header.shape != ():
        raise ModelFileError(f"{path}: not a softmax_xp model file (no header).")
    try:
        header = json.loads(str(raw_header))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: the header is not valid JSON ({exc}).") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path}: not a softmax_xp model file (unknown format).")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: format version {version!r} is not supported by this softmax_xp "
            f"(which reads version {FORMAT_VERSION}); upgrade softmax_xp to load it."
        )
    return arrays, header
