"""The task-kind registry and the built-in kinds, without sockets."""

from __future__ import annotations

import pytest

from shift.errors import WorkerError
from workers import builtin  # noqa: F401  (registers the built-in kinds)
from workers.kinds import KINDS, Cancelled, Retry, TaskContext, device_of, get_kind, task_kind


def ctx(reports=None):
    sink = [] if reports is None else reports
    return TaskContext("t", 1, None, lambda d, t, m: sink.append((d, t)))


def test_unknown_kind_lists_known_and_closest():
    with pytest.raises(WorkerError, match=r"unknown task kind 'eho'.*did you mean 'echo'"):
        get_kind("eho")


def test_kinds_cannot_be_registered_twice():
    with pytest.raises(WorkerError, match="registered twice"):
        task_kind("echo")(lambda payload, ctx: None)


def test_builtin_kinds():
    assert KINDS["echo"].inline and not KINDS["sleep"].inline
    assert get_kind("echo").run({"value": 3}, ctx()) == 3
    reports = []
    out = get_kind("sleep").run({"seconds": 0.0, "steps": 3, "value": "v"}, ctx(reports))
    assert out == {"slept_s": 0.0, "value": "v"} and reports == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(WorkerError, match="non-negative"):
        get_kind("sleep").run({"seconds": -1}, ctx())
    with pytest.raises(Retry):
        get_kind("fail").run({"retryable": True}, ctx())
    with pytest.raises(WorkerError, match="boom"):
        get_kind("fail").run({"message": "boom"}, ctx())


def test_cancelled_sleep_stops():
    c = ctx()
    c.cancelled.set()
    with pytest.raises(Cancelled):
        get_kind("sleep").run({"seconds": 60}, c)


def test_tasks_run_on_the_workers_device_unless_the_payload_names_one():
    ctx = TaskContext("t", 1, None, lambda *_: None, device="cuda:1")
    assert device_of({}, ctx) == "cuda:1"
    assert device_of({"device": "cpu"}, ctx) == "cpu"
    assert device_of({}, None) == "cpu"
