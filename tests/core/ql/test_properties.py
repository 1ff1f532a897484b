"""Property tests: render/parse round trips on generated trees, and a total parser."""

from __future__ import annotations

import contextlib
import json
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shift.errors import QueryError
from shift.methods import FINETUNE_PARAMS
from shift.ql import dumps, from_json, parse, parse_script, render
from shift.ql import nodes as n
from shift.ql.grammar import KEYWORDS
from shift.ql.vocabulary import (
    DATASET_COLUMNS,
    MODEL_COLUMNS,
    REGISTER_COLUMNS,
    RESULT_COLUMNS,
    canonical_table,
)

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# ----------------------------------------------------------------------------- atoms

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True).filter(
    lambda s: s.upper() not in KEYWORDS and canonical_table(s) is None
)
texts = st.text(min_size=0, max_size=20)
names = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")
ints = st.integers(min_value=-(10**18), max_value=10**18)
floats = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(ints, floats)
values = st.one_of(numbers, texts).map(n.Value)


def columns_of(pool: tuple[str, ...]) -> st.SearchStrategy[n.Name]:
    return st.sampled_from([c for c in pool if c != "modality"]).map(n.Name)


def conditions(pool: tuple[str, ...]) -> st.SearchStrategy[n.Condition]:
    column = columns_of(pool)
    modality = st.builds(
        n.Compare,
        st.just(n.Name("modality")),
        st.sampled_from([n.CmpOp.EQ, n.CmpOp.NE]),
        st.sampled_from(["vision", "text"]).map(n.Value),
    )
    compare = st.one_of(
        st.builds(n.Compare, column, st.sampled_from(list(n.CmpOp)), values),
        st.builds(
            n.Compare,
            column,
            st.sampled_from([n.CmpOp.EQ, n.CmpOp.NE]),
            st.booleans().map(n.Value),
        ),
    )
    if "modality" in pool:
        compare = st.one_of(compare, modality)
    between = st.builds(
        lambda c, a, b, neg: n.Between(c, n.Value(min(a, b)), n.Value(max(a, b)), neg),
        column,
        ints,
        ints,
        st.booleans(),
    )
    in_values = st.builds(
        lambda c, vs, neg: n.In(c, values=tuple(vs), negated=neg),
        column,
        st.lists(values, min_size=1, max_size=4),
        st.booleans(),
    )
    in_var = st.builds(
        lambda c, v, neg: n.In(c, variable=n.Name(v), negated=neg),
        column,
        identifiers,
        st.booleans(),
    )
    like = st.builds(n.Like, column, texts.map(n.Value), st.booleans())
    is_null = st.builds(n.IsNull, column, st.booleans())
    leaves = st.one_of(compare, between, in_values, in_var, like, is_null, st.just(n.Finetuned()))

    def extend(children: st.SearchStrategy[n.Condition]) -> st.SearchStrategy[n.Condition]:
        def flat(cls: type[n.And] | type[n.Or], items: list[n.Condition]) -> n.Condition:
            out: list[n.Condition] = []
            for item in items:
                out.extend(item.operands if isinstance(item, cls) else (item,))
            return cls(tuple(out))

        many = st.lists(children, min_size=2, max_size=3)
        return st.one_of(
            children.map(n.Not),
            many.map(lambda items: flat(n.And, items)),
            many.map(lambda items: flat(n.Or, items)),
        )

    return st.recursive(leaves, extend, max_leaves=6)


model_tables = st.sampled_from(["models", "image_models", "text_models"]).map(n.Table)
name_lists = st.lists(names.map(n.Value), min_size=1, max_size=3).map(
    lambda vs: n.NameList(tuple(vs))
)
variables = identifiers.map(n.Variable)
model_pools = st.one_of(model_tables, variables, name_lists)
labels = st.one_of(st.integers(-5, 50), names).map(n.Value)
datasets = st.one_of(
    names.map(n.Dataset),
    st.builds(
        lambda base, pairs, target: n.Mutation(
            base, tuple(p[0] for p in pairs), target, tuple(p[1] for p in pairs)
        ),
        names,
        st.lists(
            st.tuples(labels, labels),
            min_size=1,
            max_size=3,
            unique_by=lambda p: (type(p[0].value).__name__, p[0].value),
        ),
        names,
    ),
)
dataset_lists = st.lists(datasets, min_size=1, max_size=3).map(tuple)
classifiers = st.one_of(
    st.just(n.Method("euclidean_nn")),
    st.just(n.Method("cosine_nn")),
    st.builds(
        lambda lr, epochs: n.Method(
            "linear",
            (
                n.Param("learning_rate", n.Value(lr)),
                n.Param("num_epochs", n.Value(epochs)),
                n.Param("solver", n.Value("auto")),
                n.Param("l2", n.Value(1.0)),
                n.Param("tol", n.Value(1e-5)),
                n.Param("max_iter", n.Value(1000)),
            ),
        ),
        st.floats(min_value=1e-8, max_value=10.0),
        st.integers(1, 100_000),
    ),
)
rankers = st.one_of(
    st.just(n.Method("logme")),
    st.integers(0, 2**31 - 1).map(lambda s: n.Method("random", (n.Param("seed", n.Value(s)),))),
)
limits = st.one_of(st.none(), st.integers(0, 10**6))
other_thans = st.one_of(st.none(), variables, name_lists)
halving = st.one_of(st.none(), st.just("auto"), st.integers(1, 10**6))
column_lists = st.lists(columns_of(MODEL_COLUMNS), max_size=3).map(tuple)

# ------------------------------------------------------------------------ statements


@st.composite
def selects(draw: st.DrawFn) -> n.Select:
    source = draw(st.one_of(model_tables, variables, name_lists, st.just(n.Table("readers"))))
    pool = DATASET_COLUMNS if source == n.Table("readers") else MODEL_COLUMNS
    keys = st.builds(n.OrderKey, columns_of(pool), st.booleans())
    return n.Select(
        tuple(draw(st.lists(columns_of(pool), max_size=3))),
        source,
        draw(st.one_of(st.none(), conditions(pool))),
        tuple(draw(st.lists(keys, max_size=3))),
        draw(limits),
        draw(other_thans),
    )


@st.composite
def task_selects(draw: st.DrawFn) -> n.TaskSelect:
    benchmark = draw(st.booleans())
    test = draw(dataset_lists)
    train = draw(st.sampled_from([(test[0],), test])) if benchmark else draw(dataset_lists)
    if benchmark:
        train = tuple(n.Dataset(f"train-{i}") for i in range(len(train)))
    order = n.OrderKey(
        n.Name(draw(st.sampled_from(["err", "acc"]))),
        draw(st.booleans()),
        draw(st.sampled_from(list(n.Aggregate))) if benchmark else None,
    )
    result_columns = st.sampled_from([*MODEL_COLUMNS, *RESULT_COLUMNS]).map(n.Name)
    return n.TaskSelect(
        tuple(draw(st.lists(result_columns, max_size=3))),
        draw(model_pools),
        order,
        train,
        test,
        tuple(draw(st.lists(classifiers, min_size=1, max_size=3, unique=True))),
        draw(st.one_of(st.none(), conditions(MODEL_COLUMNS))),
        benchmark,
        draw(limits),
        draw(other_thans),
        draw(halving),
        draw(halving),
        draw(st.booleans()),
    )


@st.composite
def ranks(draw: st.DrawFn) -> n.Rank:
    return n.Rank(
        draw(column_lists),
        draw(model_pools),
        draw(dataset_lists),
        draw(st.one_of(st.just(()), dataset_lists)),
        draw(st.lists(rankers, min_size=1, max_size=3, unique=True).map(tuple)),
        draw(st.one_of(st.none(), conditions(MODEL_COLUMNS))),
        draw(limits),
        draw(other_thans),
        draw(st.booleans()),
    )


queries = st.one_of(selects(), task_selects(), ranks())
unions = st.builds(
    lambda parts, all_: n.Union(tuple(parts), all_),
    st.lists(queries, min_size=2, max_size=3),
    st.booleans(),
)
vec_selects = st.builds(
    n.VecSelect,
    st.one_of(st.just(n.Table("readers")), variables, name_lists),
    names,
    st.one_of(st.none(), conditions(DATASET_COLUMNS)),
    st.booleans(),
)


@st.composite
def finetunes(draw: st.DrawFn) -> n.Finetune:
    chosen = draw(st.lists(st.sampled_from(list(FINETUNE_PARAMS)), unique=True, max_size=4))
    params = []
    for name in FINETUNE_PARAMS:
        if name not in chosen:
            continue
        spec = FINETUNE_PARAMS[name]
        value: float | str
        if spec.kind is str:
            value = draw(st.sampled_from(["digits-test", "photos test", "x"]))
        elif spec.kind is int:
            value = draw(st.integers(int(spec.minimum or 0), int(spec.maximum or 10)))
        else:
            value = draw(st.floats(spec.minimum or 0.0, spec.maximum or 1.0))
        params.append(n.Param(name, n.Value(value)))
    return n.Finetune(draw(model_pools), draw(dataset_lists), tuple(params), draw(st.booleans()))


hosts = st.from_regex(r"[a-z][a-z0-9\-]{0,10}(\.[a-z][a-z0-9\-]{0,8}){0,2}", fullmatch=True)
statements = st.one_of(
    queries,
    unions,
    vec_selects,
    finetunes(),
    st.builds(n.Explain, st.one_of(queries, unions, vec_selects, finetunes()), st.booleans()),
    st.builds(n.Declare, identifiers, st.one_of(queries, unions)),
    st.builds(n.Print, st.one_of(st.none(), identifiers)),
    st.builds(lambda h, p: n.Use(f"http://{h}:{p}"), hosts, st.integers(1, 65535)),
    st.sampled_from(list(n.RegisterKind)).flatmap(
        lambda kind: st.builds(
            lambda name, fields: n.Register(
                kind, name, tuple(n.Param(k, v) for k, v in fields.items())
            ),
            names,
            st.dictionaries(
                st.sampled_from(REGISTER_COLUMNS[kind.value]),
                st.one_of(values, st.none().map(n.Value), st.booleans().map(n.Value)),
                min_size=1,
                max_size=4,
            ),
        )
    ),
    st.builds(n.Purge, st.sampled_from(list(n.PurgeTarget))),
)


@PROPERTY_SETTINGS
@given(statements)
def test_parse_of_render_is_identity(tree: n.Statement) -> None:
    text = render(tree)
    assert parse(text) == tree, text


@PROPERTY_SETTINGS
@given(statements)
def test_json_round_trip(tree: n.Statement) -> None:
    assert from_json(json.loads(dumps(tree))) == tree


@PROPERTY_SETTINGS
@given(st.lists(statements, min_size=1, max_size=4))
def test_scripts_round_trip(trees: list[n.Statement]) -> None:
    script = n.Script(tuple(trees))
    assert parse_script(render(script)) == script


TOKENS = [
    *KEYWORDS,
    *[k.lower() for k in KEYWORDS],
    *"()[],;*=<>!+-.'\"#",
    "--",
    "\n",
    " ",
    "10M",
    "1e3",
    "1e",
    "-2.5K",
    "name",
    "num_params",
    "err",
    "avg",
    "models",
    "'x'",
    '"y"',
    "vec",
    "probe",
    "Linear",
    "(learning_rate=0.1)",
    "localhost:8001",
]


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_token_soup_gives_a_tree_or_a_query_error(text: str) -> None:
    try:
        parse_script(text)
    except QueryError as error:
        assert error.diagnostics
        for diagnostic in error.diagnostics:
            assert diagnostic.line >= 1 and diagnostic.column >= 1
            assert diagnostic.message


@PROPERTY_SETTINGS
@given(st.text(alphabet=st.characters(), max_size=200))
def test_arbitrary_text_gives_a_tree_or_a_query_error(text: str) -> None:
    try:
        parse_script(text)
    except QueryError as error:
        assert str(error)


@PROPERTY_SETTINGS
@given(st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(["type", "columns", "source", "where", "name", "x"]),
                        children, max_size=4),
    ),
    max_leaves=12,
))  # fmt: skip
def test_arbitrary_json_gives_a_tree_or_a_query_error(data: object) -> None:
    try:
        from_json(data)
    except QueryError as error:
        assert str(error)


@PROPERTY_SETTINGS
@given(statements, st.data())
def test_mutated_json_trees_are_rejected_cleanly(tree: n.Statement, data: st.DataObject) -> None:
    """Corrupting one key of a valid tree yields a tree or a QueryError, nothing else."""
    encoded = json.loads(dumps(tree))
    node = encoded
    while True:
        keys = [k for k, v in node.items() if k != "type"] if isinstance(node, dict) else []
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict) and data.draw(st.booleans()):
            node = child
            continue
        node[key] = data.draw(
            st.one_of(st.none(), st.integers(), st.text(max_size=4), st.just([]), st.just({}))
        )
        break
    try:
        from_json(encoded)
    except QueryError as error:
        assert str(error)


def test_ten_kilobyte_script_parses() -> None:
    statement = (
        "SELECT * FROM image_models WHERE num_params < 30M AND (source = 'timm' OR "
        'up_acc >= 0.7) ORDER BY err ASC TRAINED ON "pets-train" TESTED ON "pets-val" '
        "CLASSIFIED BY ['Cosine NN', Linear(learning_rate=0.01, num_epochs=400)] "
        "CHUNK AUTO BUDGET AUTO LIMIT 3 WAIT;\n"
    )
    count = 10_240 // len(statement) + 1
    script = parse_script(statement * count)
    assert len(statement * count) >= 10_240
    assert len(script.statements) == count


def test_printable_ascii_statement_prefixes_never_crash() -> None:
    text = render(parse("SELECT name FROM models WHERE num_params BETWEEN 1 AND 5M LIMIT 2"))
    for cut in range(len(text) + 1):
        for extra in ("", ")", "'", "(", string.punctuation):
            with contextlib.suppress(QueryError):
                parse_script(text[:cut] + extra)
