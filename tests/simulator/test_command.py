"""``shift simulate replay`` as a user runs it: real processes, exit codes, output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from simulator import replay_command
from simulator.records import Modality
from simulator.report import RENDERERS


def shift(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shift", *args], capture_output=True, text=True, check=False
    )


def test_parser_choices_match_the_registries() -> None:
    assert tuple(m.value for m in Modality) == replay_command.MODALITIES
    assert set(replay_command.FORMATS) == set(RENDERERS)


def test_replay_json_on_a_small_file(small_csv: Path, tmp_path: Path) -> None:
    ranking = tmp_path / "ranking.json"
    ranking.write_text(json.dumps(["m3", "nobody/model"]), encoding="utf-8")
    result = shift(
        "simulate", "replay", "--records", str(small_csv), "--modality", "vision",
        "--k", "1", "--repeats", "3", "--ranking", str(ranking), "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "nobody/model" in result.stderr
    document = json.loads(result.stdout)
    assert [t["task"] for t in document["tasks"]] == [
        "cifar100", "clevr/count", "clevr/distance", "dtd",
    ]  # fmt: skip
    labels = [r["label"] for r in document["tasks"][0]["results"]]
    assert labels == ["enumeration", "random-1", "meta-1", "ranking-1"]


def test_replay_table_and_csv(small_csv: Path) -> None:
    table = shift("simulate", "replay", "--records", str(small_csv), "--repeats", "2")
    assert table.returncode == 0, table.stderr
    assert "random-2 regret" in table.stdout and "glue/sst2" in table.stdout
    csv = shift("simulate", "replay", "--records", str(small_csv), "--format", "csv")
    assert csv.stdout.startswith("modality,task,models,strategy,k,repeats,")


def test_bad_records_exit_1_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("model_identifier,framework\nm,HuggingFace\n", encoding="utf-8")
    result = shift("simulate", "replay", "--records", str(bad))
    assert result.returncode == 1
    assert result.stderr.startswith("shift simulate replay: ")
    assert "missing column(s) 'elapsed_time'" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2() -> None:
    assert shift("simulate").returncode == 2
    result = shift("simulate", "replay", "--k", "0")
    assert result.returncode == 2 and "must be at least 1" in result.stderr
