"""The ``rank`` task kind: score one model's frozen features with a transferability estimator.

TASK body: :class:`shift.payloads.RankPayload` (parsed once, here): the model, training
items (datasets or ``CHANGE ... TO`` mutations, concatenated) and a prefix of them, the
ranker and its parameters, and how many bootstrap resamples give the interval. Features come
from the feature store, as for ``classify`` (missing blocks are embedded here unless the
payload says not to), so a RANK after a SELECT on the same data embeds nothing. Rankers that
read the source head's predictions (LEEP, NCE) get them from the stored features through the
model's own classifier (``FeatureExtractor.source_logits``): nothing is embedded again.

RESULT: :class:`shift.payloads.RankResult` (score, higher is better, with its bootstrap
interval and the rows it is based on).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from shift.errors import WorkerError
from shift.payloads import RankPayload, RankResult
from workers.classify import load_train
from workers.embed import feature_store
from workers.features import FeatureStore
from workers.kinds import TaskContext, device_of, task_kind


def rank_features(
    payload: dict[str, Any], ctx: TaskContext | None = None, store: FeatureStore | None = None
) -> dict[str, Any]:
    """Run the ``rank`` kind (see the module docstring).

    Args:
        payload: The task's payload (parsed here, once).
        ctx: The running task's context (``None``: a direct call).
        store: Another feature store than this worker's own (tests, benchmarks).

    Raises:
        WorkerError: an unknown ranker or parameter, a ranker that needs what the model
            lacks (source-head logits), or training rows of fewer than two classes.
    """
    from workers.rankers import get_ranker, score_with_interval

    task = RankPayload.from_json(payload)
    entry = get_ranker(task.ranker)
    store = store or feature_store()
    device = device_of(payload, ctx)
    t0 = time.perf_counter()
    features, values, _, embedded = load_train(
        task.model, task.train, task.train_rows, store, task.embed_missing, device, ctx
    )
    t1 = time.perf_counter()
    if not values:
        raise WorkerError(f"rank of model {task.model.name!r}: the training data has no rows")
    classes = sorted(set(values), key=lambda v: (isinstance(v, str), v))
    ids_of = {v: i for i, v in enumerate(classes)}
    labels = np.array([ids_of[v] for v in values], dtype=np.int64)
    if ctx is not None:
        ctx.check_cancelled()
    logits = None
    if "logits" in entry.needs:
        from workers.models import MODEL_CACHE

        logits = MODEL_CACHE.get(task.model, device).source_logits(features)
    scored = score_with_interval(
        task.ranker,
        np.asarray(features, dtype=np.float64),
        labels,
        logits=logits,
        model=task.model.name,
        params=task.params,
        resamples=task.resamples,
        seed=task.seed,
    )
    t2 = time.perf_counter()
    return RankResult(
        task.ranker,
        dict(task.params),
        scored.score,
        scored.rows,
        len(classes),
        # A percentile interval can miss a score that depends on how many distinct rows
        # there are (resamples repeat rows); widened to hold it, the interval stays honest.
        min(scored.interval.low, scored.score),
        max(scored.interval.high, scored.score),
        task.resamples,
        t1 - t0,
        t2 - t1,
        embedded,
    ).to_json()


@task_kind("rank")
def rank(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Score a model's stored features with a ranker (LogME, SFDA, H-score, kNN, ...)."""
    return rank_features(payload, ctx)
