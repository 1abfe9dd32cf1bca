"""Read and write IDX files (the MNIST format), raw or gzip-compressed.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the array data in C order, big-endian. ``read_idx`` checks
every part of that and raises :class:`IDXFormatError`, naming the file, on any problem.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "IDX_TYPES",
    "DatasetError",
    "IDXFormatError",
    "decompressed_bytes",
    "parse_idx",
    "read_idx",
    "write_idx",
]

GZIP_MAGIC = b"\x1f\x8b"

#: IDX type code -> (name, big-endian dtype as stored in the file).
IDX_TYPES: dict[int, tuple[str, np.dtype]] = {
    0x08: ("uint8", np.dtype("u1")),
    0x09: ("int8", np.dtype("i1")),
    0x0B: ("int16", np.dtype(">i2")),
    0x0C: ("int32", np.dtype(">i4")),
    0x0D: ("float32", np.dtype(">f4")),
    0x0E: ("float64", np.dtype(">f8")),
}
_CODE_BY_NAME = {name: code for code, (name, _) in IDX_TYPES.items()}
_MAX_DIM = 2**32 - 1
_CHUNK = 2**20  # inflate gzip streams a megabyte at a time


class DatasetError(Exception):
    """Base class of every problem with a data set's files (format, checksum, missing, download)."""


class IDXFormatError(DatasetError, ValueError):
    """A file is not a valid IDX file; the message names the file and says what is wrong."""

    def __init__(self, path: str | os.PathLike[str], problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def decompressed_bytes(path: str | os.PathLike[str]) -> bytes:
    """Return the file's content, gunzipped when it starts with the gzip magic bytes 1f 8b.

    A gzip stream is never inflated past the data its IDX header declares plus one byte, so a
    gzip bomb (a few kilobytes that inflate to gigabytes) is refused without filling memory.
    Raises FileNotFoundError for a missing file and IDXFormatError for a corrupt gzip stream or
    one holding more data than its header declares.

    Examples
    --------
    >>> import gzip, os, tempfile
    >>> from softmax_xp.datasets.idx import decompressed_bytes
    >>> path = os.path.join(tempfile.mkdtemp(), "data.gz")
    >>> idx = bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 2, 1])  # three uint8 labels
    >>> with open(path, "wb") as f:
    ...     _ = f.write(gzip.compress(idx))
    >>> decompressed_bytes(path) == idx
    True
    """
    with open(path, "rb") as fh:
        if fh.read(2) != GZIP_MAGIC:
            fh.seek(0)
            return fh.read()
        fh.seek(0)
        try:
            with gzip.GzipFile(fileobj=fh, mode="rb") as stream:
                return _read_declared(stream, path)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise IDXFormatError(path, f"corrupt gzip stream: {exc}") from exc


def _read_at_most(stream: gzip.GzipFile, n: int) -> bytes:
    """Up to ``n`` bytes of ``stream``, inflated a megabyte at a time (never ``n`` at once)."""
    parts: list[bytes] = []
    left = n
    while left > 0:
        chunk = stream.read(min(left, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _read_declared(stream: gzip.GzipFile, path: str | os.PathLike[str]) -> bytes:
    """The IDX header, then at most the data it declares plus one byte (to see whether the
    stream ends there; reading to its end also checks the gzip CRC). A header that
    :func:`parse_idx` will refuse is returned alone."""
    head = _read_at_most(stream, 4)
    if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in IDX_TYPES or head[3] == 0:
        return head
    ndim = head[3]
    dims = _read_at_most(stream, 4 * ndim)
    if len(dims) < 4 * ndim:
        return head + dims
    shape = struct.unpack(f">{ndim}I", dims)
    type_name, file_dtype = IDX_TYPES[head[2]]
    expected = math.prod(shape) * file_dtype.itemsize
    body = _read_at_most(stream, expected + 1)
    if len(body) > expected:
        raise IDXFormatError(
            path,
            f"trailing bytes: {_describe(shape, type_name, expected)}, but the gzip stream "
            "holds more; stopped decompressing there (a corrupt file or a gzip bomb)",
        )
    return head + dims + body


def _describe(shape: tuple[int, ...], type_name: str, nbytes: int) -> str:
    dims = "x".join(str(d) for d in shape) or "scalar"
    return f"header says {dims} {type_name} = {nbytes} bytes of data"


def parse_idx(data: bytes, path: str | os.PathLike[str] = "<bytes>") -> np.ndarray:
    """Decode IDX ``data`` into a writeable native-endian array; ``path`` is used in errors.

    Examples
    --------
    >>> from softmax_xp.datasets.idx import parse_idx
    >>> parse_idx(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 2, 1]))  # uint8, 1-D, 3 items
    array([7, 2, 1], dtype=uint8)
    """
    if len(data) == 0:
        raise IDXFormatError(path, "empty file (expected an IDX header)")
    if len(data) < 4:
        raise IDXFormatError(path, f"too short for an IDX header: {len(data)} bytes")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise IDXFormatError(
            path, f"bad magic number {data[:4].hex(' ')}: expected 00 00 <type> <ndim>"
        )
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X} {n}" for c, (n, _) in IDX_TYPES.items())
        raise IDXFormatError(path, f"unknown type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise IDXFormatError(path, "header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IDXFormatError(
            path,
            f"truncated header: {ndim} dimensions need {header_len} header bytes, "
            f"found {len(data)}",
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    type_name, file_dtype = IDX_TYPES[code]
    expected = math.prod(shape) * file_dtype.itemsize  # Python ints: no overflow
    found = len(data) - header_len
    if found < expected:
        what = _describe(shape, type_name, expected)
        raise IDXFormatError(path, f"truncated: {what}, found {found}")
    if found > expected:
        what = _describe(shape, type_name, expected)
        raise IDXFormatError(
            path, f"trailing bytes: {what}, found {found} ({found - expected} extra)"
        )
    try:
        flat = np.frombuffer(data, dtype=file_dtype, count=math.prod(shape), offset=header_len)
        array = flat.reshape(shape)
    except ValueError as exc:  # e.g. more dimensions than NumPy supports
        raise IDXFormatError(path, f"cannot represent {shape} as a NumPy array: {exc}") from exc
    return array.astype(file_dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, raw or gzip (detected by its magic bytes), into a NumPy array.

    The result is writeable, C-contiguous and native-endian. Raises FileNotFoundError for a
    missing file and IDXFormatError for anything wrong with its content.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from softmax_xp.datasets import read_idx, write_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> write_idx(path, np.array([7, 2, 1], dtype=np.uint8))
    >>> read_idx(path)
    array([7, 2, 1], dtype=uint8)
    """
    return parse_idx(decompressed_bytes(path), path)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    Supported dtypes: uint8, int8, int16, int32, float32, float64; at least one dimension.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from softmax_xp.datasets import read_idx, write_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "images-idx3-ubyte")
    >>> write_idx(path, np.zeros((2, 28, 28), dtype=np.uint8))
    >>> os.path.getsize(path)  # 4 + 3 * 4 header bytes, then the pixels
    1584
    >>> read_idx(path).shape
    (2, 28, 28)
    """
    array = np.asarray(array)
    code = _CODE_BY_NAME.get(array.dtype.name)
    if code is None or array.dtype.kind not in "uif":
        raise ValueError(
            f"cannot store dtype {array.dtype} in IDX; supported: {', '.join(_CODE_BY_NAME)}"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX stores 1 to 255 dimensions, got {array.ndim}")
    if any(d > _MAX_DIM for d in array.shape):
        raise ValueError(f"IDX dimensions must fit in uint32, got shape {array.shape}")
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
    payload = np.ascontiguousarray(array, dtype=IDX_TYPES[code][1]).tobytes()
    data = header + payload
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    Path(path).write_bytes(data)
