"""Loading and cleaning records: task identity, the duplicate rule, clear errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from simulator.records import Modality, load_records, task_name
from simulator.simulator_errors import RecordsError
from tests.simulator.sample import COLUMNS, SMALL_RUNS, run


@pytest.mark.parametrize(
    ("dataset", "config", "expected"),
    [
        ("cifar100", {"lr": 0.1}, "cifar100"),
        ("cifar100", {"label_name": "label", "preprocess": "empty"}, "cifar100"),
        ("clevr", {"label_name": "label_orientation", "preprocess": "clevr_count"}, "clevr/count"),
        (
            "clevr",
            {"label_name": "label_orientation", "preprocess": "clevr_distance"},
            "clevr/distance",
        ),
        (
            "dsprites",
            {"label_name": "label_x_position", "preprocess": "dsprites_location"},
            "dsprites/location",
        ),
        (
            "dsprites",
            {"label_name": "label_orientation", "preprocess": "dsprites_orientation"},
            "dsprites/orientation",
        ),
        ("smallnorb", {"label_name": "label_azimuth", "preprocess": "empty"}, "smallnorb/azimuth"),
        ("smallnorb", {"label_name": "label_elevation"}, "smallnorb/elevation"),
        ("kitti", {"label_name": "label_orientation", "preprocess": "kitti"}, "kitti/distance"),
        ("glue/sst2", {"feature_name": "sentence", "label_name": "label"}, "glue/sst2"),
    ],
)
def test_task_name_splits_vtab_datasets(
    dataset: str, config: dict[str, str], expected: str
) -> None:
    assert task_name(dataset, config) == expected


def test_tasks_and_modalities(small_csv: Path) -> None:
    records = load_records(small_csv)
    assert [(t.modality, t.name) for t in records.tasks] == [
        (Modality.VISION, "cifar100"),
        (Modality.VISION, "clevr/count"),
        (Modality.VISION, "clevr/distance"),
        (Modality.VISION, "dtd"),
        (Modality.TEXT, "glue/sst2"),
    ]
    assert records.models(Modality.VISION) == {"m1", "m2", "m3"}
    assert records.models(Modality.TEXT) == {"t1", "t2"}
    assert records.task("clevr/distance").outcomes["m2"].accuracy == 0.9


def test_duplicate_rule_prefers_vtab1k_then_validation_never_test(small_csv: Path) -> None:
    records = load_records(small_csv)
    m1 = records.task("cifar100").outcomes["m1"]
    # Line 2 (full data, test 0.99) and line 4 (validation 0.4, test 0.95) are dropped.
    assert (m1.accuracy, m1.cost_s, m1.line) == (0.9, 100.0, 3)
    assert records.task("cifar100").best_accuracy == 0.9
    assert int(records.runs["kept"].sum()) == len(SMALL_RUNS) - 3


def test_duplicate_rule_for_text_ignores_slices(small_csv: Path) -> None:
    t1 = load_records(small_csv).task("glue/sst2").outcomes["t1"]
    assert (t1.accuracy, t1.cost_s) == (0.6, 70.0)  # best validation, though not VTAB-1k


def test_duplicate_rule_ties_keep_the_first_run(make_csv: Callable[..., Path]) -> None:
    path = make_csv([run("m", "dtd", 0.2, 1, val=0.5), run("m", "dtd", 0.9, 2, val=0.5)])
    assert load_records(path).task("dtd").outcomes["m"].accuracy == 0.2


def test_unknown_task_suggests_close_names(small_csv: Path) -> None:
    with pytest.raises(RecordsError, match="did you mean clevr/count"):
        load_records(small_csv).task("clevr/cont")


BAD_ROWS = [
    ({"test_accuracy": "abc"}, "line 2: column 'test_accuracy' is not a number: 'abc'"),
    ({"test_accuracy": "1.5"}, "line 2: column 'test_accuracy' is not in \\[0, 1\\]"),
    ({"elapsed_time": ""}, "line 2: column 'elapsed_time' is not a number: ''"),
    ({"elapsed_time": "-3"}, "line 2: column 'elapsed_time' is negative"),
    ({"val_accuracy": "nan"}, "line 2: column 'val_accuracy' is not a number"),
    (
        {"framework": "Timm"},
        "line 2: column 'framework' has unknown value 'Timm'; expected "
        "one of HuggingFace, HuggingFaceText",
    ),
    ({"configs": "{'lr': 0.1"}, "line 2: column 'configs' is not a Python dict literal"),
    ({"configs": "__import__('os')"}, "line 2: column 'configs' is not a Python dict literal"),
    ({"configs": "[1, 2]"}, "line 2: column 'configs' is not a dict"),
    ({"model_identifier": " "}, "line 2: column 'model_identifier' is empty"),
    ({"train_dataset_name": ""}, "line 2: column 'train_dataset_name' is empty"),
]


@pytest.mark.parametrize(("change", "message"), BAD_ROWS, ids=[m for _, m in BAD_ROWS])
def test_bad_row_names_line_and_column(
    make_csv: Callable[..., Path], change: dict[str, str], message: str
) -> None:
    path = make_csv([{**run("m", "dtd", 0.5, 1), **change}, run("n", "dtd", 0.5, 1)])
    with pytest.raises(RecordsError, match=message):
        load_records(path)


def test_bad_row_further_down_names_its_line(make_csv: Callable[..., Path]) -> None:
    rows = [run("m", "dtd", 0.5, 1), run("n", "dtd", 0.5, 1), run("o", "dtd", 2, 1)]
    with pytest.raises(RecordsError, match=r"custom.csv: line 4: column 'test_accuracy'"):
        load_records(make_csv(rows))


def test_missing_columns_are_named(make_csv: Callable[..., Path]) -> None:
    columns = [c for c in COLUMNS if c not in ("elapsed_time", "configs")]
    path = make_csv([run("m", "dtd", 0.5, 1)], columns)
    with pytest.raises(RecordsError, match="missing column\\(s\\) 'elapsed_time', 'configs'"):
        load_records(path)


def test_unreadable_files(tmp_path: Path, make_csv: Callable[..., Path]) -> None:
    with pytest.raises(RecordsError, match="no such records file"):
        load_records(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(RecordsError, match="empty file"):
        load_records(tmp_path / "empty.csv")
    with pytest.raises(RecordsError, match="no runs"):
        load_records(make_csv([]))
