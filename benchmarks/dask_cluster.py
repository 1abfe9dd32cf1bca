"""Section "dask": SoftmaxXP on Dask arrays against the same work in memory.

- Block SGD: one epoch on a 2-worker LocalCluster (threads_per_worker=1, the data persisted on
  the workers) against in-memory ``shuffle="blocks"`` with the same blocks (>= 40 MB each); the
  per-block overhead is the difference divided by the number of blocks.
- L-BFGS: seconds per iteration on the cluster against in memory (when the solver exists).
- Alignment: ``take`` of 256 rows from an unaligned block against an aligned copy (why every
  block is made aligned before its SGD).
- Out of core: an on-disk Zarr array of ``zarr_rows`` x 784 float32 trains one epoch; the peak
  RSS of the client and of each worker is sampled every 0.2 s.

Not part of the default run: ``python -m benchmarks --sections dask [--quick] [--zarr-rows N]``.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from softmax_xp import SoftmaxXP

from ._report import Section, ms, x
from ._timing import interleave

D, K = 784, 10
BLOCK_ROWS = 16_384  # 16,384 x 784 float32 = 51 MB per block
BATCH = 256


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


class PeakRss:
    """Peak RSS of this process and of every worker of ``client`` while the block runs."""

    def __init__(self, client: Any, every: float = 0.2):
        self.client, self.every = client, every
        self.client_peak, self.worker_peak = 0, 0
        self._done = threading.Event()

    def _sample(self) -> None:
        while not self._done.is_set():
            self.client_peak = max(self.client_peak, _rss())
            workers = self.client.run(_rss)
            self.worker_peak = max(self.worker_peak, *workers.values())
            self._done.wait(self.every)

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def _epoch_seconds(
    model: SoftmaxXP, X: Any, y: Any, epochs: int = 1, **kwargs: Any
) -> Callable[[], float]:
    """Mean epoch time of ``epochs`` epochs; BLAS limited to one thread in this process, like
    each worker (two BLAS threads here fight the cluster's processes for the 2 cores)."""
    from threadpoolctl import threadpool_limits

    def case() -> float:
        with threadpool_limits(1):
            history = model.train(X, y, epochs=epochs, verbose=0, **kwargs)
        return sum(history.epoch_time) / len(history.epoch_time)

    return case


def _set_alignment(on: bool) -> None:
    """Switch the copy of unaligned blocks on or off in this process (run on each worker)."""
    import softmax_xp._data.dask_tasks as module  # dask is imported only when this runs

    original = vars(module).setdefault("_aligned_original", module.aligned)
    module.aligned = original if on else (lambda x: x)


def _take(X: np.ndarray, idx: np.ndarray) -> None:
    np.take(X, idx, axis=0)


def _alignment(rows: int, repeats: int) -> tuple[float, float]:
    """Median seconds of ``take`` of 256 rows from an aligned and an unaligned float32 block."""
    X = np.random.default_rng(0).random((rows, D), dtype=np.float32)
    raw = np.empty(X.nbytes + 1, dtype=np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=np.float32, count=X.size, offset=1).reshape(X.shape)
    unaligned[...] = X
    idx = np.random.default_rng(1).permutation(rows)[:BATCH]
    times = interleave(
        {
            "aligned": lambda: _take(X, idx),
            "unaligned": lambda: _take(unaligned, idx),
        },
        repeats=max(repeats, 25),
    )
    return times["aligned"].median, times["unaligned"].median


def _write_zarr(path: Path, rows: int, block_rows: int) -> float:
    """A lazily generated ``rows x 784`` float32 array written to an uncompressed Zarr store."""
    import dask.array as da

    start = time.perf_counter()
    X = da.random.default_rng(0).random((rows, D), chunks=(block_rows, D), dtype=np.float32)
    y = da.random.default_rng(1).integers(0, K, size=rows, chunks=block_rows)
    da.to_zarr(X, str(path / "X.zarr"), compressors=None, mode="w")
    da.to_zarr(y, str(path / "y.zarr"), compressors=None, mode="w")
    return time.perf_counter() - start


def run(
    repeats: int, *, quick: bool, zarr_rows: int | None = None, workdir: Path | None = None
) -> Section:
    import dask.array as da
    from distributed import Client, LocalCluster

    s = Section(
        "dask. SoftmaxXP on Dask arrays, LocalCluster(n_workers=2, threads_per_worker=1)",
        ["row", "measured", "goal", "holds"],
    )
    blocks = 4 if quick else 8
    n = blocks * BLOCK_ROWS
    repeats = 3 if quick else max(3, repeats // 2)
    zarr_rows = zarr_rows or (250_000 if quick else 4_000_000)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        # Blocks generated on the workers (as a worker reading a file gets them: aligned) ...
        Xd = da.random.default_rng(0).random((n, D), chunks=(BLOCK_ROWS, D), dtype=np.float32)
        yd = da.random.default_rng(1).integers(0, K, size=n, chunks=BLOCK_ROWS)
        Xd, yd = client.persist([Xd, yd])
        X, y = client.compute([Xd, yd], sync=True)  # ... and the same rows in memory here,
        X = np.require(X, requirements=["A", "C"])  # where they arrive unaligned too
        with warnings.catch_warnings():  # "Sending large graph": the data, sent once
            warnings.simplefilter("ignore", UserWarning)
            Xs = da.from_array(X, chunks=(BLOCK_ROWS, D)).persist()  # sent: unaligned there
            ys = da.from_array(y, chunks=BLOCK_ROWS).persist()
        memory = SoftmaxXP(D, K, backend="numpy", seed=0)
        on_cluster = SoftmaxXP(D, K, backend="numpy", seed=0)
        sgd = interleave(
            {
                "memory": _epoch_seconds(
                    memory, X, y, shuffle="blocks", block_rows=BLOCK_ROWS, batch_size=BATCH
                ),
                "cluster": _epoch_seconds(on_cluster, Xd, yd, batch_size=BATCH),
                "sent": _epoch_seconds(on_cluster, Xs, ys, batch_size=BATCH),
            },
            repeats,
        )
        # The same epoch with the workers' aligned() switched off: blocks sent from this process
        # arrive unaligned, and sgd_epoch's take then reads them as they are.
        client.run(_set_alignment, False)
        try:
            raw = interleave(
                {"unaligned": _epoch_seconds(on_cluster, Xs, ys, batch_size=BATCH)}, repeats
            )
        finally:
            client.run(_set_alignment, True)
        unaligned_s = raw["unaligned"].median
        mem_s, dask_s = sgd["memory"].median, sgd["cluster"].median
        ratio = dask_s / mem_s
        block_mb = BLOCK_ROWS * D * 4 / 1e6
        s.rows.append(
            [
                f"in-memory blocks epoch ({n:,} rows, {blocks} blocks of {block_mb:.0f} MB)",
                f"{ms(mem_s)} ms",
                "-",
                "-",
            ]
        )
        s.rows.append(
            ["cluster epoch (same blocks, generated on the workers)", f"{ms(dask_s)} ms", "-", "-"]
        )
        s.rows.append(
            ["block SGD cluster / in memory", x(ratio), "<= 2.5x", "yes" if ratio <= 2.5 else "no"]
        )
        s.rows.append(
            [
                "blocks sent from the client (unaligned there): epoch with aligned copies",
                f"{ms(sgd['sent'].median)} ms",
                "-",
                "-",
            ]
        )
        s.rows.append(
            [
                "the same epoch, blocks left unaligned / aligned copies",
                x(unaligned_s / sgd["sent"].median),
                "-",
                "-",
            ]
        )
        overhead = (dask_s - mem_s) / blocks
        s.rows.append(
            ["per-block overhead (cluster - memory) / blocks", f"{ms(overhead)} ms", "-", "-"]
        )
        s.data.update(
            sgd={k: v.to_dict() for k, v in sgd.items()},
            sgd_ratio=ratio,
            per_block_overhead_s=overhead,
        )

        if "solver" in SoftmaxXP.train.__code__.co_varnames:
            iters = 5
            mem_lb = SoftmaxXP(D, K, backend="numpy", seed=0)
            dask_lb = SoftmaxXP(D, K, backend="numpy", seed=0)
            lb = interleave(
                {
                    "memory": _epoch_seconds(mem_lb, X, y, epochs=iters, solver="lbfgs", tol=0.0),
                    "cluster": _epoch_seconds(
                        dask_lb, Xd, yd, epochs=iters, solver="lbfgs", tol=0.0
                    ),
                },
                repeats,
            )
            lb_ratio = lb["cluster"].median / lb["memory"].median
            s.rows.append(
                ["L-BFGS iteration, in memory", f"{ms(lb['memory'].median)} ms", "-", "-"]
            )
            s.rows.append(["L-BFGS iteration, cluster", f"{ms(lb['cluster'].median)} ms", "-", "-"])
            s.rows.append(
                [
                    "L-BFGS iteration cluster / in memory",
                    x(lb_ratio),
                    "<= 3x",
                    "yes" if lb_ratio <= 3 else "no",
                ]
            )
            s.data.update(lbfgs={k: v.to_dict() for k, v in lb.items()}, lbfgs_ratio=lb_ratio)
        else:
            s.notes.append("L-BFGS row skipped: this build has no solver='lbfgs'.")
        del Xd, yd, Xs, ys, X, y

        aligned_s, unaligned_s = _alignment(BLOCK_ROWS, repeats)
        s.rows.append(
            [
                f"take of {BATCH} rows, unaligned / aligned block",
                x(unaligned_s / aligned_s),
                "blocks made aligned",
                "-",
            ]
        )
        s.data.update(take_aligned_s=aligned_s, take_unaligned_s=unaligned_s)

        root = Path(tempfile.mkdtemp(prefix="softmax_xp-zarr-", dir=workdir))
        try:
            import zarr  # noqa: F401  (the on-disk format of this row)

            write_s = _write_zarr(root, zarr_rows, BLOCK_ROWS)
            Xz, yz = da.from_zarr(str(root / "X.zarr")), da.from_zarr(str(root / "y.zarr"))
            gb = Xz.nbytes / 1e9
            model = SoftmaxXP(D, K, backend="numpy", seed=0, lr=0.01)
            start = time.perf_counter()
            with PeakRss(client) as peak:
                model.train(Xz, yz, epochs=1, batch_size=BATCH, verbose=0)
            total_s = time.perf_counter() - start
            worst = max(peak.client_peak, peak.worker_peak)
            s.rows.append(
                [
                    f"out of core: Zarr {zarr_rows:,} x {D} float32 ({gb:.1f} GB), one epoch",
                    f"{total_s:.0f} s (epoch {model.history_.epoch_time[0]:.0f} s)",
                    "-",
                    "-",
                ]
            )
            s.rows.append(
                [
                    "peak RSS: client / largest worker",
                    f"{peak.client_peak / 2**20:.0f} MB / {peak.worker_peak / 2**20:.0f} MB",
                    "< 2 GB each",
                    "yes" if worst < 2 * 2**30 else "no",
                ]
            )
            s.notes.append(
                f"Zarr written in {write_s:.0f} s (uncompressed, chunks of {BLOCK_ROWS:,} rows) under {root.parent}."
            )
            s.data.update(
                zarr_rows=zarr_rows, zarr_gb=gb, zarr_write_s=write_s, zarr_train_s=total_s,
                zarr_epoch_s=model.history_.epoch_time[0], client_peak_rss=peak.client_peak,
                worker_peak_rss=peak.worker_peak,
            )  # fmt: skip
        except ImportError:
            s.notes.append("out-of-core row skipped: zarr is not installed.")
        finally:
            shutil.rmtree(root, ignore_errors=True)
    s.notes += [
        f"median of {repeats} interleaved repeats after a warm-up; batch {BATCH}; float32; epoch times are History.epoch_time",
        "single-threaded BLAS everywhere: the workers (threads_per_worker=1) and the in-memory rows (threadpoolctl)",
        "the train() total of the out-of-core row includes the validation pass (one read of the store) before the epoch",
    ]
    return s
