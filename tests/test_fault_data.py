"""Fault injection on the data sets: damaged files in the download cache, things that are not
files where a file should be, folders that are not there, ``~`` in paths. No network: the
fetcher is replaced."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from softmax_xp.datasets import (
    MNIST_FILES,
    DatasetNotFoundError,
    IDXFormatError,
    load_mnist,
    load_mnist_test,
    write_idx,
)
from softmax_xp.datasets import mnist as mnist_mod

TEST_FILES = MNIST_FILES[2:]


def write_set(directory: Path, n_train: int = 20, n_test: int = 10) -> dict[str, str]:
    """A small MNIST-layout set (gzip); the SHA-256 of each decompressed file."""
    rng = np.random.default_rng(0)
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
        hashes[name] = hashlib.sha256(gzip.decompress((directory / f"{name}.gz").read_bytes()))
        hashes[name] = hashes[name].hexdigest()
    return hashes


class Cache(NamedTuple):
    path: Path
    fetched: list[str]  # the files the (fake) fetcher served


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Cache:
    """A filled download cache whose files are 'official' (their hashes replace the real
    ones), no bundled copy, no $SOFTMAX_XP_DATA; the fetcher serves a copy of the originals."""
    monkeypatch.delenv("SOFTMAX_XP_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "no-bundle").mkdir()
    monkeypatch.setattr(mnist_mod, "bundled_dir", lambda: tmp_path / "no-bundle")
    originals = tmp_path / "server"
    for name, digest in write_set(originals).items():
        monkeypatch.setitem(mnist_mod.MNIST_SHA256, name, digest)
    fetched = []

    def fetch(url, tmp, timeout):
        fetched.append(url.rsplit("/", 1)[1])
        shutil.copyfile(originals / fetched[-1], tmp)

    monkeypatch.setattr(mnist_mod, "_fetch", fetch)
    shutil.copytree(originals, mnist_mod.default_cache_dir())
    return Cache(mnist_mod.default_cache_dir(), fetched)


def cut_short(path: Path) -> None:
    """What an interrupted download by another tool leaves: the first half of the file."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_damaged_cached_file_says_how_to_replace_it(cache):
    cut_short(cache.path / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(IDXFormatError, match="corrupt gzip stream") as info:
        load_mnist_test()
    message = str(info.value)
    assert str(cache.path / "t10k-images-idx3-ubyte.gz") in message
    assert "download cache" in message and "download=True" in message
    assert cache.fetched == []  # never the network without download=True


@pytest.mark.parametrize("damage", ["cut short", "other content"])
def test_download_true_replaces_a_damaged_cached_file(cache, damage):
    path = cache.path / "t10k-images-idx3-ubyte.gz"
    if damage == "cut short":
        cut_short(path)
    else:
        write_idx(path, np.zeros((10, 28, 28), dtype=np.uint8))  # valid IDX, wrong checksum
    X, y = load_mnist_test(download=True)
    assert X.shape == (10, 784) and y.shape == (10,)
    assert cache.fetched == ["t10k-images-idx3-ubyte.gz"]  # only the damaged file
    assert sorted(p.name for p in cache.path.iterdir()) == sorted(f"{n}.gz" for n in MNIST_FILES)


def test_download_true_does_not_hide_a_damaged_file_outside_the_cache(tmp_path, cache):
    write_set(tmp_path / "mine")
    cut_short(tmp_path / "mine" / "train-images-idx3-ubyte.gz")
    with pytest.raises(IDXFormatError, match="corrupt gzip"):
        load_mnist(tmp_path / "mine", download=True)
    assert cache.fetched == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is a folder, not a file"),
        (lambda p: os.symlink(p.name, p), "is a broken symbolic link"),  # a loop
        (lambda p: os.symlink(p.parent / "gone" / "x", p), "is a broken symbolic link"),
        (lambda p: os.mkfifo(p), "is not a regular file"),
    ],
    ids=["folder", "symlink loop", "dangling symlink", "fifo"],
)
def test_something_that_is_not_a_file_is_named_as_such(tmp_path, make, message):
    directory = tmp_path / "data"
    write_set(directory)
    name = "t10k-labels-idx1-ubyte"
    (directory / f"{name}.gz").unlink()
    make(directory / name)
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist_test(directory)
    assert f"missing {name} ({name} {message})" in str(info.value)


@pytest.mark.parametrize("kind", ["no such folder", "it is a file, not a folder"])
def test_a_data_dir_that_is_not_a_folder_is_named_as_such(tmp_path, kind):
    target = tmp_path / "data"
    if kind.startswith("it is"):
        target.write_text("not a folder")
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(target)
    assert f"{target} (data_dir): missing {', '.join(MNIST_FILES)} ({kind})" in str(info.value)


def test_a_mistyped_env_folder_is_named_as_such(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTMAX_XP_DATA", str(tmp_path / "typo"))
    monkeypatch.setattr(mnist_mod, "bundled_dir", lambda: tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    warns = pytest.warns(
        UserWarning, match=r"SOFTMAX_XP_DATA=.*typo lacks t10k.*\(no such folder\)"
    )
    with warns, pytest.raises(DatasetNotFoundError, match=r"typo \(\$SOFTMAX_XP_DATA\): missing"):
        load_mnist_test()


@pytest.mark.parametrize("where", ["data_dir", "env"])
def test_a_tilde_means_the_home_folder(tmp_path, monkeypatch, where):
    """``export SOFTMAX_XP_DATA="~/mnist"`` (quoted: the shell leaves the tilde) still works."""
    monkeypatch.setenv("HOME", str(tmp_path))
    write_set(tmp_path / "mnist", n_test=7)
    if where == "env":
        monkeypatch.setenv("SOFTMAX_XP_DATA", "~/mnist")
        X, _ = load_mnist_test()
    else:
        X, _ = load_mnist_test("~/mnist")
    assert X.shape == (7, 784)


def test_kaggles_spelling_of_the_file_names_is_found(tmp_path):
    """Kaggle's MNIST names its files ``train-images.idx3-ubyte`` (a dot before "idx")."""
    directory = tmp_path / "kaggle"
    write_set(directory)
    for path in directory.iterdir():
        path.rename(path.with_name(path.name.replace("-idx", ".idx")))
    (X, y), (Xt, yt) = load_mnist(directory)
    assert X.shape == (20, 784) and Xt.shape == (10, 784) and len(y) == 20 and len(yt) == 10


def test_files_in_a_subfolder_are_pointed_to(tmp_path):
    """torchvision keeps MNIST in ``<root>/MNIST/raw``: a user gives ``<root>``."""
    write_set(tmp_path / "root" / "MNIST" / "raw")
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(tmp_path / "root")
    assert f"(they are in {tmp_path / 'root' / 'MNIST' / 'raw'}: give that folder)" in str(
        info.value
    )


def test_no_home_folder_costs_only_the_cache(tmp_path, monkeypatch):
    """A container's user with no passwd entry and no $HOME: Path.home() raises. The bundled
    copy still loads; without it the error says to set XDG_CACHE_HOME (before: RuntimeError)."""

    def no_home(cls=None):
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", classmethod(no_home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("SOFTMAX_XP_DATA", raising=False)
    monkeypatch.setattr(mnist_mod, "bundled_dir", lambda: tmp_path / "bundle")
    for name, digest in write_set(tmp_path / "bundle", n_test=7).items():
        monkeypatch.setitem(mnist_mod.MNIST_SHA256, name, digest)
    assert load_mnist_test()[0].shape == (7, 784)
    shutil.rmtree(tmp_path / "bundle")
    for download in (False, True):
        with pytest.raises(DatasetNotFoundError, match=r"(?s)\(bundled\).*set XDG_CACHE_HOME"):
            load_mnist_test(download=download)
