"""The dispatcher state machine, driven by hand-made events and times (no sockets)."""

from __future__ import annotations

import pytest

from shift.dispatch import CancelOrder, Dispatcher, Refusal, Refused
from shift.errors import SchedulerError
from shift.protocol import Failed, Outcome, Progress, Ready, Started
from shift.tasks import TaskSpec, TaskState


def ready(worker_id="w1", session="s1", prefetch=1, kinds=("echo", "sleep"), models=()):
    return Ready(worker_id, session, "cpu", 0, tuple(kinds), prefetch, tuple(models))


def spec(i, kind="echo", model=None):
    return TaskSpec(kind, {"i": i}, model)


def sent(effects):
    return {d.worker_id: [i.task_id for i in d.items] for d in effects.dispatches}


def start(d, worker_id, task_id, attempt=1):
    """The worker says it started the task (what the runtime sends before running it)."""
    assert d.started(worker_id, Started(task_id, attempt)).refused == []


def test_submit_dispatch_complete():
    d = Dispatcher()
    submitted, effects = d.submit(spec(1), now=0.0)
    assert submitted.created and submitted.state is TaskState.QUEUED
    assert effects.changes[0].spec == spec(1)
    assert d.assign(1.0).dispatches == []  # no workers yet
    d.worker_ready(ready(), now=1.0)
    effects = d.assign(2.0)
    assert sent(effects) == {"w1": [submitted.task_id]}
    assert effects.dispatch_latency_s == [2.0]
    assert d.state_of(submitted.task_id) is TaskState.RUNNING
    effects = d.complete("w1", Outcome(submitted.task_id, 42))
    assert [(c.state, c.value) for c in effects.changes] == [(TaskState.SUCCEEDED, 42)]
    assert d.counts()[TaskState.SUCCEEDED] == 1


def test_identical_work_is_done_once():
    d = Dispatcher()
    first, _ = d.submit(spec(1), 0.0)
    again, effects = d.submit(spec(1), 0.0)
    assert not again.created and again.task_id == first.task_id and effects.changes == []
    d.worker_ready(ready(), 0.0)
    d.assign(0.0)
    assert d.submit(spec(1), 0.0)[0].state is TaskState.RUNNING
    d.complete("w1", Outcome(first.task_id, 1))
    done, effects = d.submit(spec(1), 0.0)
    assert (done.state, done.created, effects.changes) == (TaskState.SUCCEEDED, False, [])


def test_failed_task_can_be_submitted_again():
    d = Dispatcher()
    first, _ = d.submit(spec(1), 0.0)
    d.worker_ready(ready(), 0.0)
    d.assign(0.0)
    d.fail("w1", Failed(first.task_id, "boom"), 0.0)
    assert d.state_of(first.task_id) is TaskState.FAILED
    again, _ = d.submit(spec(1), 0.0)
    assert again.created and again.state is TaskState.QUEUED


def test_prefetch_limits_in_flight_and_spreads_round_robin():
    d = Dispatcher()
    ids = [d.submit(spec(i), 0.0)[0].task_id for i in range(10)]
    d.worker_ready(ready("a", prefetch=3), 0.0)
    d.worker_ready(ready("b", prefetch=2), 0.0)
    batches = sent(d.assign(0.0))
    assert batches == {"a": [ids[0], ids[2], ids[4]], "b": [ids[1], ids[3]]}
    assert d.queue_depth() == 5
    assert d.assign(0.0).dispatches == []
    d.complete("b", Outcome(ids[1], None))
    assert sent(d.assign(0.0)) == {"b": [ids[5]]}


def test_capabilities_are_respected():
    d = Dispatcher()
    s = d.submit(spec(1, kind="sleep"), 0.0)[0].task_id
    e = d.submit(spec(2, kind="echo"), 0.0)[0].task_id
    d.worker_ready(ready("echoer", prefetch=5, kinds=("echo",)), 0.0)
    assert sent(d.assign(0.0)) == {"echoer": [e]}
    assert d.state_of(s) is TaskState.QUEUED


def test_worker_holding_the_model_is_preferred():
    d = Dispatcher()
    plain = d.submit(spec(1), 0.0)[0].task_id
    needs_m = d.submit(spec(2, model="m"), 0.0)[0].task_id
    d.worker_ready(ready("cold"), 0.0)
    d.worker_ready(ready("warm", models=("m",)), 0.0)
    assert sent(d.assign(0.0)) == {"warm": [needs_m], "cold": [plain]}


def test_result_teaches_affinity():
    d = Dispatcher()
    first = d.submit(spec(1, model="m"), 0.0)[0].task_id
    d.worker_ready(ready("a"), 0.0)
    d.assign(0.0)
    d.complete("a", Outcome(first, 1))
    assert d.workers["a"].models == ["m"]
    d.worker_models("a", ("x", "y"))
    assert d.workers["a"].models == ["x", "y"]


def test_dead_worker_requeues_with_attempt_and_fails_after_max():
    d = Dispatcher(max_attempts=3)
    d.submit(spec(1), 0.0)
    for n, worker in enumerate(["a", "b", "c"], start=1):
        d.worker_ready(ready(worker), 0.0)
        (item,) = d.assign(0.0).dispatches[0].items
        assert item.attempt == n
        start(d, worker, item.task_id, item.attempt)
        effects = d.worker_lost(worker, 1.0)
        assert worker not in d.workers
    (change,) = effects.changes
    assert change.state is TaskState.FAILED
    assert "killed 3 workers" in change.error and "max_attempts=3" in change.error
    assert d.worker_lost("nobody", 1.0).changes == []


def test_clean_disconnect_and_reconnect_charge_nothing():
    d = Dispatcher()
    task = d.submit(spec(1), 0.0)[0].task_id
    d.worker_ready(ready("a", session="s1"), 0.0)
    d.assign(0.0)
    effects = d.worker_ready(ready("a", session="s1"), 1.0)  # reconnect, same process
    assert [(c.state, c.attempt) for c in effects.changes] == [(TaskState.QUEUED, 1)]
    d.assign(1.0)
    effects = d.worker_left("a", 2.0)
    assert [(c.state, c.attempt) for c in effects.changes] == [(TaskState.QUEUED, 1)]
    d.worker_ready(ready("a", session="s2"), 3.0)
    d.assign(3.0)
    start(d, "a", task)
    effects = d.worker_ready(ready("a", session="s3"), 4.0)  # restarted: it died
    assert [(c.state, c.attempt) for c in effects.changes] == [(TaskState.QUEUED, 2)]
    assert d.state_of(task) is TaskState.QUEUED


def test_late_result_from_a_worker_declared_dead_is_refused():
    d = Dispatcher()
    task = d.submit(spec(1), 0.0)[0].task_id
    d.worker_ready(ready("a"), 0.0)
    d.assign(0.0)
    d.worker_lost("a", 5.0)
    d.worker_ready(ready("b"), 5.0)
    d.assign(5.0)
    d.worker_ready(ready("a", session="s1"), 5.0)  # a was only slow and comes back
    effects = d.complete("a", Outcome(task, "from a"))
    assert effects.changes == [] and effects.cancels == []
    assert effects.refused == [Refusal("a", task, 1, Refused.NOT_ASSIGNED)]
    assert d.state_of(task) is TaskState.RUNNING
    effects = d.complete("b", Outcome(task, "from b"))
    assert [c.value for c in effects.changes] == ["from b"]
    assert d.workers["b"].free == 1


def test_failures_retry_only_when_retryable():
    d = Dispatcher(max_attempts=2)
    task = d.submit(spec(1), 0.0)[0].task_id
    d.worker_ready(ready(), 0.0)
    d.assign(0.0)
    effects = d.fail("w1", Failed(task, "flaky", retryable=True), 0.0)
    assert [(c.state, c.attempt) for c in effects.changes] == [(TaskState.QUEUED, 2)]
    d.assign(0.0)
    assert d.fail("w1", Failed(task, "flaky", retryable=True), 0.0).refused  # old attempt
    effects = d.fail("w1", Failed(task, "flaky", retryable=True, attempt=2), 0.0)
    assert [(c.state, c.error) for c in effects.changes] == [(TaskState.FAILED, "flaky")]


def test_failure_from_a_worker_not_running_the_task_is_ignored():
    d = Dispatcher()
    task = d.submit(spec(1), 0.0)[0].task_id
    d.worker_ready(ready("a"), 0.0)
    d.worker_ready(ready("b"), 0.0)
    d.assign(0.0)
    other = "b" if d.workers["a"].inflight else "a"
    assert d.fail(other, Failed(task, "not mine"), 0.0).changes == []
    assert d.state_of(task) is TaskState.RUNNING


def test_cancel_queued_running_and_final():
    d = Dispatcher()
    queued = d.submit(spec(1), 0.0)[0].task_id
    d.worker_ready(ready(), 0.0)
    d.assign(0.0)
    waiting = d.submit(spec(2), 0.0)[0].task_id
    effects = d.cancel(waiting)
    assert effects.cancels == [] and effects.changes[0].state is TaskState.CANCELLED
    assert d.queue_depth() == 0
    effects = d.cancel(queued)
    assert effects.cancels == [CancelOrder("w1", queued)]
    assert d.workers["w1"].free == 0  # until the worker answers
    assert d.assign(0.0).dispatches == []  # its cancelled task is still on the worker
    d.fail("w1", Failed(queued, "cancelled", cancelled=True), 0.0)
    assert d.workers["w1"].free == 1
    assert d.state_of(queued) is TaskState.CANCELLED
    with pytest.raises(SchedulerError, match="already cancelled"):
        d.cancel(queued)
    with pytest.raises(SchedulerError, match="unknown"):
        d.cancel("nope")


def test_worker_stopping_a_task_by_itself_requeues_it():
    d = Dispatcher()
    task = d.submit(spec(1), 0.0)[0].task_id
    d.worker_ready(ready(), 0.0)
    d.assign(0.0)
    effects = d.fail("w1", Failed(task, "shutting down", cancelled=True), 0.0)
    assert [(c.state, c.attempt) for c in effects.changes] == [(TaskState.QUEUED, 1)]


def test_restore_requeues_running_and_remembers_final():
    d = Dispatcher()
    d.restore(spec(1), TaskState.RUNNING, 2, 0.0)
    d.restore(spec(2), TaskState.SUCCEEDED, 1, 0.0)
    assert d.state_of(spec(1).task_id) is TaskState.QUEUED
    assert d.submit(spec(2), 0.0)[0].state is TaskState.SUCCEEDED
    d.worker_ready(ready(), 0.0)
    (item,) = d.assign(0.0).dispatches[0].items
    assert (item.task_id, item.attempt) == (spec(1).task_id, 2)


def test_requeued_task_goes_after_older_work_of_other_kinds():
    d = Dispatcher()
    d.worker_ready(ready("a"), 0.0)
    first = d.submit(spec(1, kind="sleep"), 0.0)[0].task_id
    d.assign(0.0)
    other = d.submit(spec(2, kind="echo"), 0.0)[0].task_id
    d.worker_lost("a", 1.0)
    d.worker_ready(ready("b"), 1.0)
    assert sent(d.assign(1.0)) == {"b": [other]}
    assert d.state_of(first) is TaskState.QUEUED


def test_max_attempts_must_be_positive():
    with pytest.raises(SchedulerError):
        Dispatcher(max_attempts=0)


def test_exclusive_tasks_run_alone_and_nothing_waits_behind_them():
    d = Dispatcher()
    kinds = ("echo", "finetune")
    long = [d.submit(spec(i, "finetune"), 0.0)[0].task_id for i in range(3)]
    short = d.submit(spec(9), 0.0)[0].task_id
    d.worker_ready(ready("a", prefetch=2, kinds=kinds), 0.0)
    d.worker_ready(ready("b", prefetch=2, kinds=kinds), 0.0)
    assert sent(d.assign(0.0)) == {"a": [long[0]], "b": [long[1]]}
    assert d.queue_depth() == 2  # the third fine-tune and the echo wait for a free worker
    d.complete("b", Outcome(long[1], None))
    assert sent(d.assign(0.0)) == {"b": [long[2]]}
    d.complete("a", Outcome(long[0], None))
    assert sent(d.assign(0.0)) == {"a": [short]}


def test_an_exclusive_task_waits_for_a_worker_to_empty():
    d = Dispatcher()
    kinds = ("echo", "finetune")
    first = d.submit(spec(1), 0.0)[0].task_id
    d.worker_ready(ready("a", prefetch=2, kinds=kinds), 0.0)
    assert sent(d.assign(0.0)) == {"a": [first]}
    tune = d.submit(spec(2, "finetune"), 0.0)[0].task_id
    assert d.assign(0.0).dispatches == []
    d.complete("a", Outcome(first, None))
    assert sent(d.assign(0.0)) == {"a": [tune]}


def test_only_the_assignee_of_the_current_attempt_reports_on_a_task():
    d = Dispatcher()
    task = d.submit(spec(1), 0.0)[0].task_id
    d.worker_ready(ready("a"), 0.0)
    d.worker_ready(ready("b", kinds=("other",)), 0.0)
    assert sent(d.assign(0.0)) == {"a": [task]}
    hostile = [
        ("nobody", 1, Refused.UNREGISTERED),
        ("b", 1, Refused.NOT_ASSIGNED),
        ("a", 2, Refused.STALE_ATTEMPT),
    ]
    for worker_id, attempt, reason in hostile:
        for effects in (
            d.complete(worker_id, Outcome(task, "forged", attempt=attempt)),
            d.fail(worker_id, Failed(task, "forged", attempt=attempt), 0.0),
            d.started(worker_id, Started(task, attempt)),
            d.progress(worker_id, Progress(task, 1, 2, "half", attempt)),
        ):
            assert effects.changes == []
            assert effects.refused == [Refusal(worker_id, task, attempt, reason)]
    unknown = d.complete("a", Outcome("no-such-task", 1))
    assert unknown.refused == [Refusal("a", "no-such-task", 1, Refused.UNKNOWN_TASK)]
    assert d.state_of(task) is TaskState.RUNNING and d.workers["a"].free == 0
    assert d.workers["b"].free == 1
    effects = d.complete("a", Outcome(task, "real"))
    assert [(c.state, c.value) for c in effects.changes] == [(TaskState.SUCCEEDED, "real")]
    again = d.complete("a", Outcome(task, "twice"))  # a second result is refused too
    assert again.changes == [] and again.refused[0].reason is Refused.NOT_ASSIGNED


def test_a_late_frame_about_a_cancelled_task_only_frees_the_slot():
    d = Dispatcher()
    task = d.submit(spec(1), 0.0)[0].task_id
    d.worker_ready(ready("a"), 0.0)
    d.assign(0.0)
    d.cancel(task)
    effects = d.complete("a", Outcome(task, "too late"))
    assert effects.changes == [] and effects.refused == []
    assert d.workers["a"].free == 1 and d.state_of(task) is TaskState.CANCELLED


def test_prefetch_is_capped_by_the_broker():
    d = Dispatcher(prefetch_max=8)
    for i in range(20):
        d.submit(spec(i), 0.0)
    d.worker_ready(ready("greedy", prefetch=1_000_000), 0.0)
    assert d.workers["greedy"].prefetch == 8
    assert len(sent(d.assign(0.0))["greedy"]) == 8
    with pytest.raises(SchedulerError, match="prefetch_max"):
        Dispatcher(prefetch_max=0)


def test_a_dead_worker_charges_only_the_task_it_started():
    d = Dispatcher()
    first, second = (d.submit(spec(i), 0.0)[0].task_id for i in (1, 2))
    d.worker_ready(ready("a", prefetch=2), 0.0)
    assert sent(d.assign(0.0)) == {"a": [first, second]}
    start(d, "a", first)
    effects = d.worker_lost("a", 1.0)
    assert {c.task_id: (c.state, c.attempt) for c in effects.changes} == {
        first: (TaskState.QUEUED, 2),
        second: (TaskState.QUEUED, 1),
    }


def test_fake_workers_that_take_tasks_and_vanish_cannot_fail_a_task():
    d = Dispatcher(max_attempts=3, prefetch_max=16)
    tasks = [d.submit(spec(i), 0.0)[0].task_id for i in range(40)]
    now = 0.0
    for cycle in range(10):  # two fakes announce themselves again and again, never run
        for fake in ("fake-1", "fake-2"):
            now += 1.0
            d.worker_ready(ready(fake, session=f"s{cycle}", prefetch=1_000_000), now)
            d.assign(now)
        for fake in ("fake-1", "fake-2"):
            assert d.worker_lost(fake, now).refused == []
    d.worker_ready(ready("real", prefetch=4), now)
    done = {}
    while len(done) < len(tasks):
        for dispatch in d.assign(now).dispatches:
            for item in dispatch.items:
                start(d, "real", item.task_id, item.attempt)
                (change,) = d.complete(
                    "real", Outcome(item.task_id, "ok", attempt=item.attempt)
                ).changes
                done[item.task_id] = (change.state, change.attempt)
    assert set(done) == set(tasks)
    assert set(done.values()) == {(TaskState.SUCCEEDED, 1)}
