"""Exact tree fields for the tricky parts of SHiFT-QL (numbers, units, precedence, aliases)."""

from __future__ import annotations

import pytest

from shift.errors import QueryError
from shift.ql import nodes as n
from shift.ql import parse, parse_script, render


def where(condition: str) -> n.Condition:
    tree = parse(f"SELECT * FROM models WHERE {condition}")
    assert isinstance(tree, n.Select)
    assert tree.where is not None
    return tree.where


def value_of(condition: str) -> object:
    cond = where(condition)
    assert isinstance(cond, n.Compare)
    return cond.value.value


# ------------------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("10M", 10_000_000, int),
        ("1e3", 1000, int),
        ("-2.5K", -2500, int),
        ("3B", 3_000_000_000, int),
        ("1.5e-3", 0.0015, float),
        (".5", 0.5, float),
        ("0.5", 0.5, float),
        ("+7", 7, int),
        ("2.5k", 2500, int),
        ("1e-3K", 1, int),
    ],
)
def test_number_values_and_types(text: str, expected: float, kind: type) -> None:
    value = value_of(f"num_params = {text}")
    assert value == expected
    assert type(value) is kind


def test_suffixed_number_is_not_truncated() -> None:
    # the original implementation read 10M as 10 and 1e3 as 1
    assert value_of("num_params < 10M") != 10
    assert value_of("num_params < 1e3") != 1


# ---------------------------------------------------------------------------- precedence


def test_and_binds_tighter_than_or() -> None:
    cond = where("num_params < 1 OR gflops > 2 AND up_acc > 3")
    assert isinstance(cond, n.Or)
    a, rest = cond.operands
    assert isinstance(a, n.Compare) and a.column.value == "num_params"
    assert isinstance(rest, n.And)
    assert [c.column.value for c in rest.operands] == ["gflops", "up_acc"]  # type: ignore[union-attr]


def test_or_after_and() -> None:
    cond = where("num_params < 1 AND gflops > 2 OR up_acc > 3")
    assert isinstance(cond, n.Or)
    left, right = cond.operands
    assert isinstance(left, n.And) and len(left.operands) == 2
    assert isinstance(right, n.Compare) and right.column.value == "up_acc"


def test_not_binds_tighter_than_and() -> None:
    cond = where("NOT num_params < 1 AND gflops > 2")
    assert isinstance(cond, n.And)
    first, second = cond.operands
    assert isinstance(first, n.Not)
    assert isinstance(first.operand, n.Compare) and first.operand.column.value == "num_params"
    assert isinstance(second, n.Compare) and second.column.value == "gflops"


def test_parentheses_override_precedence() -> None:
    cond = where("(num_params < 1 OR gflops > 2) AND up_acc > 3")
    assert isinstance(cond, n.And)
    assert isinstance(cond.operands[0], n.Or)
    assert isinstance(cond.operands[1], n.Compare)
    negated = where("NOT (num_params < 1 AND gflops > 2)")
    assert isinstance(negated, n.Not) and isinstance(negated.operand, n.And)


def test_chains_flatten() -> None:
    cond = where("num_params < 1 AND (gflops > 2 AND up_acc > 3) AND FINETUNED")
    assert isinstance(cond, n.And)
    assert len(cond.operands) == 4
    assert isinstance(cond.operands[3], n.Finetuned)
    ors = where("num_params < 1 OR (gflops > 2 OR up_acc > 3)")
    assert isinstance(ors, n.Or) and len(ors.operands) == 3


def test_value_on_the_left_is_flipped() -> None:
    cond = where("10M > num_params")
    assert cond == n.Compare(n.Name("num_params"), n.CmpOp.LT, n.Value(10_000_000))
    assert where("5 <= gflops") == where("gflops >= 5")


def test_between_and_negations() -> None:
    cond = where("num_params NOT BETWEEN 1K AND 2K")
    assert cond == n.Between(n.Name("num_params"), n.Value(1000), n.Value(2000), negated=True)
    outer = where("NOT num_params BETWEEN 1K AND 2K")
    assert isinstance(outer, n.Not)
    assert outer.operand == n.Between(n.Name("num_params"), n.Value(1000), n.Value(2000))


def test_in_forms() -> None:
    listed = where("name IN ['a', 'b']")
    assert listed == n.In(n.Name("name"), values=(n.Value("a"), n.Value("b")))
    assert where("name IN ('a', 'b')") == listed
    variable = where("name NOT IN seen")
    assert variable == n.In(n.Name("name"), variable=n.Name("seen"), negated=True)


# ------------------------------------------------------------------ aliases and spellings


def test_aliases_give_the_snake_case_tree() -> None:
    camel = parse(
        "SELECT * FROM Models WHERE NumParams < 10M AND Input == 'Vision' "
        "ORDER BY UpstreamAccuracy DESC LIMIT 1"
    )
    snake = parse(
        "SELECT * FROM models WHERE num_params < 10000000 AND modality = 'vision' "
        "ORDER BY up_acc DESC LIMIT 1"
    )
    assert camel == snake
    assert isinstance(camel, n.Select)
    assert camel.order_by == (n.OrderKey(n.Name("up_acc"), descending=True),)
    assert camel.limit == 1


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [("'Vision'", "vision"), ("'image'", "vision"), ("'Text'", "text"), ("'TEXT'", "text")],
)
def test_modality_values_are_canonical(spelling: str, canonical: str) -> None:
    cond = where(f"Input = {spelling}")
    assert cond == n.Compare(n.Name("modality"), n.CmpOp.EQ, n.Value(canonical))


def test_doubled_quote_escapes() -> None:
    assert value_of("name = 'it''s'") == "it's"
    assert value_of('name = "say ""hi"""') == 'say "hi"'
    assert value_of("name = ''''") == "'"
    assert value_of("name = 'a\"b'") == 'a"b'


def test_classifier_spellings_fill_defaults() -> None:
    trees = [
        parse(f'SELECT * FROM models TRAINED ON "a" TESTED ON "b" CLASSIFIED BY {spelling}')
        for spelling in (
            "Linear",
            "linear()",
            '"Linear"',
            '"linear probe"',
            "Linear(num_epochs=100)",
            '"Linear(learning_rate=0.01, num_epochs=100)"',
        )
    ]
    assert all(t == trees[0] for t in trees)
    tree = trees[0]
    assert isinstance(tree, n.TaskSelect)
    (method,) = tree.classifiers
    assert method.name == "linear"
    assert [(p.name, p.value.value) for p in method.params] == [
        ("learning_rate", 0.01),
        ("num_epochs", 100),
        ("solver", "auto"),
        ("l2", 1.0),
        ("tol", 1e-5),
        ("max_iter", 1000),
    ]


# --------------------------------------------------------------------------- task-aware


def test_clause_orders_give_equal_trees() -> None:
    a = parse('SELECT * FROM models ORDER BY acc DESC TRAINED ON "x" TESTED ON "y" LIMIT 2 WAIT')
    b = parse('SELECT * FROM models wait LIMIT 2 TESTED ON "y" TRAINED ON x ORDER BY acc DESC')
    assert a == b
    assert isinstance(a, n.TaskSelect)
    assert a.train == (n.Dataset("x"),)
    assert a.test == (n.Dataset("y"),)
    assert a.order == n.OrderKey(n.Name("acc"), descending=True)
    assert a.wait is True and a.limit == 2
    assert a.classifiers == (n.Method("euclidean_nn"),)


def test_mutation_and_benchmark_fields() -> None:
    tree = parse(
        "SELECT * FROM models ORDER BY max(err) "
        'TRAINED ON [("d" CHANGE [2, 4] TO "e" [0, 1]), "f"] '
        'TESTED ON BENCHMARK ["g", "h"] CHUNK 64 BUDGET 160'
    )
    assert isinstance(tree, n.TaskSelect)
    assert tree.benchmark is True
    assert tree.order.aggregate is n.Aggregate.MAX
    mutation, plain = tree.train
    assert mutation == n.Mutation("d", (n.Value(2), n.Value(4)), "e", (n.Value(0), n.Value(1)))
    assert plain == n.Dataset("f")
    assert (tree.chunk, tree.budget) == (64, 160)
    auto = parse('SELECT * FROM models TRAINED ON "a" TESTED ON "b" CHUNK auto BUDGET AUTO')
    assert isinstance(auto, n.TaskSelect)
    assert (auto.chunk, auto.budget) == ("auto", "auto")


def test_wait_in_any_case() -> None:
    trees = {
        parse(f'SELECT * FROM models TRAINED ON "a" TESTED ON "b" {word}')
        for word in ("WAIT", "wait", "Wait", "wAIT")
    }
    (tree,) = trees
    assert tree.wait is True  # type: ignore[union-attr]


def test_vec_select_takes_the_probe_out_of_the_condition() -> None:
    tree = parse("SELECT vec FROM readers WHERE size > 10 AND probe = 'm' AND num_classes < 5")
    assert isinstance(tree, n.VecSelect)
    assert tree.probe == "m"
    assert isinstance(tree.where, n.And)
    assert [c.column.value for c in tree.where.operands] == ["size", "num_classes"]  # type: ignore[union-attr]


def test_rank_parameters_in_the_string() -> None:
    tree = parse('RANK * FROM models TRAINED ON "a" TESTED ON "b" BY "random(seed=1)"')
    assert isinstance(tree, n.Rank)
    assert tree.rankers == (n.Method("random", (n.Param("seed", n.Value(1)),)),)


# ------------------------------------------------------------------ scripts and spans


SCRIPT = """-- a script of many statements
USE localhost:8001;
DECLARE top AS SELECT name FROM models ORDER BY up_acc DESC LIMIT 2;
SELECT * FROM models
  WHERE num_params < 10M   # small
  ORDER BY err ASC TRAINED ON "a" TESTED ON "b" OTHER THAN top;
PRINT *; PURGE FEATURES
"""


def test_script_of_many_statements() -> None:
    script = parse_script(SCRIPT)
    kinds = [type(s) for s in script.statements]
    assert kinds == [n.Use, n.Declare, n.TaskSelect, n.Print, n.Purge]
    use, declare, task, printed, purge = script.statements
    assert use == n.Use("http://localhost:8001")
    assert isinstance(declare, n.Declare) and declare.name == "top"
    assert isinstance(task, n.TaskSelect) and task.other_than == n.Variable("top")
    assert printed == n.Print(None)
    assert purge == n.Purge(n.PurgeTarget.FEATURES)
    assert parse_script(render(script)) == script


def test_spans_point_at_the_right_text() -> None:
    script = parse_script(SCRIPT)
    for statement in script.statements:
        assert statement.span is not None
    task = script.statements[2]
    assert isinstance(task, n.TaskSelect)
    start, end = task.span  # type: ignore[misc]
    assert SCRIPT[start:end].startswith("SELECT * FROM models")
    assert SCRIPT[start:end].endswith("OTHER THAN top")
    cond = task.where
    assert isinstance(cond, n.Compare) and cond.span is not None
    assert SCRIPT[cond.span[0] : cond.span[1]] == "num_params < 10M"
    assert cond.value.span is not None
    assert SCRIPT[cond.value.span[0] : cond.value.span[1]] == "10M"
    declare = script.statements[1]
    assert declare.span is not None
    assert SCRIPT[declare.span[0] : declare.span[1]] == (
        "DECLARE top AS SELECT name FROM models ORDER BY up_acc DESC LIMIT 2"
    )


def test_spans_do_not_affect_equality() -> None:
    assert parse("SELECT * FROM models") == parse("  \n SELECT   *\nFROM models ;")


def test_script_errors_name_every_bad_statement() -> None:
    text = "SELECT * FROM models;\nSELEC * FROM models;\nPRINT *;\nSELECT * FROM models LIMIT 1.5"
    with pytest.raises(QueryError) as caught:
        parse_script(text)
    located = [(d.line, d.column) for d in caught.value.diagnostics]
    assert located == [(2, 1), (4, 28)]
    assert "did you mean SELECT?" in caught.value.diagnostics[0].hint
    assert "^" in caught.value.diagnostics[1].snippet
