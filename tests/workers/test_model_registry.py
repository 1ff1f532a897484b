"""The ``model_registry`` kind on the installed timm, in this process (no broker)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from shift.errors import WorkerError
from shift.model_registry import RegistryPayload
from shift.payloads import PayloadError
from shift.ql.parser import parse_script
from workers import model_registry as wr


def payload(text: str) -> dict[str, object]:
    return RegistryPayload(parse_script(text).statements[0], "t").to_json()


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SHIFT_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(wr, "_MEASURED", {})
    return tmp_path


def test_listing_has_every_pretrained_tag_and_architecture() -> None:
    import timm

    rows = wr.timm_listing()
    tagged = [r for r in rows if r["pretrained"]]
    assert len(tagged) == len(timm.list_models(pretrained=True))
    assert len(rows) - len(tagged) == len(timm.list_models())


def test_measures_on_meta_once_and_caches_to_disk(state: Path) -> None:
    text = (
        "SELECT name, num_params, feature_dim FROM timm_registry "
        "WHERE architecture IN ('resnet18', 'convnext_atto') ORDER BY name"
    )
    first = wr.registry_answer(payload(text))
    by_name = {r["name"]: r for r in first["rows"]}
    assert by_name["resnet18"]["num_params"] == 11_176_512
    assert by_name["resnet18"]["feature_dim"] == 512
    assert by_name["convnext_atto.d2_in1k"]["num_params"] == 3_374_520
    assert first["measured"] == 2
    again = wr.registry_answer(payload(text))
    assert again["rows"] == first["rows"] and again["measured"] == 0
    files = list((state / "registry").glob("timm-*-measurements.json"))
    assert len(files) == 1 and "resnet18" in json.loads(files[0].read_text())
    wr._MEASURED.clear()  # a new process reads the file instead of building again
    assert wr.registry_answer(payload(text))["measured"] == 0


def test_a_listing_without_measured_columns_builds_nothing() -> None:
    answer = wr.registry_answer(payload("SELECT name FROM timm_registry LIMIT 3"))
    assert len(answer["rows"]) == 3 and answer["measured"] == 0 and wr._MEASURED == {}


def test_hub_search_offline_fails_in_under_2_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(WorkerError, match=r"needs the network.*HF_HUB_OFFLINE is set"):
        wr.registry_answer(payload("REGISTER MODELS FROM hf WHERE library = 'timm' LIMIT 5"))
    assert time.monotonic() - started < 2


def test_an_unreachable_hub_is_offline_within_the_probe_timeout() -> None:
    started = time.monotonic()
    assert wr._reachable(("127.0.0.1", 9), 1.0) is False  # discard port: refused on loopback
    assert time.monotonic() - started < 2


def test_hostile_payload_is_refused() -> None:
    with pytest.raises(PayloadError):
        wr.registry_answer({"statement": {"type": "purge", "target": "all"}, "request": "x"})


def test_meta_measurement_equals_what_the_loaded_model_reports() -> None:
    from shift import model_registry as mr
    from workers.models.timm_family import load_timm

    rows = {r["name"]: r for r in wr.timm_listing()}
    for name in ("resnet18", "vit_tiny_patch16_224"):  # random init: no weights needed
        measured, _ = wr.measure_timm([rows[name]], None)
        loaded = load_timm(mr.spec_of("timm", rows[name]), "cpu").describe()
        assert measured[name]["num_params"] == loaded["num_params"], name
        assert measured[name]["feature_dim"] == loaded["feature_dim"], name
