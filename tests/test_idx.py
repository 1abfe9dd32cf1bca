"""IDX reading and writing: round trips, every kind of broken file, and a fuzz test."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softmax_xp.datasets import DatasetError, IDXFormatError, read_idx, write_idx
from softmax_xp.datasets.idx import parse_idx

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]
CODES = {
    "uint8": 0x08,
    "int8": 0x09,
    "int16": 0x0B,
    "int32": 0x0C,
    "float32": 0x0D,
    "float64": 0x0E,
}


def _sample(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if dtype.startswith(("int", "uint")) else None
    if info is not None:
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def _raw_idx(code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(f">BBBB{len(shape)}I", 0, 0, code, len(shape), *shape) + payload


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(tmp_path: Path, dtype: str, suffix: str) -> None:
    array = _sample(dtype, (3, 4, 5))
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, array)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == (suffix == ".gz")
    header = gzip.decompress(raw)[:4] if suffix else raw[:4]
    assert header == bytes([0, 0, CODES[dtype], 3])
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.flags.writeable and back.flags.c_contiguous
    np.testing.assert_array_equal(back, array)


def test_big_endian_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "x"
    write_idx(path, np.array([1, 256], dtype=np.int32))
    assert path.read_bytes() == bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(read_idx(path), [1, 256])


def test_gzip_detected_by_magic_not_suffix(tmp_path: Path) -> None:
    array = _sample("uint8", (2, 3))
    gz = tmp_path / "data.gz"
    write_idx(gz, array)
    disguised = tmp_path / "data-no-suffix"
    disguised.write_bytes(gz.read_bytes())
    np.testing.assert_array_equal(read_idx(disguised), array)
    raw_named_gz = tmp_path / "raw.gz"
    raw_named_gz.write_bytes(_raw_idx(0x08, (2, 3), array.tobytes()))
    np.testing.assert_array_equal(read_idx(raw_named_gz), array)


def test_empty_dimension(tmp_path: Path) -> None:
    path = tmp_path / "empty-idx3"
    write_idx(path, np.zeros((0, 28, 28), dtype=np.uint8))
    assert read_idx(path).shape == (0, 28, 28)


def test_write_rejects_unsupported(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x", np.float32(1.0))


def _expect_error(path: Path, match: str) -> IDXFormatError:
    with pytest.raises(IDXFormatError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    assert isinstance(info.value, ValueError) and isinstance(info.value, DatasetError)
    return info.value


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_truncated(tmp_path: Path, suffix: str) -> None:
    data = _raw_idx(0x08, (60000, 28, 28), bytes(1000))
    path = tmp_path / f"train-images-idx3-ubyte{suffix}"
    path.write_bytes(gzip.compress(data) if suffix else data)
    err = _expect_error(path, "truncated")
    assert "header says 60000x28x28 uint8 = 47040000 bytes of data, found 1000" in str(err)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "short"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    _expect_error(path, "truncated header")


def test_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(_raw_idx(0x0C, (2,), bytes(8 + 3)))
    _expect_error(path, "trailing bytes.*3 extra")


def test_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "magic"
    path.write_bytes(b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00")
    _expect_error(path, "bad magic")


def test_unknown_type_code(tmp_path: Path) -> None:
    path = tmp_path / "code"
    path.write_bytes(_raw_idx(0x0A, (1,), b"\x00"))
    _expect_error(path, "unknown type code 0x0A")


def test_zero_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "scalar"
    path.write_bytes(bytes([0, 0, 8, 0, 7]))
    _expect_error(path, "0 dimensions")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    _expect_error(path, "empty file")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda gz: gz[: len(gz) // 2],  # truncated stream: EOFError
        lambda gz: gz[:10] + bytes(len(gz) - 10),  # garbage deflate data: zlib.error
        lambda gz: gz[:3] + b"\xff" + gz[4:],  # reserved flag bits: BadGzipFile
        lambda gz: gz + b"junk",  # trailing garbage: BadGzipFile
    ],
)
def test_bad_gzip(tmp_path: Path, mangle) -> None:
    path = tmp_path / "broken.gz"
    good = gzip.compress(_raw_idx(0x08, (50,), bytes(range(50))))
    path.write_bytes(mangle(good))
    _expect_error(path, "corrupt gzip")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope-idx1-ubyte"
    with pytest.raises(FileNotFoundError, match="nope-idx1-ubyte"):
        read_idx(path)


def _check_parse(data: bytes) -> None:
    """Parsing either fails with IDXFormatError or returns an array matching its header."""
    try:
        array = parse_idx(data, "fuzz")
    except IDXFormatError as exc:
        assert str(exc).startswith("fuzz: ")
        return
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    assert array.shape == shape
    assert array.size == math.prod(shape)
    assert array.dtype.isnative and array.flags.writeable


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check_parse(data)


_VALID = _raw_idx(0x0B, (2, 3), _sample("int16", (2, 3)).astype(">i2").tobytes())


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 15), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 3),
)
def test_fuzz_mutated_header(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_VALID)
    for position, value in edits:
        data[position] = value
    _check_parse(bytes(data[: len(data) - cut]))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 15), st.integers(1, 255))
def test_fuzz_flipped_bits_file(position: int, mask: int) -> None:
    data = bytearray(_VALID)
    data[position] ^= mask
    _check_parse(bytes(data))


def test_huge_dimensions_checked_before_allocating() -> None:
    data = _raw_idx(0x0E, (2**32 - 1,) * 4, b"\x00" * 8)
    with pytest.raises(IDXFormatError, match="truncated"):
        parse_idx(data, "huge")
    zero_and_huge = _raw_idx(0x08, (0, *(2**32 - 1,) * 4), b"")
    with pytest.raises(IDXFormatError, match="cannot represent"):
        parse_idx(zero_and_huge, "huge")


def _gzip_stream(tmp_path: Path, name: str, header: bytes, zeros: int) -> Path:
    """A gzip file of ``header`` then ``zeros`` zero bytes, written a megabyte at a time."""
    path = tmp_path / name
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(header)
        block = bytes(2**20)
        for _ in range(zeros // len(block)):
            f.write(block)
        f.write(bytes(zeros % len(block)))
    return path


def test_gzip_bomb_is_not_inflated(tmp_path: Path) -> None:
    """A header declaring 10 labels over 64 MiB of zeros: refused after 10 + 1 bytes of data."""
    import tracemalloc

    bomb = _gzip_stream(tmp_path, "labels.gz", _raw_idx(0x08, (10,), b""), 64 * 2**20)
    assert bomb.stat().st_size < 2**20
    tracemalloc.start()
    try:
        err = _expect_error(bomb, "trailing bytes: header says 10 uint8 = 10 bytes.*gzip bomb")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "labels.gz" in str(err)
    assert peak < 8 * 2**20  # the whole stream would be 64 MiB


def test_gzip_exact_size_still_reads_and_checks_the_crc(tmp_path: Path) -> None:
    array = np.arange(3 * 2**20 + 5, dtype=np.uint8)  # spans several inflate chunks
    path = tmp_path / "exact.gz"
    write_idx(path, array)
    np.testing.assert_array_equal(read_idx(path), array)
    damaged = bytearray(path.read_bytes())
    damaged[-8] ^= 0xFF  # the CRC-32 in the gzip trailer
    path.write_bytes(bytes(damaged))
    _expect_error(path, "corrupt gzip")
