"""The simulator replays a real run through shift from that run's own task records.

A real broker and two worker processes on loopback (the ``cluster`` fixture of
``tests/search``), three zoo image models on small photo-crop splits, one exhaustive query.
The query's task records (per-task timings, model loads, rows) and its shell overheads
(start, phase, end, per task; see :mod:`simulator.measure`) feed the simulator with two
devices. The test checks what must hold whatever the machine's load: every real task is
simulated, and the simulated makespan lies between perfect two-device parallelism and one
device doing everything. How close it comes to the real wall time is a figure, printed
with ``-s`` (the target is a 15% makespan match; timings are never asserted in tests).
"""

from __future__ import annotations

from shift import zoo
from simulator.costs import ModelCost, Workload
from simulator.engine import Cluster as SimCluster
from simulator.engine import simulate
from simulator.measure import measure_costs, measure_overheads, read_url
from simulator.searches import Exhaustive
from tests.search.conftest import Cluster, cluster

MODELS = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite0-random")
QUERY = (
    'SELECT * FROM image_models ORDER BY err ASC TRAINED ON "sim-photos-train" '
    'TESTED ON "sim-photos-test" CLASSIFIED BY ["Euclidean NN"]'
)
FIGURES: dict[str, float] = {}

__all__ = ["cluster"]


def _small(name: str, new: str, **params: object) -> dict:
    spec = zoo.dataset(name).to_json()
    return {**spec, "name": new, "params": {**spec["params"], **params}}


def test_simulated_makespan_matches_a_real_run(cluster: Cluster) -> None:
    crops = {"train": 12, "test": 6}
    bodies = [("/v1/models", zoo.model(m).to_json()) for m in MODELS] + [
        ("/v1/datasets", _small("photos-train", "sim-photos-train", crops_per_photo=crops)),
        ("/v1/datasets", _small("photos-test", "sim-photos-test", crops_per_photo=crops)),
    ]
    cluster.register(bodies)
    held = tuple(tuple(w["models"]) for w in cluster.get("/v1/workers")["workers"])
    (query,) = cluster.query(QUERY)
    assert query["status"] == "succeeded", query
    real_s = query["finished_at"] - query["created_at"]

    records = read_url(cluster.url)
    mine = [r for r in records if query["created_at"] <= r.created_at <= query["finished_at"]]
    measured = measure_costs(mine)
    overheads = measure_overheads(mine, query["created_at"], query["finished_at"], 1 / 14_000)
    train = max(int(r.result["train_rows"]) for r in mine if r.kind == "classify")
    test = max(int(r.result["test_rows"]) for r in mine if r.kind == "classify")
    models = tuple(
        ModelCost(
            m,
            measured.load_s.get(m, 0.0),
            measured.embed_s_per_row[m],
            measured.classify_s.get(m, 0.0),
            measured.proxy_s_per_pair,
        )
        for m in MODELS
    )
    workload = Workload(models, train, test)
    keys = {zoo.model(m).key: m for m in MODELS}
    held_names = tuple(tuple(keys[k] for k in h if k in keys) for h in held)
    result = simulate(workload, Exhaustive(workload), SimCluster(2), overheads)
    FIGURES.update(real_s=real_s, simulated_s=result.makespan_s)
    print(
        f"\nreal {real_s:.2f} s, simulated {result.makespan_s:.2f} s, {overheads}, "
        f"{len(mine)} tasks, train {train} test {test}, held {held_names}"
    )
    gap = (result.makespan_s - real_s) / real_s
    print(f"simulated vs real makespan: {gap:+.1%} (target within 15%)")
    assert result.tasks == len(mine)
    work_s = sum(d.busy_s for d in result.devices)
    assert work_s / 2 <= result.makespan_s <= work_s + real_s
