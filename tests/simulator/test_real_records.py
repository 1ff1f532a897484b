"""The shipped SHiFT records: the counts the docs state, and enumeration's zero regret."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.records import DEFAULT_RECORDS, Modality, Records, count_by, load_records
from simulator.replay import replay
from simulator.report import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"

VTAB_TASKS = {
    "caltech101", "cifar100", "dtd", "oxford_flowers102", "oxford_iiit_pet", "sun397",
    "svhn_cropped", "patch_camelyon", "eurosat", "resisc45", "diabetic_retinopathy_detection",
    "clevr/count", "clevr/distance", "dmlab", "dsprites/location", "dsprites/orientation",
    "kitti/distance", "smallnorb/azimuth", "smallnorb/elevation",
}  # fmt: skip


@pytest.fixture(scope="module")
def records() -> Records:
    return load_records(DEFAULT_RECORDS)


def test_counts(records: Records) -> None:
    assert len(records.runs) == 9_629
    assert records.runs.groupby("modality").size().to_dict() == {"text": 2_658, "vision": 6_971}
    assert count_by(records, "model") == {"text": 171, "vision": 292}
    assert count_by(records, "task") == {"text": 11, "vision": 19}
    assert {t.name for t in records.of_modality(Modality.VISION)} == VTAB_TASKS
    assert int(records.runs["kept"].sum()) == 7_062  # one run per (task, model) pair


def test_enumeration_regret_is_zero_everywhere(records: Records) -> None:
    result = replay(records, ks=(1, 2), repeats=3)
    assert len(result.tasks) == 30
    for task in result.tasks:
        assert task.enumeration.regret.max == 0.0
        for r in task.results:
            assert r.regret.min >= 0.0
            assert r.cost_s.max <= task.enumeration.cost_s.max


def test_docs_show_the_real_table(records: Records) -> None:
    """docs/simulator.md pastes what ``shift simulate replay`` prints with its defaults."""
    shown = re.search(r"## The table\n.*?```\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert shown is not None
    assert shown.group(1).rstrip("\n") == render(replay(records), "table")
