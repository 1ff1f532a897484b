"""Batch sizes that follow device memory, and the out-of-memory back-off.

Pure logic, no torch: the device loop (:mod:`workers.device_loop`) measures and decides
with these. On a CPU the spec's batch size is kept as it is (the features then match the
spec's batches exactly); on a CUDA device the size starts from the spec's, grows while the
measured free memory allows (at most doubling per batch, to :attr:`BatchSizer.maximum`), and
shrinks when a batch runs out of memory: that batch is halved and retried, so no row is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from shift.errors import WorkerError

HEADROOM = 0.7
"""Share of the free device memory a batch may plan to use (the rest absorbs fragmentation
and the other processes on the device)."""

GROWTH_LIMIT = 8
"""A batch grows to at most this multiple of the spec's batch size."""

ALIGN = 8
"""Grown sizes are rounded down to a multiple of this (tensor-core friendly shapes)."""


class BatchSizer:
    """The batch size of the next batch, from what earlier batches used.

    Args:
        start: The spec's batch size (the first batch's size).
        adaptive: False on a CPU: the size stays ``start`` whatever is measured.
        maximum: The largest size it grows to (``GROWTH_LIMIT * start`` by default).
        headroom: Share of the free memory it plans to fill.
    """

    def __init__(
        self,
        start: int,
        adaptive: bool = True,
        maximum: int | None = None,
        headroom: float = HEADROOM,
    ) -> None:
        if start < 1:
            raise WorkerError(f"batch size must be at least 1, got {start}")
        self.size = start
        self.adaptive = adaptive
        self.maximum = max(start, maximum if maximum is not None else GROWTH_LIMIT * start)
        self.headroom = headroom
        self.ceiling = self.maximum
        """The largest size tried from now on: three quarters of the smallest size that ran
        out of memory, so repeated failures close in geometrically."""
        self.bytes_per_row: float | None = None
        self.ooms = 0

    def observe(self, rows: int, used_bytes: int, free_bytes: int) -> int:
        """Record a batch of ``rows`` that needed ``used_bytes`` on the device beyond what
        was held before it, with ``free_bytes`` free after it; return the next size."""
        if not self.adaptive or rows < 1:
            return self.size
        per_row = max(used_bytes, 1) / rows
        self.bytes_per_row = (
            per_row if self.bytes_per_row is None else max(per_row, 0.5 * self.bytes_per_row)
        )
        fits = int(self.headroom * (free_bytes + used_bytes) / self.bytes_per_row)
        wanted = min(fits, 2 * self.size, self.ceiling, self.maximum)
        if wanted >= ALIGN:
            wanted -= wanted % ALIGN
        self.size = max(1, wanted)
        return self.size

    def out_of_memory(self, rows: int) -> int:
        """A batch of ``rows`` ran out of memory: return the size to retry with (half).

        Raises:
            WorkerError: a single row does not fit on the device.
        """
        self.ooms += 1
        if rows <= 1:
            raise WorkerError(
                "one row does not fit in the device's free memory; free the device (other "
                "processes on it) or run this model on a device with more memory"
            )
        self.ceiling = max(1, min(self.ceiling, (3 * rows) // 4))
        self.size = max(1, min(self.size, rows // 2))
        return rows // 2


Part = TypeVar("Part")
Out = TypeVar("Out")


def run_with_backoff(
    batch: Part,
    rows: int,
    run: Callable[[Part], Out],
    split: Callable[[Part, int], tuple[Part, Part]],
    is_oom: Callable[[BaseException], bool],
    sizer: BatchSizer,
    on_oom: Callable[[], None] = lambda: None,
) -> list[tuple[int, Out]]:
    """Run ``batch`` (``rows`` rows); on out-of-memory, halve and retry each half.

    Args:
        batch: The preprocessed batch.
        rows: Its number of rows.
        run: Runs a batch; may raise an out-of-memory error.
        split: ``split(batch, k)`` gives the first ``k`` rows and the rest.
        is_oom: Whether an error means the device ran out of memory.
        sizer: Told of every out-of-memory, so later batches are smaller.
        on_oom: Called after each out-of-memory (frees the device cache).

    Returns:
        ``(rows, output)`` of each part that ran, in row order: every row exactly once.

    Raises:
        WorkerError: a single row ran out of memory.
    """
    done: list[tuple[int, Out]] = []
    todo: list[tuple[Part, int]] = [(batch, rows)]
    while todo:
        part, n = todo.pop()
        try:
            done.append((n, run(part)))
            continue
        except Exception as error:
            if not is_oom(error):
                raise
        # Outside the handler: the error's traceback, and the tensors its frames hold, are
        # gone, so on_oom can give their memory back.
        on_oom()
        half = sizer.out_of_memory(n)
        first, rest = split(part, half)
        todo += [(rest, n - half), (first, half)]  # the first half runs first
    return done
