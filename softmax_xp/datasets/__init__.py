"""Data sets: the IDX file format and MNIST (bundled copy, directory, cache, verified download)."""

from softmax_xp.datasets.idx import DatasetError, IDXFormatError, read_idx, write_idx
from softmax_xp.datasets.mnist import (
    MNIST_FILES,
    MNIST_MIRRORS,
    MNIST_SHA256,
    ChecksumError,
    DatasetNotFoundError,
    DownloadError,
    default_cache_dir,
    download_mnist,
    load_mnist,
    load_mnist_test,
    split_validation,
)

__all__ = [
    "MNIST_FILES",
    "MNIST_MIRRORS",
    "MNIST_SHA256",
    "ChecksumError",
    "DatasetError",
    "DatasetNotFoundError",
    "DownloadError",
    "IDXFormatError",
    "default_cache_dir",
    "download_mnist",
    "load_mnist",
    "load_mnist_test",
    "read_idx",
    "split_validation",
    "write_idx",
]
