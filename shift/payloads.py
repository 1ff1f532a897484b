"""Task payloads and results: the typed contract between the broker and the workers.

Every task kind's payload is a frozen class with ``to_json``/``from_json`` and ``task()``
(the content-hashed :class:`~shift.tasks.TaskSpec`); the broker builds them (planner,
evaluator), a worker parses its payload once where the kind starts, and results are parsed
once where they arrive (``ClassifyResult.from_json``). A payload never names a path on a
worker: feature and checkpoint locations are the worker's own configuration, so a client
that posts a raw task cannot make a worker read or write where it chooses.

The JSON forms are exactly what the hash covers; a field added with a default is left out
of ``to_json`` while it holds the default, so existing task identities stay the same.
Parsing is strict: an unknown field (``store`` of earlier versions included) is an error
that names the field and the fields the kind takes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from shift.errors import CatalogError, ProtocolError, WorkerError
from shift.hashing import content_hash
from shift.specs import DatasetSpec, ModelSpec
from shift.tasks import TaskSpec

BLOCK_ROWS = 256
"""Rows per feature block: the feature store's layout, shared by planner, workers and the
simulator (independent of any query's chunk size, so every query shares the blocks)."""

FEATURES_DIR = "features"
"""The feature store's folder under a state directory."""

FINETUNE_DIR = "finetune"
"""The fine-tune checkpoints' folder under a state directory."""


RANK_RESAMPLES = 20
"""Bootstrap resamples behind a ranker score's interval (each refits the ranker)."""


class PayloadError(ProtocolError, WorkerError):
    """A task payload or result does not have the shape its kind requires (a protocol error
    between broker and worker; on a worker it fails the task like any worker error)."""

    code = "payload_error"


def blocks_for(rows: int, block_rows: int = BLOCK_ROWS) -> range:
    """The feature blocks the first ``rows`` rows need."""
    return range(-(-rows // block_rows))


# ---- field readers ---------------------------------------------------------------------------


def _object(value: Any, kind: str, required: Sequence[str], optional: Sequence[str]) -> dict:
    if not isinstance(value, Mapping):
        raise PayloadError(f"a {kind} payload must be an object, got {type(value).__name__}")
    allowed = (*required, *optional)
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise PayloadError(
            f"{kind} payload has unknown field(s) {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(allowed)}"
        )
    missing = [name for name in required if name not in value]
    if missing:
        raise PayloadError(f"{kind} payload lacks {', '.join(map(repr, missing))}")
    return dict(value)


def _count(value: Any, name: str, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        what = "an integer >= 0" + (" (or null)" if optional else "")
        raise PayloadError(f"{name!r} must be {what}, got {value!r}")
    return value


def _model(value: Any, name: str = "model") -> ModelSpec:
    try:
        return ModelSpec.from_json(value)
    except CatalogError as error:
        raise PayloadError(f"payload {name!r}: {error}") from None


def _dataset(value: Any, name: str) -> DatasetSpec:
    try:
        return DatasetSpec.from_json(value)
    except CatalogError as error:
        raise PayloadError(f"payload {name!r}: {error}") from None


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PayloadError(f"{name!r} must be an object, got {type(value).__name__}")
    return dict(value)


# ---- embed, describe -------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbedPayload:
    """One model over one feature block of a dataset."""

    KIND: ClassVar[str] = "embed"
    model: ModelSpec
    dataset: DatasetSpec
    block: int

    def to_json(self) -> dict[str, Any]:
        """The JSON form (hashed)."""
        return {
            "model": self.model.to_json(),
            "dataset": self.dataset.to_json(),
            "block": self.block,
        }

    @classmethod
    def from_json(cls, value: Any) -> EmbedPayload:
        """Parse a payload.

        Raises:
            PayloadError: a field is missing, unknown or invalid (the message names it).
        """
        body = _object(value, cls.KIND, ("model", "dataset", "block"), ("device",))
        return cls(
            _model(body["model"]),
            _dataset(body["dataset"], "dataset"),
            _count(body["block"], "block"),
        )

    def task(self) -> TaskSpec:
        """The content-hashed task."""
        return TaskSpec(self.KIND, self.to_json(), self.model.key)


@dataclass(frozen=True)
class DescribePayload:
    """Measure one model or one dataset (exactly one of the two)."""

    KIND: ClassVar[str] = "describe"
    model: ModelSpec | None = None
    dataset: DatasetSpec | None = None

    def __post_init__(self) -> None:
        if (self.model is None) == (self.dataset is None):
            raise PayloadError("a describe task needs exactly one of 'model' and 'dataset'")

    def to_json(self) -> dict[str, Any]:
        """The JSON form (hashed)."""
        if self.model is not None:
            return {"model": self.model.to_json()}
        return {} if self.dataset is None else {"dataset": self.dataset.to_json()}

    @classmethod
    def from_json(cls, value: Any) -> DescribePayload:
        """Parse a payload (see :class:`EmbedPayload.from_json`)."""
        body = _object(value, cls.KIND, (), ("model", "dataset", "device"))
        model = _model(body["model"]) if "model" in body else None
        dataset = _dataset(body["dataset"], "dataset") if "dataset" in body else None
        return cls(model, dataset)

    def task(self) -> TaskSpec:
        """The content-hashed task (its ``model`` is the described spec's key: a worker
        that measured a model keeps it loaded for the embeds that follow)."""
        described = self.model if self.model is not None else self.dataset
        return TaskSpec(self.KIND, self.to_json(), None if described is None else described.key)


# ---- classify --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    """A ``CHANGE ... TO`` training item: rows of ``base`` labelled ``from_labels[i]``
    replaced by the rows of ``target`` labelled ``to_labels[i]`` (relabelled ``from[i]``).
    When ``target`` is ``base`` only labels change."""

    base: DatasetSpec
    base_rows: int | None
    from_labels: tuple[Any, ...]
    target: DatasetSpec
    target_rows: int | None
    to_labels: tuple[Any, ...]

    def __post_init__(self) -> None:
        if len(self.from_labels) != len(self.to_labels) or not self.from_labels:
            raise PayloadError("a mutation maps as many labels from the base as to the target")

    def to_json(self) -> dict[str, Any]:
        """The JSON form ``{"mutation": {...}}``."""
        return {
            "mutation": {
                "base": self.base.to_json(),
                "base_rows": self.base_rows,
                "from": list(self.from_labels),
                "target": self.target.to_json(),
                "target_rows": self.target_rows,
                "to": list(self.to_labels),
            }
        }

    @classmethod
    def from_json(cls, value: Any) -> Mutation:
        """Parse ``{"mutation": {...}}``."""
        body = value.get("mutation") if isinstance(value, Mapping) else None
        if not isinstance(body, Mapping) or {"base", "from", "target", "to"} - body.keys():
            raise PayloadError("a mutation needs base, from, target and to")
        if not isinstance(body["from"], list) or not isinstance(body["to"], list):
            raise PayloadError("a mutation's 'from' and 'to' must be lists of labels")
        return cls(
            _dataset(body["base"], "base"),
            _count(body.get("base_rows"), "base_rows", optional=True),
            tuple(body["from"]),
            _dataset(body["target"], "target"),
            _count(body.get("target_rows"), "target_rows", optional=True),
            tuple(body["to"]),
        )


TrainItem = DatasetSpec | Mutation
"""A training item: a dataset or a mutation of datasets."""


def item_json(item: TrainItem) -> dict[str, Any]:
    """The JSON form of a training item."""
    return item.to_json()


def parse_item(value: Any, name: str = "train") -> TrainItem:
    """Parse a training item (a DatasetSpec JSON or ``{"mutation": ...}``)."""
    if isinstance(value, Mapping) and "mutation" in value:
        return Mutation.from_json(value)
    return _dataset(value, name)


def parse_items(value: Any, name: str = "train") -> tuple[TrainItem, ...]:
    """Parse a list of training items (one item alone is read as a list of one)."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise PayloadError(f"{name!r} names no dataset")
    return tuple(parse_item(v, name) for v in items)


@dataclass(frozen=True)
class Prior:
    """Nearest-neighbour state a 1-NN classify continues from.

    Without ``train`` it covers the first ``train_rows`` rows of the task's own training
    set (a smaller prefix); with ``train`` it covers the rows of those items (cut to
    ``train_rows``), matched to the task's rows by (dataset, row) identity.
    """

    train_rows: int | None
    nn_index: tuple[int, ...]
    nn_distance: tuple[float, ...]
    train: tuple[TrainItem, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        out: dict[str, Any] = {
            "nn_index": list(self.nn_index),
            "nn_distance": list(self.nn_distance),
            "train_rows": self.train_rows,
        }
        if self.train is not None:
            out["train"] = [item_json(i) for i in self.train]
        return out

    @classmethod
    def from_json(cls, value: Any) -> Prior:
        """Parse a prior."""
        body = _object(value, "prior", ("nn_index", "nn_distance"), ("train_rows", "train"))
        index, distance = body["nn_index"], body["nn_distance"]
        if not isinstance(index, list) or not isinstance(distance, list):
            raise PayloadError("'prior' nn_index and nn_distance must be lists")
        if len(index) != len(distance):
            raise PayloadError("'prior' nn_index and nn_distance differ in length")
        train = parse_items(body["train"], "prior train") if "train" in body else None
        return cls(
            _count(body.get("train_rows"), "train_rows", optional=True),
            tuple(int(i) for i in index),
            tuple(float(d) for d in distance),
            train,
        )


@dataclass(frozen=True)
class ClassifyPayload:
    """Fit a proxy on stored features of the training items and score it on a test set.

    Attributes:
        model: The feature extractor.
        train: Training items, concatenated in order.
        train_rows: A prefix of the concatenation (``None``: all rows).
        test: The test set (a dataset, or a mutation read like a training item);
            ``test_rows`` a prefix of it (``None``: all rows).
        classifier: A proxy's canonical name (:data:`shift.methods.CLASSIFIERS`).
        params: The proxy's parameters.
        prior: 1-NN state to continue from (1-NN proxies only).
        embed_missing: Compute missing feature blocks on the worker (default true).
    """

    KIND: ClassVar[str] = "classify"
    model: ModelSpec
    train: tuple[TrainItem, ...]
    train_rows: int | None
    test: TrainItem
    test_rows: int | None
    classifier: str
    params: dict[str, Any] = field(default_factory=dict)
    prior: Prior | None = None
    embed_missing: bool = True

    def to_json(self) -> dict[str, Any]:
        """The JSON form (hashed)."""
        out: dict[str, Any] = {
            "model": self.model.to_json(),
            "train": [item_json(i) for i in self.train],
            "train_rows": self.train_rows,
            "test": self.test.to_json(),
            "test_rows": self.test_rows,
            "classifier": self.classifier,
            "params": dict(self.params),
        }
        if self.prior is not None:
            out["prior"] = self.prior.to_json()
        if not self.embed_missing:
            out["embed_missing"] = False
        return out

    @classmethod
    def from_json(cls, value: Any) -> ClassifyPayload:
        """Parse a payload (see :class:`EmbedPayload.from_json`)."""
        body = _object(
            value,
            cls.KIND,
            ("model", "train", "test", "classifier"),
            ("train_rows", "test_rows", "params", "prior", "embed_missing", "device"),
        )
        if not isinstance(body["classifier"], str):
            raise PayloadError(f"'classifier' must be a name, got {body['classifier']!r}")
        prior = body.get("prior")
        return cls(
            _model(body["model"]),
            parse_items(body["train"]),
            _count(body.get("train_rows"), "train_rows", optional=True),
            parse_item(body["test"], "test"),
            _count(body.get("test_rows"), "test_rows", optional=True),
            body["classifier"],
            _mapping(body.get("params"), "params"),
            None if not prior else Prior.from_json(prior),
            bool(body.get("embed_missing", True)),
        )

    def task(self) -> TaskSpec:
        """The content-hashed task."""
        return TaskSpec(self.KIND, self.to_json(), self.model.key)

    def lineage(self) -> str:
        """What must match for two results' nearest neighbours to be comparable: model,
        test set and its prefix, classifier and parameters."""
        return content_hash(
            {
                "model": self.model.to_json(),
                "test": self.test.to_json(),
                "test_rows": self.test_rows,
                "classifier": self.classifier,
                "params": dict(self.params),
            }
        )

    def with_prior(self, prior: Prior) -> ClassifyPayload:
        """The same evaluation continued from ``prior`` (another task identity)."""
        return ClassifyPayload(
            self.model,
            self.train,
            self.train_rows,
            self.test,
            self.test_rows,
            self.classifier,
            self.params,
            prior,
            self.embed_missing,
        )


@dataclass(frozen=True)
class ClassifyResult:
    """What a classify task returns.

    ``nn_index``/``nn_distance`` (per test row: the nearest training row and its distance)
    and ``distance_pairs`` are set for 1-NN proxies only; ``solver``, ``iterations``,
    ``converged`` and ``grad_norm`` (how the fit went) for the Linear probe only.
    """

    classifier: str
    params: dict[str, Any]
    err: float
    acc: float
    errors: int
    train_rows: int
    test_rows: int
    num_classes: int
    embedded_blocks: int = 0
    prior_rows: int = 0
    read_s: float = 0.0
    fit_s: float = 0.0
    nn_index: tuple[int, ...] | None = None
    nn_distance: tuple[float, ...] | None = None
    distance_pairs: int | None = None
    solver: str | None = None
    iterations: int | None = None
    converged: bool | None = None
    grad_norm: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form the worker sends."""
        out: dict[str, Any] = {
            "classifier": self.classifier,
            "params": dict(self.params),
            "err": self.err,
            "acc": self.acc,
            "errors": self.errors,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "num_classes": self.num_classes,
            "embedded_blocks": self.embedded_blocks,
            "prior_rows": self.prior_rows,
            "read_s": self.read_s,
            "fit_s": self.fit_s,
        }
        if self.nn_index is not None and self.nn_distance is not None:
            out["nn_index"] = list(self.nn_index)
            out["nn_distance"] = list(self.nn_distance)
            out["distance_pairs"] = self.distance_pairs
        if self.solver is not None:
            out["fit"] = {
                "solver": self.solver,
                "iterations": self.iterations,
                "converged": self.converged,
                "grad_norm": self.grad_norm,
            }
        return out

    @classmethod
    def from_json(cls, value: Any) -> ClassifyResult:
        """Parse a result (stored results of earlier versions read too).

        Raises:
            PayloadError: a required figure is missing or not a number.
        """
        if not isinstance(value, Mapping):
            raise PayloadError(f"a classify result must be an object, got {type(value).__name__}")
        try:
            index = value.get("nn_index")
            distance = value.get("nn_distance")
            raw_fit = value.get("fit")
            fit: Mapping[str, Any] = raw_fit if isinstance(raw_fit, Mapping) else {}
            return cls(
                str(value.get("classifier", "")),
                dict(value.get("params") or {}),
                float(value["err"]),
                float(value["acc"]),
                int(value.get("errors", round(float(value["err"]) * int(value["test_rows"])))),
                int(value["train_rows"]),
                int(value["test_rows"]),
                int(value.get("num_classes", 0)),
                int(value.get("embedded_blocks", 0)),
                int(value.get("prior_rows", 0)),
                float(value.get("read_s", 0.0)),
                float(value.get("fit_s", 0.0)),
                None if index is None else tuple(int(i) for i in index),
                None if distance is None else tuple(float(d) for d in distance),
                None if value.get("distance_pairs") is None else int(value["distance_pairs"]),
                None if fit.get("solver") is None else str(fit["solver"]),
                None if fit.get("iterations") is None else int(fit["iterations"]),
                None if fit.get("converged") is None else bool(fit["converged"]),
                None if fit.get("grad_norm") is None else float(fit["grad_norm"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise PayloadError(f"classify result is malformed: {error!r}") from None

    @property
    def has_neighbours(self) -> bool:
        """True when it carries nearest-neighbour state a later evaluation can continue."""
        return self.nn_index is not None and self.nn_distance is not None


# ---- task2vec, finetune ----------------------------------------------------------------------


@dataclass(frozen=True)
class Task2VecPayload:
    """Embed one dataset (a seeded sample of its first ``rows``) with one probe model."""

    KIND: ClassVar[str] = "task2vec"
    model: ModelSpec
    dataset: DatasetSpec
    rows: int | None
    sample_rows: int
    seed: int
    method: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The JSON form (hashed)."""
        return {
            "model": self.model.to_json(),
            "dataset": self.dataset.to_json(),
            "rows": self.rows,
            "sample_rows": self.sample_rows,
            "seed": self.seed,
            "method": dict(self.method),
        }

    @classmethod
    def from_json(cls, value: Any) -> Task2VecPayload:
        """Parse a payload (see :class:`EmbedPayload.from_json`)."""
        body = _object(
            value,
            cls.KIND,
            ("model", "dataset"),
            ("rows", "sample_rows", "seed", "method", "device"),
        )
        return cls(
            _model(body["model"]),
            _dataset(body["dataset"], "dataset"),
            _count(body.get("rows"), "rows", optional=True),
            _count(body.get("sample_rows", 256), "sample_rows"),
            _count(body.get("seed", 0), "seed"),
            _mapping(body.get("method"), "method"),
        )

    def task(self) -> TaskSpec:
        """The content-hashed task."""
        return TaskSpec(self.KIND, self.to_json(), self.model.key)


@dataclass(frozen=True)
class FinetuneItem:
    """A dataset a fine-tune reads, with a ``max_rows`` cap (``None``: all rows)."""

    dataset: DatasetSpec
    rows: int | None

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"dataset": self.dataset.to_json(), "rows": self.rows}

    @classmethod
    def from_json(cls, value: Any, name: str) -> FinetuneItem:
        """Parse ``{"dataset", "rows"}``."""
        body = _object(value, name, ("dataset",), ("rows",))
        return cls(_dataset(body["dataset"], name), _count(body.get("rows"), "rows", optional=True))


@dataclass(frozen=True)
class FinetunePayload:
    """Fine-tune one model on concatenated training sets (reporting on ``test``)."""

    KIND: ClassVar[str] = "finetune"
    model: ModelSpec
    train: tuple[FinetuneItem, ...]
    test: FinetuneItem | None
    hparams: dict[str, Any]
    method: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The JSON form (hashed)."""
        return {
            "model": self.model.to_json(),
            "train": [i.to_json() for i in self.train],
            "test": None if self.test is None else self.test.to_json(),
            "hparams": dict(self.hparams),
            "method": dict(self.method),
        }

    @classmethod
    def from_json(cls, value: Any) -> FinetunePayload:
        """Parse a payload (see :class:`EmbedPayload.from_json`)."""
        body = _object(value, cls.KIND, ("model", "train"), ("test", "hparams", "method", "device"))
        train = body["train"]
        if not isinstance(train, list) or not train:
            raise PayloadError("'train' must be a non-empty list of datasets")
        test = body.get("test")
        return cls(
            _model(body["model"]),
            tuple(FinetuneItem.from_json(t, "train") for t in train),
            None if test is None else FinetuneItem.from_json(test, "test"),
            _mapping(body.get("hparams"), "hparams"),
            _mapping(body.get("method"), "method"),
        )

    def task(self) -> TaskSpec:
        """The content-hashed task."""
        return TaskSpec(self.KIND, self.to_json(), self.model.key)


@dataclass(frozen=True)
class RankPayload:
    """Score one model's frozen features on the training rows with a transferability
    estimator (LogME, SFDA, H-score, kNN, ...).

    Attributes:
        model: The feature extractor.
        train: Training items, concatenated in order; ``train_rows`` a prefix of them.
        ranker: A ranker's canonical name (:data:`shift.methods.RANKERS`).
        params: Its parameters (defaults filled in by the parser).
        resamples: Bootstrap resamples of the rows behind the score's interval.
        seed: Seeds the resamples.
        embed_missing: Compute missing feature blocks on the worker (default true).
    """

    KIND: ClassVar[str] = "rank"
    model: ModelSpec
    train: tuple[TrainItem, ...]
    train_rows: int | None
    ranker: str
    params: dict[str, Any] = field(default_factory=dict)
    resamples: int = RANK_RESAMPLES
    seed: int = 0
    embed_missing: bool = True

    def to_json(self) -> dict[str, Any]:
        """The JSON form (hashed)."""
        out: dict[str, Any] = {
            "model": self.model.to_json(),
            "train": [item_json(i) for i in self.train],
            "train_rows": self.train_rows,
            "ranker": self.ranker,
            "params": dict(self.params),
            "resamples": self.resamples,
            "seed": self.seed,
        }
        if not self.embed_missing:
            out["embed_missing"] = False
        return out

    @classmethod
    def from_json(cls, value: Any) -> RankPayload:
        """Parse a payload (see :class:`EmbedPayload.from_json`)."""
        body = _object(
            value,
            cls.KIND,
            ("model", "train", "ranker"),
            ("train_rows", "params", "resamples", "seed", "embed_missing", "device"),
        )
        if not isinstance(body["ranker"], str):
            raise PayloadError(f"'ranker' must be a name, got {body['ranker']!r}")
        return cls(
            _model(body["model"]),
            parse_items(body["train"]),
            _count(body.get("train_rows"), "train_rows", optional=True),
            body["ranker"],
            _mapping(body.get("params"), "params"),
            _count(body.get("resamples", RANK_RESAMPLES), "resamples"),
            _count(body.get("seed", 0), "seed"),
            bool(body.get("embed_missing", True)),
        )

    def task(self) -> TaskSpec:
        """The content-hashed task."""
        return TaskSpec(self.KIND, self.to_json(), self.model.key)


@dataclass(frozen=True)
class RankResult:
    """What a rank task returns: the score (higher is better) and a bootstrap interval.

    ``ci_low``/``ci_high`` bound the score over ``resamples`` bootstrap resamples of the
    rows, widened where needed to hold the score itself (``None``: not resampled).
    """

    ranker: str
    params: dict[str, Any]
    score: float
    train_rows: int
    num_classes: int
    ci_low: float | None = None
    ci_high: float | None = None
    resamples: int = 0
    read_s: float = 0.0
    fit_s: float = 0.0
    embedded_blocks: int = 0

    def to_json(self) -> dict[str, Any]:
        """The JSON form the worker sends."""
        return {
            "ranker": self.ranker,
            "params": dict(self.params),
            "score": self.score,
            "train_rows": self.train_rows,
            "num_classes": self.num_classes,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "resamples": self.resamples,
            "read_s": self.read_s,
            "fit_s": self.fit_s,
            "embedded_blocks": self.embedded_blocks,
        }

    @classmethod
    def from_json(cls, value: Any) -> RankResult:
        """Parse a result.

        Raises:
            PayloadError: a required figure is missing or not a number.
        """
        if not isinstance(value, Mapping):
            raise PayloadError(f"a rank result must be an object, got {type(value).__name__}")
        try:
            low, high = value.get("ci_low"), value.get("ci_high")
            return cls(
                str(value["ranker"]),
                dict(value.get("params") or {}),
                float(value["score"]),
                int(value["train_rows"]),
                int(value.get("num_classes", 0)),
                None if low is None else float(low),
                None if high is None else float(high),
                int(value.get("resamples", 0)),
                float(value.get("read_s", 0.0)),
                float(value.get("fit_s", 0.0)),
                int(value.get("embedded_blocks", 0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise PayloadError(f"rank result is malformed: {error!r}") from None


@dataclass(frozen=True)
class PurgeFeaturesPayload:
    """Delete the worker's feature store (``PURGE FEATURES``).

    ``request`` makes every purge its own task (purging is never answered from a cache).
    """

    KIND: ClassVar[str] = "purge_features"
    request: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form (hashed)."""
        return {"request": self.request}

    @classmethod
    def from_json(cls, value: Any) -> PurgeFeaturesPayload:
        """Parse a payload (see :class:`EmbedPayload.from_json`)."""
        body = _object(value, cls.KIND, ("request",), ())
        if not isinstance(body["request"], str) or not body["request"]:
            raise PayloadError("'request' must be a non-empty string")
        return cls(body["request"])

    def task(self) -> TaskSpec:
        """The task (no model)."""
        return TaskSpec(self.KIND, self.to_json())


# ---- the registry ----------------------------------------------------------------------------

PAYLOADS: dict[str, Any] = {
    cls.KIND: cls
    for cls in (
        EmbedPayload,
        DescribePayload,
        ClassifyPayload,
        Task2VecPayload,
        FinetunePayload,
        RankPayload,
        PurgeFeaturesPayload,
    )
}
"""Payload class by task kind."""


def check_task(spec: TaskSpec) -> None:
    """Check the payload of a task of a known kind (kinds without a payload class pass).

    Raises:
        PayloadError: the payload does not parse (unknown fields such as paths included).
    """
    cls = PAYLOADS.get(spec.kind)
    if cls is not None:
        cls.from_json(spec.payload)
