"""Hostile files and inputs: each is refused with a clear error before it can exhaust memory."""

from __future__ import annotations

import importlib.util
import re
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from softmax_xp import ModelFileError, SoftmaxXP
from softmax_xp.cli import main
from softmax_xp.cli._images import read_digit_images

pytestmark = pytest.mark.usefixtures("in_empty_folder")

D, K = 6, 3


@pytest.fixture
def model_file(tmp_path) -> Path:
    return SoftmaxXP(D, K, backend="numpy", seed=0).save(tmp_path / "model.npz")


def _header(model_file: Path) -> np.ndarray:
    with np.load(model_file, allow_pickle=False) as npz:
        return npz["__header__"]


def _peak_bytes(f) -> int:
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_model_member_far_larger_than_the_header_needs_is_not_inflated(tmp_path, model_file):
    """W.npy holds 64 MiB of zeros (64 KiB deflated) where 6x3 float32 needs 72 bytes."""
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("__header__.npy", "w") as f:
            np.lib.format.write_array(f, _header(model_file))
        with z.open("W.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": (2**24,)}
            )
            for _ in range(64):
                f.write(bytes(2**20))
    assert path.stat().st_size < 2**20

    def load():
        with pytest.raises(ModelFileError, match=r"W\.npy is \d+ bytes.*without inflating"):
            SoftmaxXP.load(path)

    assert _peak_bytes(load) < 8 * 2**20


def test_a_deeply_nested_json_header_is_a_model_file_error(tmp_path, model_file):
    depth = 100_000
    np.savez(
        tmp_path / "deep.npz",
        __header__=np.asarray("[" * depth + "]" * depth),
        W=np.zeros((D, K), np.float32),
        b=np.zeros((1, K), np.float32),
    )
    with pytest.raises(ModelFileError, match="nested too deeply"):
        SoftmaxXP.load(tmp_path / "deep.npz")


def _npy_claiming(path: Path, shape: tuple[int, ...], payload: bytes = b"") -> Path:
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|u1", "fortran_order": False, "shape": shape}
        )
        f.write(payload)
    return path


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose IHDR claims ``width`` x ``height`` grey pixels, with one tiny IDAT chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes(width + 1))  # one row of the claimed image
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
    path.write_bytes(png + chunk(b"IEND", b""))
    return path


@pytest.fixture
def hostile(tmp_path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    return {
        "empty npy": (empty, r"empty\.npy: not a \.npy file"),
        "npy claiming 2^40 rows": (
            _npy_claiming(tmp_path / "huge.npy", (2**40, 28, 28), bytes(784)),
            r"huge\.npy: the header says .*1099511627776, 28, 28.* the file holds 784",
        ),
        "14000x14000 png": (
            _png_header_only(tmp_path / "huge.png", 14000, 14000),
            r"huge\.png: the image is .*too large.*downscale",
        ),
        "10000x10000 png": (
            _png_header_only(tmp_path / "big.png", 10000, 10000),
            r"big\.png: the image is 10000x10000 pixels.*downscale",
        ),
    }


_PILLOW = pytest.mark.skipif(
    importlib.util.find_spec("PIL") is None, reason="reading PNG needs Pillow (the plot extra)"
)
CASES = [
    "empty npy",
    "npy claiming 2^40 rows",
    pytest.param("14000x14000 png", marks=_PILLOW),
    pytest.param("10000x10000 png", marks=_PILLOW),
]


@pytest.mark.parametrize("case", CASES)
def test_hostile_images_are_a_value_error(hostile, case):
    path, message = hostile[case]
    with pytest.raises(ValueError, match=message):
        read_digit_images(path)


@pytest.mark.parametrize("case", CASES)
def test_hostile_images_are_a_one_line_cli_error(hostile, tmp_path, case, capsys):
    path, message = hostile[case]
    model_file = SoftmaxXP(784, K, backend="numpy", seed=0).save(tmp_path / "digits.npz")
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "--model", str(model_file), str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("softmax-xp predict: error: ") and re.search(message, err)


def test_sparse_labels_and_sparse_logits_say_to_densify():
    """Sparse features are taken (tests/test_sparse.py); sparse labels or a sparse input to the
    functions of logits are a TypeError that says how to densify them."""
    sparse = pytest.importorskip("scipy.sparse")
    model = SoftmaxXP(D, K, backend="numpy", seed=0)
    with pytest.raises(TypeError, match=r"y is a sparse.*not supported.*y\.toarray\(\)"):
        model.train(np.eye(4, D), sparse.csr_matrix([[0, 1, 2, 0]]).T, epochs=1)
    from softmax_xp import softmax

    with pytest.raises(TypeError, match=r"sparse.*not supported.*x\.toarray\(\)"):
        softmax(sparse.csr_matrix(np.eye(4, D)))


def test_torch_sparse_labels_say_to_densify():
    torch = pytest.importorskip("torch")
    model = SoftmaxXP(D, K, backend="torch", seed=0)
    labels = torch.tensor([0, 1, 2, 0]).to_sparse()
    with pytest.raises(TypeError, match=r"y is a sparse.*not supported.*to_dense\(\)"):
        model.train(np.eye(4, D), labels, epochs=1)
