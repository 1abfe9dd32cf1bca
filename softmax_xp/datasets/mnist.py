"""MNIST: find the four IDX files, verify them, download them on request, and load them.

Where ``load_mnist`` looks:

- ``data_dir`` given: only there; with ``download=True`` missing files are downloaded into it.
- otherwise, in order: ``$SOFTMAX_XP_DATA`` (a UserWarning when it lacks files, so a mistyped
  path does not silently load MNIST), the copy bundled with this package, the user cache
  (``$XDG_CACHE_HOME/softmax_xp/mnist``, default ``~/.cache/softmax_xp/mnist``); with
  ``download=True`` the files are downloaded into the cache when none of those has all four.

The first directory that holds all four files (each raw or ``.gz``, named as the official files
or as Kaggle's copy names them, ``train-images.idx3-ubyte``) is used; ``~`` in a path is the home
folder. The network is never touched unless ``download=True``; then a file in the cache that is
damaged (a download cut short by another tool) is downloaded again. ``load_mnist_test`` looks the same way for just the two test files
(``t10k-*``), for evaluation without the training set.

Verification: every file's *decompressed* content is checked against the official SHA-256
(:data:`MNIST_SHA256`). ``verify=None`` (the default) checks the bundled copy, the cache and
downloads, but not a directory you name (``data_dir`` or ``$SOFTMAX_XP_DATA``), so the same loader
reads Fashion-MNIST or any other data set in the MNIST layout. ``verify=True`` checks every source,
``verify=False`` none (downloads are always checked before they are kept).

Errors, all subclasses of :class:`DatasetError`:

- :class:`DatasetNotFoundError` (also a FileNotFoundError): files missing; lists where it looked.
- :class:`ChecksumError`: a file's SHA-256 differs; names the file, expected and actual hash.
- :class:`DownloadError`: every mirror failed for a file; lists each URL and why it failed.
- :class:`~softmax_xp.datasets.idx.IDXFormatError` (also a ValueError): a file is not valid IDX.
- :class:`DatasetError` itself: the files are valid IDX but do not form an MNIST-style set.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from softmax_xp.datasets.idx import DatasetError, decompressed_bytes, parse_idx

__all__ = [
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "MNIST_SHA256",
    "ChecksumError",
    "DatasetNotFoundError",
    "DownloadError",
    "bundled_dir",
    "default_cache_dir",
    "download_mnist",
    "load_mnist",
    "load_mnist_test",
    "split_validation",
]

log = logging.getLogger(__name__)

#: The four files, in load order: train images, train labels, test images, test labels.
MNIST_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_TEST_FILES = MNIST_FILES[2:]

#: SHA-256 of each file's decompressed content (the official uncompressed files).
MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: Download mirrors, tried in order; each serves ``<mirror><name>.gz``.
MNIST_MIRRORS: tuple[str, ...] = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)

_CHUNK = 1 << 20

#: One split: images (N, 784) float32 and labels (N,) int64.
XY = tuple[np.ndarray, np.ndarray]


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The data set's files are not where we looked; the message lists each place."""


class ChecksumError(DatasetError):
    """A file's SHA-256 (of its decompressed content) is not the expected one."""


class DownloadError(DatasetError):
    """Every mirror failed for a file; the message lists each URL tried and why it failed."""


def bundled_dir() -> Path:
    """The directory of the MNIST copy shipped inside this package.

    Examples
    --------
    >>> from softmax_xp.datasets.mnist import bundled_dir
    >>> sorted(path.name for path in bundled_dir().glob("*.gz"))[0]
    't10k-images-idx3-ubyte.gz'
    """
    return Path(__file__).resolve().parent / "data" / "mnist"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/softmax_xp/mnist``, or ``~/.cache/softmax_xp/mnist``; a
    :class:`DatasetError` where neither is known (no $HOME, a user id with no home folder).

    Examples
    --------
    >>> from softmax_xp.datasets import default_cache_dir
    >>> default_cache_dir().parts[-2:]  # under $XDG_CACHE_HOME, else ~/.cache
    ('softmax_xp', 'mnist')
    """
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):  # a container's user with no passwd entry, no $HOME
            raise DatasetError(
                "there is no folder for the download cache: the home folder is unknown "
                "($HOME is not set); set XDG_CACHE_HOME to a folder, or give the data's folder "
                "(data_dir)."
            ) from None
    return Path(base) / "softmax_xp" / "mnist"


def _spellings(name: str) -> tuple[str, ...]:
    """``name`` raw or ``.gz``, also as Kaggle's copy spells it (``train-images.idx3-ubyte``)."""
    dotted = name.replace("-idx", ".idx")
    return name, f"{name}.gz", dotted, f"{dotted}.gz"


def _find(directory: Path, name: str) -> Path | None:
    """The file ``name`` in ``directory`` (any of its :func:`_spellings`), or None."""
    for spelling in _spellings(name):
        if (directory / spelling).is_file():
            return directory / spelling
    return None


def _subfolder_with(directory: Path, names: Sequence[str], limit: int = 200) -> Path | None:
    """A folder up to two levels below ``directory`` that holds all of ``names`` (such as
    torchvision's ``MNIST/raw``), looking at no more than ``limit`` folders; or None."""
    try:
        level = [p for p in sorted(directory.iterdir()) if p.is_dir()][:limit]
        below = [q for p in level for q in sorted(p.iterdir()) if q.is_dir()][: limit - len(level)]
    except OSError:
        return None
    return next((p for p in level + below if not _missing(p, names)), None)


def _missing(directory: Path, names: Sequence[str] = MNIST_FILES) -> list[str]:
    return [name for name in names if _find(directory, name) is None]


def _lacks(directory: Path, names: Sequence[str] = MNIST_FILES) -> str:
    """What ``directory`` lacks of ``names``, in words: a folder that is not there or is a file,
    and names present only as something other than a file (a folder, a broken link)."""
    if not directory.is_dir():
        what = "it is a file, not a folder" if directory.exists() else "no such folder"
        return f"missing {', '.join(names)} ({what})"
    described = []
    missing = _missing(directory, names)
    for name in missing:
        for candidate in (directory / spelling for spelling in _spellings(name)):
            if candidate.is_dir():
                name += f" ({candidate.name} is a folder, not a file)"
            elif candidate.is_symlink() and not candidate.exists():
                name += f" ({candidate.name} is a broken symbolic link)"
            elif os.path.lexists(candidate) and not candidate.is_file():
                name += f" ({candidate.name} is not a regular file)"
            else:
                continue
            break
        described.append(name)
    found = _subfolder_with(directory, names) if len(missing) == len(names) else None
    hint = f" (they are in {found}: give that folder)" if found else ""
    return "missing " + ", ".join(described) + hint


def _check_sha256(source: str | Path, actual: str, name: str) -> None:
    expected = MNIST_SHA256[name]
    if actual != expected:
        raise ChecksumError(
            f"{source}: SHA-256 of the decompressed content is {actual}, expected {expected} "
            "(corrupt file, or not the official MNIST file; verify=False loads other data sets)"
        )


def _read_checked(path: Path, name: str, verify: bool) -> np.ndarray:
    data = decompressed_bytes(path)
    if verify:
        _check_sha256(path, hashlib.sha256(data).hexdigest(), name)
    return parse_idx(data, path)


def _to_xy(images: np.ndarray, labels: np.ndarray, where: str) -> XY:
    """Check an images/labels pair and convert it to float32 (N, 784) in [0, 1] and int64."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetError(
            f"{where}: images must be uint8 N x 28 x 28, got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(f"{where}: labels must be uint8 N, got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise DatasetError(f"{where}: {len(images)} images but {len(labels)} labels")
    if labels.size and int(labels.max()) > 9:
        raise DatasetError(f"{where}: labels must be in 0..9, found {int(labels.max())}")
    X = images.reshape(len(images), 28 * 28).astype(np.float32)
    X /= np.float32(255.0)
    return X, labels.astype(np.int64)


def _load_dir(directory: Path, verify: bool, names: Sequence[str] = MNIST_FILES) -> list[XY]:
    """The (images, labels) pairs of ``names`` (train then test, or test alone)."""
    paths = [_find(directory, name) for name in names]
    if any(p is None for p in paths):
        raise DatasetNotFoundError(f"{directory}: {_lacks(directory, names)}")
    arrays = [
        _read_checked(path, name, verify)
        for path, name in zip(paths, names, strict=True)
        if path is not None
    ]
    return [
        _to_xy(arrays[i], arrays[i + 1], f"{directory} ({names[i].split('-')[0]})")
        for i in range(0, len(names), 2)
    ]


def _not_found(
    tried: list[tuple[str, Path]], hint: str, names: Sequence[str] = MNIST_FILES
) -> DatasetNotFoundError:
    lines = [f"  - {path} ({label}): {_lacks(path, names)}" for label, path in tried]
    what = (
        "MNIST files"
        if len(names) == len(MNIST_FILES)
        else f"MNIST test files ({', '.join(names)})"
    )
    return DatasetNotFoundError(f"{what} not found. Looked in:\n" + "\n".join(lines) + hint)


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    *,
    verify: bool | None = None,
) -> tuple[XY, XY]:
    """Load MNIST (or any data set in its layout) as ``(X_train, y_train), (X_test, y_test)``.

    X is float32 in [0, 1] with shape (N, 784), C-contiguous; y is int64 in 0..9. See the module
    docstring for where it looks, what ``verify`` checks, and the errors it raises.

    Examples
    --------
    >>> from softmax_xp import load_mnist
    >>> (X_train, y_train), (X_test, y_test) = load_mnist()  # the bundled copy, offline
    >>> X_train.shape, X_train.dtype, y_train.shape, y_train.dtype
    ((60000, 784), dtype('float32'), (60000,), dtype('int64'))
    >>> float(X_test.min()), float(X_test.max()), int(y_test.max())
    (0.0, 1.0, 9)
    """
    train, test = _load(data_dir, download, verify, MNIST_FILES)
    return train, test


def load_mnist_test(
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    *,
    verify: bool | None = None,
) -> XY:
    """The test split ``(X_test, y_test)`` of :func:`~softmax_xp.load_mnist`, needing only the two ``t10k``
    files: looked for, verified and downloaded like ``load_mnist`` does all four.

    Examples
    --------
    >>> from softmax_xp.datasets import load_mnist_test
    >>> X_test, y_test = load_mnist_test()
    >>> X_test.shape, y_test[:10]
    ((10000, 784), array([7, 2, 1, 0, 4, 1, 4, 9, 5, 9]))
    """
    (test,) = _load(data_dir, download, verify, _TEST_FILES)
    return test


def _load(
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    verify: bool | None,
    names: Sequence[str],
) -> list[XY]:
    """The pairs of ``names`` from the first place that holds them all (module docstring)."""
    if data_dir is not None:
        directory = Path(data_dir).expanduser()  # "~/data" quoted in a shell, too
        if _missing(directory, names):
            if not download:
                hint = "\nPass download=True to download MNIST into it."
                raise _not_found([("data_dir", directory)], hint, names)
            download_mnist(directory, names=names)
        return _load_dir(directory, bool(verify), names)

    tried: list[tuple[str, Path]] = []
    env = os.environ.get("SOFTMAX_XP_DATA")
    sources = [("$SOFTMAX_XP_DATA", Path(os.path.expanduser(env)), bool(verify))] if env else []
    sources += [("bundled", bundled_dir(), verify is not False)]
    cache: Path | None = None
    try:
        cache = default_cache_dir()
        sources += [("cache", cache, verify is not False)]
    except DatasetError as exc:  # no cache: only an error where the cache is needed
        cache, no_cache = None, exc
    for label, directory, check in sources:
        if not _missing(directory, names):
            if label == "cache":
                return _load_cache(directory, check, names, download)
            return _load_dir(directory, check, names)
        tried.append((label, directory))
        if label == "$SOFTMAX_XP_DATA":
            warnings.warn(
                f"$SOFTMAX_XP_DATA={directory} lacks {_lacks(directory, names)[8:]}; "
                "looking in the bundled copy and the cache instead.",
                UserWarning,
                stacklevel=3,
            )
    if cache is None:
        raise _not_found(tried, f"\nT{str(no_cache)[1:]}", names)
    if not download:
        raise _not_found(tried, f"\nPass download=True to download MNIST into {cache}.", names)
    download_mnist(cache, names=names)
    return _load_dir(cache, verify is not False, names)


def _load_cache(cache: Path, verify: bool, names: Sequence[str], download: bool) -> list[XY]:
    """The cache's pairs. A damaged cached file (a download cut short by another tool, a disk
    error) is replaced by a fresh download when ``download``; otherwise the error says how."""
    try:
        return _load_dir(cache, verify, names)
    except DatasetError as exc:
        if not (download and _remove_damaged(cache, names)):
            if not download:
                exc.args = (
                    f"{exc}\nThat file is in the download cache ({cache}): pass download=True "
                    "to replace it with a fresh copy, or delete it.",
                )
            raise
    download_mnist(cache, names=names)
    return _load_dir(cache, verify, names)


def _remove_damaged(cache: Path, names: Sequence[str]) -> bool:
    """Remove the cached files whose content is not the official one; whether any was."""
    removed = False
    for name in names:
        path = _find(cache, name)
        if path is None:
            continue
        try:
            _read_checked(path, name, True)
        except DatasetError:
            log.warning("removing %s from the cache: its content is damaged", path)
            path.unlink()
            removed = True
    return removed


def _fetch(url: str, tmp: Path, timeout: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
        shutil.copyfileobj(response, out, _CHUNK)


def _sha256_decompressed(path: Path) -> str:
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _download_one(name: str, dest: Path, mirrors: Sequence[str], timeout: float) -> Path:
    """Download ``name``.gz from the first mirror that serves a verified copy; atomic."""
    final = dest / f"{name}.gz"
    failures: list[str] = []
    for mirror in mirrors:
        url = f"{mirror.rstrip('/')}/{name}.gz"
        fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{name}.gz.", suffix=".part")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            log.info("downloading %s", url)
            _fetch(url, tmp, timeout)
            _check_sha256(url, _sha256_decompressed(tmp), name)
            os.replace(tmp, final)
            return final
        except (OSError, ValueError, EOFError, zlib.error, ChecksumError) as exc:
            # OSError covers URLError, HTTPError, timeouts and gzip.BadGzipFile.
            failures.append(f"  - {url}: {type(exc).__name__}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DownloadError(f"could not download {name}.gz; tried:\n" + "\n".join(failures))


def download_mnist(
    dest_dir: str | os.PathLike[str],
    mirrors: Sequence[str] | None = None,
    timeout: float = 60.0,
    *,
    names: Sequence[str] = MNIST_FILES,
) -> Path:
    """Download the MNIST files missing from ``dest_dir`` (created if needed); return it.

    Each file is fetched into a temporary file in ``dest_dir``, its decompressed SHA-256 checked,
    then renamed into place, so no partial file is ever left. Mirrors (default
    :data:`MNIST_MIRRORS`) are tried in order; if all fail, :class:`DownloadError` lists them.
    ``names`` limits it to some of :data:`MNIST_FILES` (e.g. the two test files).

    Examples
    --------
    Only missing files are fetched, so a folder that already holds all four needs no network:

    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> from softmax_xp.datasets import download_mnist, load_mnist
    >>> from softmax_xp.datasets.mnist import bundled_dir
    >>> folder = Path(tempfile.mkdtemp()) / "mnist"
    >>> _ = shutil.copytree(bundled_dir(), folder)
    >>> download_mnist(folder) == folder
    True
    >>> len(load_mnist(folder)[1][1])
    10000

    ``download_mnist("data/mnist")`` on a fresh folder downloads the four files (about 11 MB) and
    checks each one's SHA-256; ``load_mnist(download=True)`` does so into the cache.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    mirror_list = list(MNIST_MIRRORS if mirrors is None else mirrors)
    if not mirror_list:
        raise ValueError("mirrors must name at least one URL")
    for name in _missing(dest, names):
        _download_one(name, dest, mirror_list, timeout)
    return dest


def split_validation(
    X: Any, y: Any, n_val: int = 10_000
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Split off the last ``n_val`` samples: ``(X[:-n_val], y[:-n_val]), (X[-n_val:], y[-n_val:])``.

    On MNIST's 60,000 training images this is the chapter's 50,000 / 10,000 split. Views, no copy.

    Examples
    --------
    >>> import numpy as np
    >>> from softmax_xp.datasets import split_validation
    >>> X, y = np.arange(20).reshape(10, 2), np.arange(10)
    >>> (X_train, y_train), (X_val, y_val) = split_validation(X, y, n_val=3)
    >>> y_train, y_val
    (array([0, 1, 2, 3, 4, 5, 6]), array([7, 8, 9]))
    """
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} samples but y has {len(y)}")
    if not 0 < n_val < n:
        raise ValueError(f"n_val must be between 1 and {n - 1} (X has {n} samples), got {n_val}")
    cut = n - n_val
    return (X[:cut], y[:cut]), (X[cut:], y[cut:])
