"""Content hashing and task specs: identical work has one identity."""

from __future__ import annotations

import pytest

from shift.errors import SchedulerError
from shift.hashing import HASH_HEX_CHARS, canonical_bytes, content_hash
from shift.tasks import TaskSpec, TaskState


def test_key_order_does_not_matter():
    assert content_hash({"a": 1, "b": {"x": [1, 2], "y": "z"}}) == content_hash(
        {"b": {"y": "z", "x": [1, 2]}, "a": 1}
    )
    assert len(content_hash({})) == HASH_HEX_CHARS


def test_different_work_has_different_identity():
    assert TaskSpec("echo", {"i": 1}).task_id != TaskSpec("echo", {"i": 2}).task_id
    assert TaskSpec("echo", {}).task_id != TaskSpec("sleep", {}).task_id
    assert TaskSpec("echo", {}).task_id != TaskSpec("echo", {}, model="m").task_id


def test_canonical_form_is_compact_utf8():
    assert canonical_bytes({"b": "é", "a": [1]}) == '{"a":[1],"b":"é"}'.encode()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"x": float("nan")}, "finite"),
        ({"x": {1: 2}}, "non-string key"),
        ({"x": object()}, "JSON values"),
        ({"x": b"raw"}, "JSON values"),
    ],
)
def test_non_json_values_are_refused(value, message):
    with pytest.raises(SchedulerError, match=message):
        content_hash(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "must be an object"),
        ({}, "needs a 'kind'"),
        ({"kind": ""}, "non-empty string"),
        ({"kind": "echo", "payload": [1]}, "payload must be an object"),
        ({"kind": "echo", "model": 3}, "model must be"),
        ({"kind": "echo", "colour": "red"}, "unknown task field"),
    ],
)
def test_bad_specs_name_the_problem(value, message):
    with pytest.raises(SchedulerError, match=message):
        TaskSpec.from_json(value)


def test_spec_json_round_trip():
    spec = TaskSpec.from_json({"kind": "echo", "payload": {"a": 1}, "model": "m"})
    assert TaskSpec.from_json(spec.to_json()) == spec
    assert TaskState.SUCCEEDED.final and not TaskState.RUNNING.final
