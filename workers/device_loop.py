"""The embedding loop: rows in, float32 features out, with the device never waiting on input.

Reading a row (decoding an image, say) and preprocessing it (resizing, tokenizing) run on a
small pool of prefetch threads, at most :data:`PREFETCH_DEPTH` batches ahead of the model;
the device thread only copies batches to the device and runs the model. On CUDA each batch
is put in pinned host memory by its prefetch thread and copied with ``non_blocking=True``,
the features stay on the device until the range is done (one copy back, no sync per batch),
the batch size follows the device's free memory and an out-of-memory batch is halved and
retried (:mod:`workers.batching`). On a CPU the batches are the spec's, cut from the start
of the range exactly as :meth:`FeatureExtractor.embed` cuts them, so the features are
bit-identical to embedding the rows in one call.

Text models prefetch on one thread: a fast tokenizer is not safe to call from two threads
at once, and it already encodes a batch on several cores itself.
"""

from __future__ import annotations

import collections
import os
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from shift.specs import Modality
from workers.batching import BatchSizer, run_with_backoff
from workers.kinds import TaskContext
from workers.models.base import FeatureExtractor
from workers.precision import is_cuda, use_device
from workers.readers import Dataset

PREFETCH_DEPTH = 3
"""Batches read and preprocessed ahead of the model."""

MAX_PREFETCH_THREADS = 4
"""Most prefetch threads of one worker."""


@dataclass
class LoopFigures:
    """What one run of the loop measured.

    Attributes:
        batches: Forward passes that completed (a batch that ran out of memory counts as
            the halves that then ran).
        wait_s: Time the model loop waited for a prefetched batch (input-bound time).
        batch_sizes: The size of every batch that ran, in order.
        ooms: Batches that ran out of memory and were halved.
    """

    batches: int = 0
    wait_s: float = 0.0
    batch_sizes: tuple[int, ...] = ()
    ooms: int = 0


_SIZERS: weakref.WeakKeyDictionary[FeatureExtractor, BatchSizer] = weakref.WeakKeyDictionary()


def sizer_of(extractor: FeatureExtractor) -> BatchSizer:
    """The batch sizer of a loaded model: kept while the model stays loaded, so what one
    block learnt about the device's memory sizes the next block's batches."""
    sizer = _SIZERS.get(extractor)
    if sizer is None:
        sizer = _SIZERS[extractor] = BatchSizer(
            extractor.batch_size, adaptive=is_cuda(extractor.device)
        )
    return sizer


def prefetch_threads(extractor: FeatureExtractor) -> int:
    """Prefetch threads for a model: one for text and on a CPU (where the model itself uses
    every core), else up to :data:`MAX_PREFETCH_THREADS`, the cores shared by the GPUs."""
    if extractor.spec.modality is Modality.TEXT or not is_cuda(extractor.device):
        return 1
    import torch

    gpus = max(1, torch.cuda.device_count())
    return max(1, min(MAX_PREFETCH_THREADS, (os.cpu_count() or 1) // gpus))


def pin(batch: Any) -> Any:
    """The batch in pinned (page-locked) host memory, so the copy to CUDA is asynchronous."""
    if hasattr(batch, "pin_memory"):
        return batch.pin_memory()
    if isinstance(batch, dict):
        return {k: v.pin_memory() if hasattr(v, "pin_memory") else v for k, v in batch.items()}
    return batch


def split_batch(batch: Any, rows: int) -> tuple[Any, Any]:
    """The first ``rows`` rows of a batch input (a tensor or a dict of tensors), and the rest."""
    if isinstance(batch, dict):
        parts = {
            k: split_batch(v, rows) if hasattr(v, "shape") else (v, v) for k, v in batch.items()
        }
        return {k: p[0] for k, p in parts.items()}, {k: p[1] for k, p in parts.items()}
    return batch[:rows], batch[rows:]


class CudaMemory:
    """Measures what a batch used on one CUDA device (the shell of :class:`BatchSizer`)."""

    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self._before = 0

    def before(self) -> None:
        """Start measuring a batch."""
        self.torch.cuda.reset_peak_memory_stats(self.device)
        self._before = self.torch.cuda.memory_allocated(self.device)

    def after(self) -> tuple[int, int]:
        """``(used_bytes, free_bytes)``: the batch's peak beyond what was held before, and
        the memory free for the next one (the driver's free memory plus the allocator's
        cached, unused blocks)."""
        cuda = self.torch.cuda
        used = cuda.max_memory_allocated(self.device) - self._before
        free, _ = cuda.mem_get_info(self.device)
        cached = cuda.memory_reserved(self.device) - cuda.memory_allocated(self.device)
        return int(used), int(free + cached)

    def is_oom(self, error: BaseException) -> bool:
        """True when ``error`` says the device ran out of memory."""
        return isinstance(error, self.torch.cuda.OutOfMemoryError)

    def release(self) -> None:
        """Give cached blocks back after an out-of-memory."""
        self.torch.cuda.empty_cache()


def embed_range(
    extractor: FeatureExtractor,
    data: Dataset,
    start: int,
    stop: int,
    ctx: TaskContext | None = None,
    depth: int = PREFETCH_DEPTH,
    threads: int | None = None,
    sizer: BatchSizer | None = None,
) -> tuple[np.ndarray, LoopFigures]:
    """Features of rows ``[start, stop)`` of ``data`` as a float32 array, and the figures.

    Args:
        extractor: The loaded model.
        data: The dataset.
        start: First row.
        stop: Row after the last.
        ctx: The task (cancellation and progress), if any.
        depth: Batches prefetched ahead of the model.
        threads: Prefetch threads (:func:`prefetch_threads` by default).
        sizer: The batch sizes (:func:`sizer_of` the model by default: adaptive on CUDA,
            the spec's on a CPU).

    Raises:
        Cancelled: the task was cancelled.
        WorkerError: a single row does not fit on the device.
        CatalogError: a row cannot be read.
    """
    import torch

    cuda = is_cuda(extractor.device)
    use_device(extractor.device)
    sizer = sizer or sizer_of(extractor)
    ooms_before = sizer.ooms
    memory = CudaMemory(extractor.device) if cuda else None
    figures = LoopFigures()
    sizes: list[int] = []

    def prepare(lo: int, hi: int) -> Any:
        batch = extractor.preprocess(data.rows(lo, hi))
        return pin(batch) if cuda else batch

    def run(batch: Any) -> Any:
        if memory is not None:
            memory.before()
        out = extractor.forward_batch(batch)
        sizes.append(int(out.shape[0]))
        if memory is not None:
            used, free = memory.after()
            sizer.observe(int(out.shape[0]), used, free)
        return out

    outputs: list[Any] = []
    pending: collections.deque[tuple[int, int, Future[Any]]] = collections.deque()
    pool = ThreadPoolExecutor(
        threads or prefetch_threads(extractor),
        thread_name_prefix="prefetch",
        initializer=use_device,
        initargs=(extractor.device,),
    )
    cut = start
    try:
        with torch.inference_mode():
            while cut < stop or pending:
                while cut < stop and len(pending) < max(1, depth):
                    hi = min(cut + sizer.size, stop)
                    pending.append((cut, hi, pool.submit(prepare, cut, hi)))
                    cut = hi
                lo, hi, future = pending.popleft()
                if ctx is not None:
                    ctx.check_cancelled()
                    ctx.progress(lo - start, stop - start, "embedding")
                waited = time.perf_counter()
                batch = future.result()
                figures.wait_s += time.perf_counter() - waited
                parts = run_with_backoff(
                    batch,
                    hi - lo,
                    run,
                    split_batch,
                    memory.is_oom if memory is not None else _never,
                    sizer,
                    memory.release if memory is not None else _nothing,
                )
                outputs += [out for _, out in parts]
            features = torch.cat(outputs).cpu().numpy() if outputs else None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    figures.batches, figures.batch_sizes, figures.ooms = (
        len(sizes),
        tuple(sizes),
        sizer.ooms - ooms_before,
    )
    if features is None:
        return np.zeros((0, extractor.feature_dim), dtype=np.float32), figures
    return np.ascontiguousarray(features, dtype=np.float32), figures


def _never(error: BaseException) -> bool:
    return False


def _nothing() -> None:
    return None


__all__ = [
    "PREFETCH_DEPTH",
    "LoopFigures",
    "embed_range",
    "pin",
    "prefetch_threads",
    "sizer_of",
    "split_batch",
]
