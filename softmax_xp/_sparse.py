"""Sparse features: the one module that knows scipy.sparse, cupyx.scipy.sparse and torch's
sparse layouts, which the array API standard does not cover.

A sparse ``X`` (n x d) is held in CSR on the model's backend and never densified: the library
only needs three things of it, each a sparse library's own call:

    rows(X, idx)      the rows idx, as CSR (a mini-batch or an inference chunk)
    X @ W             sparse-dense product, dense (n x K)
    X.T @ G           sparse-dense product, dense (d x K)

Which sparse input goes with which backend:

    numpy   scipy.sparse (any format; CSR used as is, others converted once)
    torch   torch sparse CSR or COO tensors, and scipy.sparse (moved once)
    cupy    cupyx.scipy.sparse, and scipy.sparse (moved once)

array-api-strict (and any other backend) has no sparse arrays: sparse input is refused there
with the way out (a NumPy model, or ``X.toarray()``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ._backend import Backend, asarray_on, to_numpy
from ._fingerprint import combine, patterns
from ._validation import check_finite, warn_unscaled

__all__ = [
    "SPARSE_BACKENDS",
    "SPARSE_OPS",
    "CsrOps",
    "as_sparse_features",
    "block_csr",
    "check_sparse_finite",
    "dense_namespace",
    "is_sparse",
    "row_slice",
    "rows_of",
    "sparse_fingerprint",
    "sparse_fingerprint_part",
    "sparse_library",
    "sparse_on_host",
    "stored_values",
]

Array = Any
SPARSE_BACKENDS = {"numpy": "scipy.sparse", "torch": "torch sparse", "cupy": "cupyx.scipy.sparse"}
_MODEL = "SoftmaxXP"


class TorchCSR:
    """A torch sparse CSR matrix with what the library needs of it: ``X @ W``, ``X.T @ G``
    (torch has no transpose of a CSR tensor: ``X.T`` is the CSR of the transpose, built once)
    and its shape and dtype."""

    def __init__(self, csr: Any):
        self.csr = csr
        self.shape = tuple(csr.shape)
        self.ndim = 2
        self.dtype = csr.dtype
        self._transposed: Any = None

    def __matmul__(self, other: Array) -> Array:
        return self.csr @ other

    @property
    def T(self) -> Any:
        if self._transposed is None:
            csc = self.csr.to_sparse_csc()
            n, d = self.shape
            self._transposed = _csr_tensor(
                csc.ccol_indices(), csc.row_indices(), csc.values(), size=(d, n)
            )
        return self._transposed


def sparse_library(x: Any) -> str | None:
    """``"scipy"``, ``"cupyx"``, ``"torch"`` or ``"pydata"`` for a sparse ``x``, None for a dense
    one; recognised by type, so no sparse library is imported."""
    if isinstance(x, TorchCSR):
        return "torch"
    module = type(x).__module__
    if module.startswith("scipy.sparse"):
        return "scipy"
    if module.startswith("cupyx.scipy.sparse"):
        return "cupyx"
    if module.startswith("sparse"):
        return "pydata"
    if module.startswith("torch") and str(getattr(x, "layout", "torch.strided")) != "torch.strided":
        return "torch"
    return None


def is_sparse(x: Any) -> bool:
    """Whether ``x`` is a sparse matrix or tensor of a library we know."""
    return sparse_library(x) is not None


# -- checks and conversion ---------------------------------------------------------------------
def as_sparse_features(
    X: Any, backend: Backend, dtype: Any, input_dim: int, name: str = "X"
) -> Any:
    """Sparse ``X`` checked (format, shape, dtype, finite stored values; a warning for unscaled
    integers) as CSR of ``dtype`` on ``backend``. A CSR ``X`` already there is used as is (no
    copy); other formats and libraries are converted once, keeping int32 or int64 indices."""
    library = sparse_library(X)
    if backend.name not in SPARSE_BACKENDS:
        raise TypeError(
            f"{name} is a sparse {type(X).__name__}, but the {backend.name} backend has no sparse "
            f"arrays. Train a backend='numpy' model on it (scipy.sparse CSR), or pass a dense "
            f"{name} ({_densify(X, name)}) if it fits in memory."
        )
    if library == "pydata":
        raise TypeError(
            f"{name} is a pydata sparse {type(X).__name__}, which {_MODEL} does not take; "
            f"convert it to scipy.sparse CSR first: {name}.tocsr()."
        )
    _check_shape(tuple(X.shape), input_dim, name)
    _check_dtype(_dtype_name(X), name)
    if backend.name == "numpy":
        X = _scipy_csr(sparse_on_host(X))
    elif backend.name == "torch":
        X = _torch_csr(X, backend)
    else:
        X = _cupyx_csr(X, backend)
    high = _integer_max(X)
    if high is not None:
        warn_unscaled(name, _dtype_name(X), high)
    X = _astype(X, backend, dtype)
    check_sparse_finite(X, backend, name)
    return X


def _densify(X: Any, name: str) -> str:
    return f"{name}.to_dense()" if sparse_library(X) == "torch" else f"{name}.toarray()"


def _check_shape(shape: tuple[int, ...], input_dim: int, name: str) -> None:
    if len(shape) != 2:
        raise ValueError(
            f"Expected a 2-D sparse {name} of shape (n_samples, {input_dim}), got {shape}."
        )
    if shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={shape}) while a minimum of 1 is required "
            f"by {_MODEL}."
        )
    if shape[1] != input_dim:
        raise ValueError(
            f"{name} has {shape[1]} features, but {_MODEL} is expecting {input_dim} features "
            "as input."
        )


def _dtype_name(X: Any) -> str:
    return str(getattr(X.dtype, "name", X.dtype)).rsplit(".", 1)[-1]


def _check_dtype(dtype: str, name: str) -> None:
    kind = np.dtype(dtype).kind if dtype not in ("bfloat16",) else "f"
    if kind == "c":
        raise TypeError(f"{name} has complex dtype {dtype}; {_MODEL} needs real features.")
    if kind not in "biuf":
        raise TypeError(f"{name} has dtype {dtype}; {_MODEL} needs numeric features.")


def sparse_on_host(X: Any) -> Any:
    """A sparse ``X`` of any library as a scipy.sparse matrix or array (no copy for scipy)."""
    library = sparse_library(X)
    if library == "scipy":
        return X
    if library == "cupyx":
        return X.get()
    from scipy import sparse

    if isinstance(X, TorchCSR):
        X = X.csr
    X = X.detach().cpu()
    if X.layout != _torch().sparse_csr:
        X = X.to_sparse_csr()
    parts = (X.values().numpy(), X.col_indices().numpy(), X.crow_indices().numpy())
    return sparse.csr_matrix(parts, shape=tuple(X.shape))


def _scipy_csr(X: Any) -> Any:
    """scipy CSR of ``X`` (itself when it already is CSR; other formats converted once)."""
    return X if X.format == "csr" else X.tocsr()


def _torch() -> Any:
    import torch

    return torch


def _csr_tensor(*args: Any, **kwargs: Any) -> Any:
    """``torch.sparse_csr_tensor`` without its warnings that sparse CSR is in beta and that
    invariant checks are off (our tensors are built from valid ones)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse", category=UserWarning)
        return _torch().sparse_csr_tensor(*args, **kwargs)


def _torch_csr(X: Any, backend: Backend) -> TorchCSR:
    torch = _torch()
    if isinstance(X, TorchCSR):
        X = X.csr
    if sparse_library(X) == "torch":
        if X.layout not in (torch.sparse_csr, torch.sparse_coo):
            raise TypeError(
                f"X is a torch tensor of layout {X.layout}; {_MODEL} takes torch.sparse_csr "
                "and torch.sparse_coo: convert it with X.to_sparse_csr()."
            )
        if X.layout == torch.sparse_coo:
            X = X.coalesce().to_sparse_csr()
        return TorchCSR(X.to(device=backend.device))
    X = _scipy_csr(sparse_on_host(X))
    return TorchCSR(
        _csr_tensor(
            torch.from_numpy(X.indptr),
            torch.from_numpy(X.indices),
            torch.from_numpy(X.data),
            size=X.shape,
            device=backend.device,
        )
    )


def _cupyx_csr(X: Any, backend: Backend) -> Any:
    import cupyx.scipy.sparse as cusparse

    with backend.activate():
        if sparse_library(X) == "cupyx":
            return X if X.format == "csr" else X.tocsr()
        return cusparse.csr_matrix(_scipy_csr(sparse_on_host(X)))


def stored_values(X: Any) -> Array:
    """The stored values of a CSR ``X`` (a dense 1-D array of its library)."""
    return X.csr.values() if isinstance(X, TorchCSR) else X.data


def _integer_max(X: Any) -> int | None:
    """The largest stored value of an integer-valued ``X`` (None for floating ``X``)."""
    values = stored_values(X)
    if _dtype_name(X) in ("float16", "float32", "float64", "bfloat16", "bool"):
        return None
    return int(to_numpy(values.max())) if values.shape[0] else 0


def _astype(X: Any, backend: Backend, dtype: Any) -> Any:
    if isinstance(X, TorchCSR):
        return X if X.dtype == dtype else TorchCSR(X.csr.to(dtype=dtype))
    target = np.dtype(dtype)  # NumPy's and CuPy's dtypes are NumPy's
    return X.astype(target) if X.dtype != target else X


def check_sparse_finite(X: Any, backend: Backend, name: str = "X") -> None:
    """Refuse NaN or infinity among the stored values of ``X`` (one host read)."""
    values = stored_values(X)
    if values.shape[0]:
        check_finite(values, backend.xp, name)


# -- rows --------------------------------------------------------------------------------------
def rows_of(X: Any, index: Array) -> Any:
    """The rows ``index`` of a CSR ``X`` (device indices), as CSR: a mini-batch's gather."""
    if not isinstance(X, TorchCSR):
        return X[index]
    torch = _torch()
    crow, col, values = X.csr.crow_indices(), X.csr.col_indices(), X.csr.values()
    index = index.to(crow.dtype)
    starts = crow[index]
    counts = crow[index + 1] - starts
    new_crow = torch.zeros(index.shape[0] + 1, dtype=crow.dtype, device=crow.device)
    torch.cumsum(counts, 0, out=new_crow[1:])
    total = int(new_crow[-1])
    shift = torch.repeat_interleave(starts - new_crow[:-1], counts, output_size=total)
    where = shift + torch.arange(total, dtype=crow.dtype, device=crow.device)
    return TorchCSR(
        _csr_tensor(new_crow, col[where], values[where], size=(index.shape[0], X.shape[1]))
    )


class CsrOps:
    """What SGD needs of a CSR ``X`` (:class:`softmax_xp.solvers.sgd_sparse.SparseOps`): a
    batch's rows, and its entries on its active columns."""

    rows = staticmethod(lambda X, index: rows_of(X, index))

    @staticmethod
    def active(Xb: Any) -> tuple[Array, Any, Any]:
        """``(A, Xc, XcT)``: the sorted columns ``A`` with entries in ``Xb``, and ``Xb``
        restricted to them, ``(n_b, |A|)`` and its transpose (both sparse)."""
        if isinstance(Xb, TorchCSR):
            return _torch_active(Xb)
        xp = dense_namespace(Xb)
        csc = Xb.tocsc()  # column j's entries: csc.indptr[j] .. csc.indptr[j + 1]
        A = xp.nonzero(csc.indptr[1:] != csc.indptr[:-1])[0]
        end = xp.asarray([csc.nnz], dtype=csc.indptr.dtype)
        indptr = xp.concat([csc.indptr[A], end])  # the empty columns hold no entries
        XcT = type(Xb)((csc.data, csc.indices, indptr), shape=(A.shape[0], Xb.shape[0]))
        return A, XcT.T, XcT


def _torch_active(Xb: TorchCSR) -> tuple[Array, Any, Any]:
    """:meth:`CsrOps.active` of a torch CSR batch."""
    torch = _torch()
    csr = Xb.csr
    csc = csr.to_sparse_csc()
    ccol = csc.ccol_indices()
    A = torch.nonzero(ccol[1:] != ccol[:-1]).reshape(-1)
    end = torch.tensor([csc._nnz()], dtype=ccol.dtype, device=ccol.device)
    n = Xb.shape[0]
    XcT = _csr_tensor(
        torch.cat([ccol[A], end]), csc.row_indices(), csc.values(), size=(A.shape[0], n)
    )
    remap = torch.empty(Xb.shape[1], dtype=csr.col_indices().dtype, device=ccol.device)
    remap[A] = torch.arange(A.shape[0], dtype=remap.dtype, device=ccol.device)
    Xc = _csr_tensor(
        csr.crow_indices(), remap[csr.col_indices()], csr.values(), size=(n, A.shape[0])
    )
    return A, Xc, XcT


SPARSE_OPS = CsrOps()


def row_slice(X: Any, rows: slice) -> Any:
    """Rows ``rows.start .. rows.stop`` of a CSR ``X``, as CSR (views where the library can)."""
    if not isinstance(X, TorchCSR):
        return X[rows.start : rows.stop]
    csr = X.csr
    crow = csr.crow_indices()
    lo, hi = int(crow[rows.start]), int(crow[rows.stop])
    return TorchCSR(
        _csr_tensor(
            crow[rows.start : rows.stop + 1] - lo,
            csr.col_indices()[lo:hi],
            csr.values()[lo:hi],
            size=(rows.stop - rows.start, X.shape[1]),
        )
    )


def dense_namespace(X: Any) -> Any:
    """The array namespace of the dense arrays that go with a sparse ``X``: that of its stored
    values (array-api-compat's NumPy, CuPy or torch)."""
    return array_namespace(stored_values(X))


def block_csr(Xb: Any, dtype: str) -> Any:
    """A sparse block (scipy or cupyx, as a Dask array's chunks are) as CSR of ``dtype``, in
    its own library; no copy when it already is."""
    library = sparse_library(Xb)
    if library not in ("scipy", "cupyx"):
        raise TypeError(
            f"A Dask chunk is a sparse {type(Xb).__name__}; {_MODEL} takes Dask chunks that are "
            "dense arrays or scipy.sparse / cupyx.scipy.sparse matrices (e.g. from "
            "X.map_blocks(scipy.sparse.csr_matrix))."
        )
    Xb = Xb if Xb.format == "csr" else Xb.tocsr()
    return Xb if Xb.dtype == np.dtype(dtype) else Xb.astype(dtype)


# -- fingerprint -------------------------------------------------------------------------------
def sparse_fingerprint_part(X: Any, y: Any, offset: int) -> tuple[int, np.ndarray, int]:
    """:func:`softmax_xp._fingerprint.fingerprint_part` of a sparse block: the same sums
    ``r^T X C`` (as ``r^T (X C)``), so a dense array and its sparse copy match."""
    n, d = X.shape
    rows, columns, weights = patterns(offset, n, d)
    host = sparse_on_host(X)
    with np.errstate(all="ignore"):
        sums = rows @ np.asarray(host @ columns.astype(np.float64))
    labels = int(np.sum(to_numpy(y).astype(np.int64) * weights))
    largest = float(np.finfo(np.float64).max)
    return int(n), np.nan_to_num(sums, posinf=largest, neginf=-largest), labels


def sparse_fingerprint(backend: Backend, X: Any, y: Any) -> dict[str, Any]:
    """The data fingerprint of a sparse ``X`` and labels ``y`` (see :mod:`._fingerprint`)."""
    labels = asarray_on(backend, y, backend.xp.int64)
    return combine([sparse_fingerprint_part(X, labels, 0)])


def density(X: Any) -> float:
    """The fraction of ``X``'s entries that are stored."""
    n: int
    d: int
    n, d = X.shape
    stored: int = X.csr._nnz() if isinstance(X, TorchCSR) else X.nnz
    return stored / max(1, math.prod((n, d)))
