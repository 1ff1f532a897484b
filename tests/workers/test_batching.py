"""Batch sizes that follow device memory, and the out-of-memory back-off (pure logic)."""

from __future__ import annotations

import pytest
import torch

from shift.errors import WorkerError
from workers.batching import GROWTH_LIMIT, BatchSizer, run_with_backoff
from workers.device_loop import split_batch

MIB = 1 << 20


def test_cpu_keeps_the_specs_batch_size():
    sizer = BatchSizer(32, adaptive=False)
    for _ in range(5):
        assert sizer.observe(32, 10 * MIB, 100_000 * MIB) == 32


def test_grows_at_most_doubling_to_the_limit():
    sizer = BatchSizer(32)
    sizes = [sizer.observe(sizer.size, sizer.size * MIB, 1_000_000 * MIB) for _ in range(6)]
    assert sizes == [64, 128, 256, GROWTH_LIMIT * 32, GROWTH_LIMIT * 32, GROWTH_LIMIT * 32]


def test_growth_is_bounded_by_the_measured_free_memory():
    sizer = BatchSizer(32)
    # 1 MiB per row and 100 MiB free: 70 % of (free + this batch's 32 MiB) = 92 rows -> 88
    assert sizer.observe(32, 32 * MIB, 100 * MIB) == 64
    assert sizer.observe(64, 64 * MIB, 40 * MIB) == 72  # 0.7 * 104 = 72.8 -> 72
    # someone else took the memory: the next batch shrinks before it fails
    assert sizer.observe(72, 72 * MIB, 0) == 48  # 0.7 * 72 = 50.4 -> 48


def test_out_of_memory_halves_and_caps_later_growth():
    sizer = BatchSizer(64)
    assert sizer.out_of_memory(64) == 32
    assert sizer.size == 32
    for _ in range(4):
        sizer.observe(sizer.size, sizer.size * MIB, 1_000_000 * MIB)
    assert sizer.size < 64  # never tries the size that failed again
    assert sizer.ooms == 1


def test_one_row_that_does_not_fit_is_an_error():
    with pytest.raises(WorkerError, match="one row does not fit"):
        BatchSizer(8).out_of_memory(1)


class FakeModel:
    """Doubles its input; raises torch's CUDA out-of-memory error above ``fits`` rows."""

    def __init__(self, fits: int) -> None:
        self.fits = fits
        self.calls: list[int] = []

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(batch))
        if len(batch) > self.fits:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory ({len(batch)} rows)")
        return batch * 2


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError)


@pytest.mark.parametrize(("rows", "fits"), [(64, 64), (64, 20), (37, 5), (10, 1), (1, 1)])
def test_backoff_never_loses_or_reorders_rows(rows, fits):
    model, sizer, released = FakeModel(fits), BatchSizer(rows), []
    batch = torch.arange(rows, dtype=torch.float32)
    parts = run_with_backoff(
        batch, rows, model, split_batch, _is_oom, sizer, lambda: released.append(1)
    )
    out = torch.cat([p for _, p in parts])
    assert torch.equal(out, batch * 2)
    assert sum(n for n, _ in parts) == rows
    assert all(n <= fits for n, _ in parts)
    assert len(released) == sizer.ooms == sum(1 for c in model.calls if c > fits)


def test_backoff_splits_dict_batches_row_by_row():
    rows = 12
    batch = {"input_ids": torch.arange(rows * 3).reshape(rows, 3), "mask": torch.ones(rows, 3)}

    def model(part):
        if len(part["input_ids"]) > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return part["input_ids"].sum(dim=1)

    parts = run_with_backoff(batch, rows, model, split_batch, _is_oom, BatchSizer(rows))
    assert torch.equal(torch.cat([p for _, p in parts]), batch["input_ids"].sum(dim=1))


def test_backoff_gives_up_on_a_single_row():
    with pytest.raises(WorkerError, match="one row does not fit"):
        run_with_backoff(torch.zeros(4), 4, FakeModel(0), split_batch, _is_oom, BatchSizer(4))


def test_other_errors_are_not_retried():
    def broken(batch):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        run_with_backoff(torch.zeros(4), 4, broken, split_batch, _is_oom, BatchSizer(4))
