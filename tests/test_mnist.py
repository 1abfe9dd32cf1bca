"""MNIST loading: the bundled copy, lookup order, verification, errors, and downloads (localhost)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from softmax_xp.datasets import (
    MNIST_FILES,
    ChecksumError,
    DatasetError,
    DatasetNotFoundError,
    DownloadError,
    IDXFormatError,
    download_mnist,
    load_mnist,
    read_idx,
    split_validation,
    write_idx,
)
from softmax_xp.datasets import mnist as mnist_mod

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def only_localhost(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any URL not on 127.0.0.1; record the URLs opened."""
    opened: list[str] = []
    real_urlopen = urllib.request.urlopen

    def guarded(url, *args, **kwargs):
        text = url if isinstance(url, str) else url.full_url
        assert urllib.parse.urlsplit(text).hostname == "127.0.0.1", f"network access: {text}"
        opened.append(text)
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)
    return opened


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $SOFTMAX_XP_DATA, no bundled copy, an empty cache under tmp_path; returns the cache."""
    monkeypatch.delenv("SOFTMAX_XP_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    empty = tmp_path / "no-bundle"
    empty.mkdir()
    monkeypatch.setattr(mnist_mod, "bundled_dir", lambda: empty)
    return tmp_path / "xdg" / "softmax_xp" / "mnist"


def _write_set(directory: Path, seed: int = 0, n_train: int = 20, n_test: int = 10) -> dict:
    """A small MNIST-layout data set (gzip); returns the SHA-256 of each decompressed file."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = [
        rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, size=n_train, dtype=np.uint8),
        rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, size=n_test, dtype=np.uint8),
    ]
    hashes = {}
    for name, array in zip(MNIST_FILES, arrays, strict=True):
        write_idx(directory / f"{name}.gz", array)
        raw = gzip.decompress((directory / f"{name}.gz").read_bytes())
        hashes[name] = hashlib.sha256(raw).hexdigest()
    return hashes


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small data set whose hashes replace the official ones for this test."""
    directory = tmp_path / "tiny"
    for name, digest in _write_set(directory).items():
        monkeypatch.setitem(mnist_mod.MNIST_SHA256, name, digest)
    return directory


# --- the bundled copy -------------------------------------------------------------------------


def test_bundled_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOFTMAX_XP_DATA", raising=False)
    (X_train, y_train), (X_test, y_test) = load_mnist(verify=True)
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    for X in (X_train, X_test):
        assert X.dtype == np.float32 and X.flags.c_contiguous
        assert X.min() == 0.0 and X.max() == 1.0
    for y, counts in ((y_train, TRAIN_COUNTS), (y_test, TEST_COUNTS)):
        assert y.dtype == np.int64
        assert np.bincount(y, minlength=10).tolist() == counts


def test_hash_table_matches_sha256sums() -> None:
    lines = (mnist_mod.bundled_dir() / "SHA256SUMS").read_text().split("\n")
    listed = {name: digest for digest, name in (line.split() for line in lines if line.strip())}
    assert listed == mnist_mod.MNIST_SHA256
    assert set(listed) == set(MNIST_FILES)


def test_bundled_labels_verify_against_real_hash() -> None:
    path = mnist_mod.bundled_dir() / "t10k-labels-idx1-ubyte.gz"
    digest = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    assert digest == mnist_mod.MNIST_SHA256["t10k-labels-idx1-ubyte"]


# --- lookup order -----------------------------------------------------------------------------


def test_data_dir_loads_and_scales(tiny: Path) -> None:
    (X, y), (Xt, yt) = load_mnist(tiny, verify=True)
    images = read_idx(tiny / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(X, images.reshape(20, 784) / np.float32(255))
    assert X.dtype == np.float32 and X.flags.c_contiguous and y.dtype == np.int64
    assert Xt.shape == (10, 784) and yt.shape == (10,)


def test_raw_files_also_found(tiny: Path, tmp_path: Path) -> None:
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    for name in MNIST_FILES:
        (raw_dir / name).write_bytes(gzip.decompress((tiny / f"{name}.gz").read_bytes()))
    (X, _), _ = load_mnist(raw_dir, verify=True)
    assert X.shape == (20, 784)


def test_env_dir_comes_first(isolated: Path, tmp_path: Path, monkeypatch) -> None:
    _write_set(tmp_path / "env", seed=1, n_train=7)
    _write_set(isolated, seed=2, n_train=9)
    monkeypatch.setenv("SOFTMAX_XP_DATA", str(tmp_path / "env"))
    assert load_mnist()[0][0].shape == (7, 784)  # not verified: a user-named directory


def test_incomplete_env_dir_warns_then_falls_back(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "env").mkdir()
    monkeypatch.setenv("SOFTMAX_XP_DATA", str(tmp_path / "env"))
    with pytest.warns(UserWarning, match=r"SOFTMAX_XP_DATA=.*lacks train-images-idx3-ubyte"):
        (X, _), _ = load_mnist()
    assert X.shape == (60_000, 784)  # the bundled copy


def test_bundled_before_cache_and_cache_verified(isolated: Path, tmp_path, monkeypatch) -> None:
    _write_set(isolated, seed=2, n_train=9)
    with pytest.raises(ChecksumError, match="train-images-idx3-ubyte"):
        load_mnist()  # the cache is checked against the official hashes
    assert load_mnist(verify=False)[0][0].shape == (9, 784)
    for name, digest in _write_set(tmp_path / "bundle", seed=3, n_train=5).items():
        monkeypatch.setitem(mnist_mod.MNIST_SHA256, name, digest)
    monkeypatch.setattr(mnist_mod, "bundled_dir", lambda: tmp_path / "bundle")
    assert load_mnist()[0][0].shape == (5, 784)


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert mnist_mod.default_cache_dir() == tmp_path / "c" / "softmax_xp" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mnist_mod.default_cache_dir() == tmp_path / "home" / ".cache" / "softmax_xp" / "mnist"


# --- verification and broken files ------------------------------------------------------------


def test_fashion_like_dir_loads_without_verification(tmp_path: Path) -> None:
    _write_set(tmp_path / "fashion", seed=5)
    (X, y), (Xt, yt) = load_mnist(tmp_path / "fashion")
    assert X.shape == (20, 784) and Xt.shape == (10, 784) and yt.shape == (10,)
    assert X.min() >= 0.0 and X.max() <= 1.0 and set(y.tolist()) <= set(range(10))
    with pytest.raises(ChecksumError, match="expected"):
        load_mnist(tmp_path / "fashion", verify=True)


def test_tampered_bundle_is_rejected(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOFTMAX_XP_DATA", raising=False)
    monkeypatch.setattr(mnist_mod, "bundled_dir", lambda: tiny)
    assert load_mnist()[0][0].shape == (20, 784)
    labels = read_idx(tiny / "train-labels-idx1-ubyte.gz")
    labels[0] = (labels[0] + 1) % 10
    write_idx(tiny / "train-labels-idx1-ubyte.gz", labels)
    actual = hashlib.sha256(gzip.decompress((tiny / "train-labels-idx1-ubyte.gz").read_bytes()))
    with pytest.raises(ChecksumError) as info:
        load_mnist()
    message = str(info.value)
    assert str(tiny / "train-labels-idx1-ubyte.gz") in message
    assert mnist_mod.MNIST_SHA256["train-labels-idx1-ubyte"] in message
    assert actual.hexdigest() in message
    assert isinstance(info.value, DatasetError)


def test_missing_file_in_data_dir(tiny: Path) -> None:
    (tiny / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(tiny)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, DatasetError)
    assert str(tiny) in str(info.value) and "t10k-labels-idx1-ubyte" in str(info.value)
    assert "download=True" in str(info.value)


def test_missing_everywhere_lists_places(isolated: Path, tmp_path, monkeypatch, only_localhost):
    (tmp_path / "env").mkdir()
    monkeypatch.setenv("SOFTMAX_XP_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as info, pytest.warns(UserWarning, match="lacks"):
        load_mnist()
    message = str(info.value)
    for place in (tmp_path / "env", tmp_path / "no-bundle", isolated):
        assert str(place) in message
    assert "download=True" in message
    assert only_localhost == []  # no network without download=True


def test_truncated_file(tiny: Path) -> None:
    path = tiny / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.unlink()
    (tiny / "train-images-idx3-ubyte").write_bytes(raw[:-100])
    with pytest.raises(IDXFormatError, match="truncated") as info:
        load_mnist(tiny, verify=False)
    assert str(tiny / "train-images-idx3-ubyte") in str(info.value)
    with pytest.raises(ChecksumError, match="train-images-idx3-ubyte"):
        load_mnist(tiny, verify=True)
    (tiny / "train-images-idx3-ubyte").unlink()
    path.write_bytes(gzip.compress(raw)[:-50])
    with pytest.raises(IDXFormatError, match="corrupt gzip") as info:
        load_mnist(tiny, verify=True)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("name", "array", "match"),
    [
        ("train-labels-idx1-ubyte", np.full(20, 10, dtype=np.uint8), "0..9"),
        ("train-labels-idx1-ubyte", np.zeros(19, dtype=np.uint8), "20 images but 19 labels"),
        ("t10k-images-idx3-ubyte", np.zeros((10, 27, 27), dtype=np.uint8), "28 x 28"),
        ("t10k-labels-idx1-ubyte", np.zeros(10, dtype=np.int32), "uint8"),
    ],
)
def test_inconsistent_set(tmp_path: Path, name: str, array: np.ndarray, match: str) -> None:
    _write_set(tmp_path / "bad")
    write_idx(tmp_path / "bad" / f"{name}.gz", array)
    with pytest.raises(DatasetError, match=match):
        load_mnist(tmp_path / "bad")


def test_split_validation() -> None:
    X = np.arange(60000 * 2, dtype=np.float32).reshape(60000, 2)
    y = np.arange(60000) % 10
    (X_tr, y_tr), (X_val, y_val) = split_validation(X, y)
    assert X_tr.shape == (50000, 2) and y_tr.shape == (50000,)
    assert X_val.shape == (10000, 2) and y_val.shape == (10000,)
    assert X_val[0, 0] == 100000 and y_tr[-1] == 49999 % 10
    assert np.shares_memory(X_tr, X) and np.shares_memory(y_val, y)
    (a, _), (b, _) = split_validation(X[:10], y[:10], n_val=3)
    assert len(a) == 7 and len(b) == 3
    for n_val in (0, 10):
        with pytest.raises(ValueError, match="n_val"):
            split_validation(X[:10], y[:10], n_val=n_val)
    with pytest.raises(ValueError, match="samples"):
        split_validation(X[:10], y[:9], n_val=3)


# --- downloads from local HTTP servers --------------------------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    """``serve(directory)`` starts an HTTP server on 127.0.0.1 and returns its base URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/mnist/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _mirror(root: Path) -> Path:
    """``root/mnist``, the directory a served mirror URL points into."""
    (root / "mnist").mkdir(parents=True, exist_ok=True)
    return root / "mnist"


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def test_download_real_files(serve, tmp_path: Path) -> None:
    shutil.copytree(mnist_mod.bundled_dir(), tmp_path / "site" / "mnist")
    url = serve(tmp_path / "site")
    dest = tmp_path / "dest"
    assert download_mnist(dest, mirrors=[url], timeout=10) == dest
    assert sorted(os.listdir(dest)) == sorted(f"{name}.gz" for name in MNIST_FILES)
    (X, y), (Xt, _) = load_mnist(dest, verify=True)
    assert X.shape == (60000, 784) and Xt.shape == (10000, 784)
    assert np.bincount(y).tolist() == TRAIN_COUNTS


def test_download_falls_back(serve, tiny: Path, tmp_path: Path, only_localhost) -> None:
    good = serve(tmp_path / "good")
    shutil.copytree(tiny, _mirror(tmp_path / "good"), dirs_exist_ok=True)
    corrupt = _mirror(tmp_path / "corrupt")
    _write_set(corrupt, seed=9)  # valid gzip, wrong hashes
    (corrupt / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    mirrors = [_dead_url(), serve(tmp_path / "empty"), serve(tmp_path / "corrupt"), good]
    dest = tmp_path / "dest"
    download_mnist(dest, mirrors=mirrors, timeout=5)
    assert sorted(os.listdir(dest)) == sorted(f"{name}.gz" for name in MNIST_FILES)
    for name in MNIST_FILES:
        assert (dest / f"{name}.gz").read_bytes() == (tiny / f"{name}.gz").read_bytes()
    assert len(only_localhost) == 4 * len(mirrors)
    assert load_mnist(dest, verify=True)[0][0].shape == (20, 784)


def test_download_all_mirrors_bad(serve, tiny: Path, tmp_path: Path) -> None:
    corrupt = _mirror(tmp_path / "corrupt")
    _write_set(corrupt, seed=9)
    truncated = _mirror(tmp_path / "truncated")
    for name in MNIST_FILES:
        (truncated / f"{name}.gz").write_bytes((tiny / f"{name}.gz").read_bytes()[:-20])
    mirrors = [
        serve(tmp_path / "empty"),
        serve(tmp_path / "corrupt"),
        serve(tmp_path / "truncated"),
        _dead_url(),
    ]
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError) as info:
        download_mnist(dest, mirrors=mirrors, timeout=5)
    message = str(info.value)
    for url in mirrors:
        assert f"{url}{MNIST_FILES[0]}.gz" in message
    assert "404" in message and "ChecksumError" in message and "EOFError" in message
    assert isinstance(info.value, DatasetError)
    assert os.listdir(dest) == []  # no partial or temporary files


def test_load_mnist_downloads_into_cache(serve, tiny: Path, isolated: Path, tmp_path, monkeypatch):
    shutil.copytree(tiny, _mirror(tmp_path / "site"), dirs_exist_ok=True)
    monkeypatch.setattr(mnist_mod, "MNIST_MIRRORS", (_dead_url(), serve(tmp_path / "site")))
    with pytest.raises(DatasetNotFoundError, match=str(isolated)):
        load_mnist()
    (X, _), _ = load_mnist(download=True)
    assert X.shape == (20, 784)
    assert sorted(os.listdir(isolated)) == sorted(f"{name}.gz" for name in MNIST_FILES)
    assert load_mnist()[0][0].shape == (20, 784)  # now found in the cache, no download


def test_load_mnist_downloads_into_data_dir(serve, tiny: Path, tmp_path, monkeypatch):
    shutil.copytree(tiny, _mirror(tmp_path / "site"), dirs_exist_ok=True)
    monkeypatch.setattr(mnist_mod, "MNIST_MIRRORS", (serve(tmp_path / "site"),))
    target = tmp_path / "target"
    shutil.copytree(tiny, target)
    (target / "t10k-images-idx3-ubyte.gz").unlink()
    before = (target / "train-images-idx3-ubyte.gz").stat().st_mtime_ns
    (_, _), (Xt, _) = load_mnist(target, download=True)
    assert Xt.shape == (10, 784)
    assert (target / "train-images-idx3-ubyte.gz").stat().st_mtime_ns == before
