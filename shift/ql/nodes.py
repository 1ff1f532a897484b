"""The query tree: frozen dataclasses for every SHiFT-QL statement, clause and condition.

Every node carries a source ``span`` (start and end offsets into the parsed text) that is
excluded from equality, so two spellings of the same query compare equal. Trees built by
the parser are canonical: column aliases resolved, defaults filled in, AND/OR flattened.
:mod:`shift.ql.codec` turns a tree into JSON and back; :mod:`shift.ql.render` turns it
back into SHiFT-QL text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Literal, TypeAlias

from shift.errors import Diagnostic

Span: TypeAlias = tuple[int, int] | None
Scalar: TypeAlias = int | float | str | bool | None


class Node:
    """Base of every tree node. ``TAG`` names the node in the JSON form."""

    TAG: ClassVar[str] = ""
    span: Span


class CmpOp(StrEnum):
    """Comparison operators, in canonical spelling (``==`` is ``=``, ``<>`` is ``!=``)."""

    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


class Aggregate(StrEnum):
    """How a benchmark query combines the per-dataset scores of a model."""

    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"


class PurgeTarget(StrEnum):
    """What ``PURGE`` deletes: cached results (default), stored features, or both."""

    RESULTS = "results"
    FEATURES = "features"
    ALL = "all"


class RegisterKind(StrEnum):
    """What ``REGISTER`` adds to the catalog (and ``DROP`` removes)."""

    DATASET = "dataset"
    MODEL = "model"


# ---------------------------------------------------------------------------------- atoms


@dataclass(frozen=True)
class Value(Node):
    """A literal: number, string, TRUE/FALSE or NULL (JSON: the bare value)."""

    TAG = "value"
    value: Scalar
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class ValueList(Node):
    """``[v1, v2, ...]``: a list of literals, a REGISTER value only (JSON: the bare list)."""

    TAG = "list"
    items: tuple[Value, ...]
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)

    @property
    def value(self) -> tuple[Scalar, ...]:
        """The literals' values."""
        return tuple(item.value for item in self.items)


@dataclass(frozen=True)
class Name(Node):
    """An identifier: a column, a variable or a parameter name (JSON: the bare string)."""

    TAG = "name"
    value: str
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Param(Node):
    """``name=value`` inside a classifier, ranker, fine-tune or REGISTER parameter list.

    Only a REGISTER column takes a :class:`ValueList`.
    """

    TAG = "param"
    name: str
    value: Value | ValueList
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


# ----------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Compare(Node):
    """``column op value``; a value on the left is moved right with the operator flipped."""

    TAG = "compare"
    column: Name
    op: CmpOp
    value: Value
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Between(Node):
    """``column [NOT] BETWEEN low AND high`` (bounds included)."""

    TAG = "between"
    column: Name
    low: Value
    high: Value
    negated: bool = False
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class In(Node):
    """``column [NOT] IN (v, ...)``, ``IN ["a", ...]`` or ``IN variable``.

    Exactly one of ``values`` and ``variable`` is set.
    """

    TAG = "in"
    column: Name
    values: tuple[Value, ...] | None = None
    variable: Name | None = None
    negated: bool = False
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Like(Node):
    """``column [NOT] LIKE 'pattern'`` with SQL wildcards ``%`` and ``_``."""

    TAG = "like"
    column: Name
    pattern: Value
    negated: bool = False
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class IsNull(Node):
    """``column IS [NOT] NULL``."""

    TAG = "is_null"
    column: Name
    negated: bool = False
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Finetuned(Node):
    """``FINETUNED``: the model is a result of fine-tuning (``NOT FINETUNED`` is a Not)."""

    TAG = "finetuned"
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Not(Node):
    """``NOT operand``."""

    TAG = "not"
    operand: Condition
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class And(Node):
    """Conjunction of two or more operands, none of them an ``And``."""

    TAG = "and"
    operands: tuple[Condition, ...]
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Or(Node):
    """Disjunction of two or more operands, none of them an ``Or``."""

    TAG = "or"
    operands: tuple[Condition, ...]
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


Condition: TypeAlias = Compare | Between | In | Like | IsNull | Finetuned | Not | And | Or

# ------------------------------------------------------------------------- sources, data


@dataclass(frozen=True)
class Table(Node):
    """A catalog table: ``image_models``, ``text_models``, ``models`` or ``readers``."""

    TAG = "table"
    name: str
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Variable(Node):
    """A name bound by ``DECLARE``."""

    TAG = "variable"
    name: str
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class NameList(Node):
    """An explicit list of model or dataset names: ``["a", "b"]``."""

    TAG = "names"
    names: tuple[Value, ...]
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


Source: TypeAlias = Table | Variable | NameList


@dataclass(frozen=True)
class Dataset(Node):
    """A registered dataset, by name."""

    TAG = "dataset"
    name: str
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Change(Node):
    """One further ``CHANGE [l1, ...] TO "target" [m1, ...]`` clause of a :class:`Mutation`."""

    TAG = "change"
    from_labels: tuple[Value, ...]
    target: str
    to_labels: tuple[Value, ...]
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Mutation(Node):
    """``("base" CHANGE [l1, ...] TO "target" [m1, ...] [, CHANGE ...])``.

    The rows of ``base`` labelled ``from_labels[i]`` are replaced by the rows of ``target``
    labelled ``to_labels[i]`` (relabelled as ``from_labels[i]``). With ``target == base``
    the change only relabels rows. ``also`` holds the further CHANGE clauses, each taking
    rows from another dataset; the parser merges clauses that name the same target, so
    every target appears once (the first in ``target``, the others in ``also``).
    """

    TAG = "mutation"
    base: str
    from_labels: tuple[Value, ...]
    target: str
    to_labels: tuple[Value, ...]
    also: tuple[Change, ...] = ()
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)

    @property
    def changes(self) -> tuple[Change, ...]:
        """Every CHANGE clause, the first one included."""
        first = Change(self.from_labels, self.target, self.to_labels, span=self.span)
        return (first, *self.also)


DatasetItem: TypeAlias = Dataset | Mutation


@dataclass(frozen=True)
class OrderKey(Node):
    """One ``ORDER BY`` key: a column or ``agg(column)``, ascending unless ``descending``."""

    TAG = "order"
    column: Name
    descending: bool = False
    aggregate: Aggregate | None = None
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Method(Node):
    """A classifier (``CLASSIFIED BY``) or ranker (``BY``) with its full parameter list."""

    TAG = "method"
    name: str
    params: tuple[Param, ...] = ()
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Strategy(Node):
    """A strategy after ``BY``: two or more components combined into one ranking.

    ``kind`` is ``rank`` (rank averaging) or ``z`` (z-score averaging); each component is a
    ranker or a proxy (classifier) under its canonical name with every parameter
    (:mod:`shift.strategies`). ``name`` is the registered strategy's name, empty when it was
    written inline (``"rank:logme+knn"``). ``name == "default"`` with no kind and no
    components is the strategy of the broker's ``rank_strategy`` setting, resolved there.
    """

    TAG = "strategy"
    kind: str
    components: tuple[Method, ...]
    name: str = ""
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


# ----------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Select(Node):
    """Catalog query: ``SELECT [DISTINCT] cols FROM source [WHERE] [ORDER BY ...] [LIMIT]
    [OTHER THAN]``.

    ``columns`` is empty for ``*`` (and ``ALL``). ``distinct`` drops repeated result rows
    (after the columns are picked), keeping the first of each.
    """

    TAG = "select"
    columns: tuple[Name, ...]
    source: Source
    where: Condition | None = None
    order_by: tuple[OrderKey, ...] = ()
    limit: int | None = None
    other_than: Source | None = None
    distinct: bool = False
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class TaskSelect(Node):
    """Task-aware query: rank the pool by a proxy's error on the user's data.

    ``chunk`` and ``budget`` are ``None`` for an exhaustive search (no successive halving),
    a positive integer, or ``"auto"``. ``benchmark`` pairs ``train[i]`` with ``test[i]``
    and combines the per-pair scores with ``order.aggregate``.
    """

    TAG = "task_select"
    columns: tuple[Name, ...]
    source: Source
    order: OrderKey
    train: tuple[DatasetItem, ...]
    test: tuple[DatasetItem, ...]
    classifiers: tuple[Method, ...]
    where: Condition | None = None
    benchmark: bool = False
    limit: int | None = None
    other_than: Source | None = None
    chunk: int | Literal["auto"] | None = None
    budget: int | Literal["auto"] | None = None
    wait: bool = False
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Rank(Node):
    """``RANK cols FROM pool ... TRAINED ON ... [TESTED ON ...] [BY "ranker(params)" | [...]]``.

    ``rankers`` holds rankers and strategies in the order written; empty (no ``BY``) means
    the default strategy (the broker's ``rank_strategy`` setting). ``chunk`` and ``budget``
    are ``None`` for a RANK on every training row; either one set (``CHUNK n|AUTO``,
    ``BUDGET n|AUTO``) halves over training prefixes (docs/halving.md).
    """

    TAG = "rank"
    columns: tuple[Name, ...]
    source: Source
    train: tuple[DatasetItem, ...]
    test: tuple[DatasetItem, ...]
    rankers: tuple[Method | Strategy, ...]
    where: Condition | None = None
    limit: int | None = None
    other_than: Source | None = None
    wait: bool = False
    chunk: int | Literal["auto"] | None = None
    budget: int | Literal["auto"] | None = None
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class VecSelect(Node):
    """``SELECT vec FROM datasets WHERE probe = model [AND cond]``: Task2Vec distances."""

    TAG = "vec_select"
    source: Source
    probe: str
    where: Condition | None = None
    wait: bool = False
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


Query: TypeAlias = Select | TaskSelect | Rank


@dataclass(frozen=True)
class Union(Node):
    """``q1 UNION [ALL] q2 ...``: the models of every part (distinct unless ``all``)."""

    TAG = "union"
    parts: tuple[Query, ...]
    all: bool = False
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Finetune(Node):
    """``FINETUNE models WITH datasets [(params)] [WAIT]``."""

    TAG = "finetune"
    models: Source
    datasets: tuple[DatasetItem, ...]
    params: tuple[Param, ...] = ()
    wait: bool = False
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Explain(Node):
    """``EXPLAIN [JSON] statement``: the plan instead of (and, after a run, with) results."""

    TAG = "explain"
    statement: Select | TaskSelect | Rank | VecSelect | Union | Finetune
    json: bool = False
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Declare(Node):
    """``DECLARE name AS query``: bind the query's models to a variable."""

    TAG = "declare"
    name: str
    query: Select | TaskSelect | Rank | Union
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Print(Node):
    """``PRINT name`` or ``PRINT *`` (``name`` is ``None``)."""

    TAG = "print"
    name: str | None = None
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Use(Node):
    """``USE host:port`` or ``USE "http://host:port"``; ``url`` is always a full URL."""

    TAG = "use"
    url: str
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Register(Node):
    """``REGISTER DATASET|MODEL "name" (cols) VALUES (vals)``."""

    TAG = "register"
    kind: RegisterKind
    name: str
    fields: tuple[Param, ...]
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class RegisterModels(Node):
    """``REGISTER MODELS FROM registry [WHERE cond] [LIMIT n]``: import a family of models.

    ``registry`` is a canonical registry name (``timm``, ``huggingface``); the condition
    tests the columns of that registry's rows (``SELECT * FROM timm_registry`` shows them).
    """

    TAG = "register_models"
    registry: str
    where: Condition | None = None
    limit: int | None = None
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Purge(Node):
    """``PURGE [RESULTS | FEATURES | ALL]``."""

    TAG = "purge"
    target: PurgeTarget = PurgeTarget.RESULTS
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class Drop(Node):
    """``DROP MODEL|DATASET [IF EXISTS] name``: remove a catalog row (cached work is kept)."""

    TAG = "drop"
    kind: RegisterKind
    name: str
    if_exists: bool = False
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)


Statement: TypeAlias = (
    Select
    | TaskSelect
    | Rank
    | VecSelect
    | Union
    | Finetune
    | Explain
    | Declare
    | Print
    | Use
    | Register
    | RegisterModels
    | Purge
    | Drop
)


@dataclass(frozen=True)
class Script(Node):
    """A sequence of statements.

    ``notices`` are what the parser tells the user without refusing the text (a clause
    accepted for compatibility and ignored, say); like spans, they are not part of the
    tree's equality or of its JSON form.
    """

    TAG = "script"
    statements: tuple[Statement, ...]
    span: Span = field(default=None, compare=False, repr=False, kw_only=True)
    notices: tuple[Diagnostic, ...] = field(default=(), compare=False, repr=False, kw_only=True)


NODE_TYPES: dict[str, type[Node]] = {
    cls.TAG: cls
    for cls in (
        Value, ValueList, Name, Param, Compare, Between, In, Like, IsNull, Finetuned, Not, And, Or,
        Table, Variable, NameList, Dataset, Change, Mutation, OrderKey, Method, Strategy, Select,
        TaskSelect, Rank, VecSelect, Union, Finetune, Explain, Declare, Print, Use, Register,
        RegisterModels, Purge, Drop, Script,
    )
}  # fmt: skip
