"""Dispatch for workers on other hosts: locality, the fallback, and who may upload blocks."""

from __future__ import annotations

from shift.dispatch import Dispatcher
from shift.protocol import Outcome, Ready
from shift.tasks import TaskSpec


def ready(worker_id: str, kinds: tuple[str, ...] = ("classify", "embed")) -> Ready:
    return Ready(worker_id, "s", "cpu", 0, kinds, 1)


def sent(effects) -> dict[str, list[str]]:
    return {d.worker_id: [i.task_id for i in d.items] for d in effects.dispatches}


def test_the_holder_of_a_models_blocks_gets_its_tasks_and_a_busy_holder_is_not_waited_for():
    d = Dispatcher()
    d.worker_ready(ready("other", ("classify",)), 0.0)  # first in round-robin order
    d.worker_ready(ready("holder"), 0.0)
    embed = d.submit(TaskSpec("embed", {"b": 0}, "m"), 0.0)[0].task_id
    assert sent(d.assign(0.0)) == {"holder": [embed]}
    d.complete("holder", Outcome(embed, {}))  # holder wrote the model's blocks
    alone = d.submit(TaskSpec("classify", {"i": 0}, "m"), 0.5)[0].task_id
    assert sent(d.assign(0.5)) == {"holder": [alone]}  # both free: the holder wins
    d.complete("holder", Outcome(alone, {}))
    first = d.submit(TaskSpec("classify", {"i": 1}, "m"), 1.0)[0].task_id
    second = d.submit(TaskSpec("classify", {"i": 2}, "m"), 1.0)[0].task_id
    # The holder takes the oldest; the other worker is not left idle behind a busy holder:
    # it takes the next and fetches the blocks.
    assert sent(d.assign(1.0)) == {"holder": [first], "other": [second]}


def test_only_the_assignee_of_the_current_attempt_is_named_by_assigned():
    d = Dispatcher()
    d.worker_ready(ready("a"), 0.0)
    d.worker_ready(ready("b"), 0.0)
    spec = TaskSpec("embed", {"b": 0}, "m")
    task = d.submit(spec, 0.0)[0].task_id
    [worker] = sent(d.assign(0.0))
    stranger = "b" if worker == "a" else "a"
    assert d.assigned(worker, task, 1) == spec
    assert d.assigned(worker, task, 2) is None
    assert d.assigned(stranger, task, 1) is None
    assert d.assigned(worker, "no-such-task", 1) is None
    d.complete(worker, Outcome(task, {}))
    assert d.assigned(worker, task, 1) is None  # finished: no more uploads for it
