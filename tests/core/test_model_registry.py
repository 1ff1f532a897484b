"""The pure registry view: timm rows, partial truth, answering, import plans, parsing."""

from __future__ import annotations

from typing import Any

import pytest

from shift import model_registry as mr
from shift.errors import CatalogError, QueryError
from shift.ql import codec
from shift.ql import nodes as n
from shift.ql.parser import parse_script
from shift.ql.render import render

CFG = {
    "a.t1": {"input_size": (3, 224, 224), "mean": (0.5,) * 3, "std": (0.5,) * 3,
             "license": "apache-2.0", "hf_hub_id": "timm/a.t1", "num_classes": 1000},
    "a": {"input_size": (3, 224, 224)},
    "b.t2": {"input_size": (3, 384, 384), "license": "mit"},
    "b": {"input_size": (3, 224, 224)},
}  # fmt: skip
SIZES = {"a": 5_000_000, "b": 20_000_000}


def rows() -> list[dict[str, Any]]:
    return mr.timm_rows(["a.t1", "b.t2"], ["a", "b"], CFG.get)


def statement(text: str) -> Any:
    return parse_script(text).statements[0]


class Counting:
    """A measure callback that records which rows it was asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, got: Any) -> dict[str, dict[str, Any]]:
        self.asked += [r["name"] for r in got]
        return {r["name"]: {"num_params": SIZES[r["architecture"]], "feature_dim": 8} for r in got}


def test_timm_rows_carry_tags_and_normalisation() -> None:
    by_name = {r["name"]: r for r in rows()}
    assert by_name["a.t1"]["pretrained"] is True and by_name["a.t1"]["tag"] == "t1"
    assert by_name["a.t1"]["mean"] == [0.5, 0.5, 0.5] and by_name["a.t1"]["license"] == "apache-2.0"
    assert by_name["a"]["pretrained"] is False and by_name["a"]["license"] is None
    assert by_name["b.t2"]["input_size"] == 384 and by_name["b.t2"]["architecture"] == "b"
    assert all(r["num_params"] is None for r in by_name.values())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name LIKE 'a%' AND num_params < 1", None),
        ("name LIKE 'b%' AND num_params < 1", False),
        ("name LIKE 'b%' OR num_params < 1", None),
        ("name LIKE 'a%' OR num_params < 1", True),
        ("NOT (name LIKE 'a%' AND num_params IS NULL)", None),
        ("num_params IS NULL", None),
    ],
)
def test_partial_truth_keeps_rows_unknown_columns_could_match(text: str, expected: Any) -> None:
    cond = statement(f"SELECT * FROM timm_registry WHERE {text}").where
    row = next(r for r in rows() if r["name"] == "a.t1")
    assert mr.might_match(cond, row, mr.MEASURED) is expected


def test_answer_measures_only_rows_the_rest_of_the_condition_keeps() -> None:
    measure = Counting()
    text = "SELECT name FROM timm_registry WHERE pretrained AND num_params < 10M"
    out, measured = mr.answer(statement(text), rows(), measure)
    assert [r["name"] for r in out] == ["a.t1"]
    assert sorted(measure.asked) == ["a.t1", "b.t2"] and measured == 2


def test_answer_without_measured_columns_measures_nothing() -> None:
    measure = Counting()
    out, measured = mr.answer(statement("SELECT name FROM timm_registry LIMIT 3"), rows(), measure)
    assert len(out) == 3 and measure.asked == [] and measured == 0


def test_answer_measures_after_limit_when_only_selected() -> None:
    measure = Counting()
    text = "SELECT name, num_params FROM timm_registry WHERE NOT pretrained LIMIT 1"
    out, measured = mr.answer(statement(text), rows(), measure)
    assert out[0]["name"] == "a" and out[0]["num_params"] == 5_000_000
    assert measure.asked == ["a"] and measured == 1


def test_order_by_a_measured_column() -> None:
    text = "SELECT name FROM timm_registry ORDER BY num_params DESC, name LIMIT 2"
    out, _ = mr.answer(statement(text), rows(), Counting())
    assert [r["name"] for r in out] == ["b", "b.t2"]


def test_spec_of_a_pretrained_and_a_random_init_row() -> None:
    by_name = {r["name"]: r for r in rows()}
    spec = mr.spec_of("timm", by_name["a.t1"])
    assert spec.family == "timm" and spec.loader == {"arch": "a.t1", "pretrained": True}
    assert spec.info["hub_id"] == "timm/a.t1" and spec.info["license"] == "apache-2.0"
    control = mr.spec_of("timm", by_name["a"])
    assert control.loader == {"arch": "a", "pretrained": False, "seed": 0}


def test_spec_of_hub_rows() -> None:
    timm_repo = {"name": "timm/x.y", "library": "timm", "pipeline_tag": "image-classification"}
    assert mr.spec_of("huggingface", timm_repo).loader == {"arch": "hf-hub:timm/x.y",
                                                           "pretrained": True}  # fmt: skip
    text = {"name": "o/bert", "library": "transformers", "pipeline_tag": "fill-mask"}
    assert mr.spec_of("huggingface", text).modality.value == "text"
    with pytest.raises(CatalogError, match="neither a vision nor a text task"):
        mr.spec_of("huggingface", {"name": "o/asr", "pipeline_tag": "automatic-speech-recognition"})


def test_plan_import_new_same_and_clash() -> None:
    measured = [{**r, "num_params": 1, "feature_dim": 2} for r in rows()]
    same = mr.spec_of("timm", measured[0])
    plan = mr.plan_import("timm", measured, {same.name: same.to_json()})
    assert plan.same == (same.name,) and len(plan.new) == 3
    _, figures = plan.new[0]
    assert figures["num_params"] == 1 and figures["batch_size"] == mr.IMPORT_BATCH_SIZE
    other = {**same.to_json(), "loader": {"arch": "elsewhere"}}
    with pytest.raises(CatalogError, match=r"registered with another spec.*nothing was registered"):
        mr.plan_import("timm", measured, {same.name: other})


def test_plan_import_of_nothing_says_how_to_browse() -> None:
    with pytest.raises(CatalogError, match=r"matched no model.*FROM timm_registry"):
        mr.plan_import("timm", [], {})


def test_payload_round_trip_and_hostile_payloads() -> None:
    st = statement("REGISTER MODELS FROM timm WHERE name LIKE 'convnext%' AND pretrained LIMIT 3")
    payload = mr.RegistryPayload(st, "r1")
    assert mr.RegistryPayload.from_json(payload.to_json()) == payload
    for bad in (None, {}, {"statement": {}, "request": "r"}, {**payload.to_json(), "x": 1},
                {"statement": codec.to_json(statement("PURGE")), "request": "r"}):  # fmt: skip
        with pytest.raises(mr.PayloadError):
            mr.RegistryPayload.from_json(bad)


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("REGISTER MODELS FROM timmm", "unknown model registry 'timmm'", "did you mean 'timm'?"),
        ("REGISTER MODELS FROM timm WHERE nmae LIKE 'c%'", "unknown column 'nmae'",
         "did you mean 'name'?"),
        ("SELECT archtecture FROM timm_registry", "unknown column 'archtecture'",
         "did you mean 'architecture'?"),
        ("RANK name FROM timm_registry TRAINED ON d BY 'logme'", "the pool must be registered",
         "REGISTER MODELS FROM"),
    ],
)  # fmt: skip
def test_bad_input_is_a_query_error(text: str, message: str, hint: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_script(text)
    diagnostic = caught.value.diagnostics[0]
    assert message in diagnostic.message and hint in diagnostic.hint


def test_parse_render_round_trip() -> None:
    st = statement("register models from HF where library = 'timm' and pipeline_tag = "
                   "'image-classification' limit 20")  # fmt: skip
    assert isinstance(st, n.RegisterModels) and st.registry == "huggingface" and st.limit == 20
    assert statement(render(st)) == st
    flag = statement("SELECT * FROM timm_registry WHERE pretrained").where
    assert flag == n.Compare(n.Name("pretrained"), n.CmpOp.EQ, n.Value(True))


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (("import", "timm", "name LIKE 'convnext%' AND pretrained", None, None, None),
         "REGISTER MODELS FROM timm WHERE name LIKE 'convnext%' AND pretrained"),
        (("browse", "timm", "num_params < 10M", "num_params", 5, "name, num_params"),
         "SELECT name, num_params FROM timm_registry WHERE num_params < 10M "
         "ORDER BY num_params LIMIT 5"),
        (("import", "hf", "library = 'timm'", None, 20, None),
         "REGISTER MODELS FROM huggingface WHERE library = 'timm' LIMIT 20"),
    ],
)  # fmt: skip
def test_shift_models_command_lines_are_statements(argv: Any, text: str) -> None:
    from repl.models_command import statement_text

    assert statement_text(*argv) == text
    assert parse_script(text).statements
