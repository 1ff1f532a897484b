"""The completer as a table: text with the cursor at ``|`` -> what it suggests.

Each row gives the text (only what is before ``|`` reaches the completer), the prefix a
suggestion replaces, suggestions that must appear (in this order, others may come between)
and suggestions that must not appear at all.
"""

from __future__ import annotations

import pytest

from repl.completer import STATEMENT_STARTS, Names, complete
from repl.lexing import is_complete, tokenize
from shift.errors import QueryError
from shift.ql import parse_script
from shift.ql.tokens import KEYWORDS

NAMES = Names(
    models=("efficientnet-lite0", "efficientnet-lite1", "minilm-l3"),
    datasets=("digits-test", "digits-train", "photos-train"),
    variables=("top", "small_ones"),
)
TASK = 'SELECT * FROM image_models ORDER BY err ASC TRAINED ON "digits-train" '

CASES = [
    # (text with cursor, prefix, suggestions in this order, must not appear)
    ("|", "", list(STATEMENT_STARTS), ["FROM"]),
    ("SEL|", "SEL", ["SELECT"], ["RANK"]),
    ("SELECT * FROM models WHERE name = 'a;' |", "", ["AND", "OR"], ["SELECT"]),
    ("sel|", "sel", ["select"], ["SELECT"]),
    ("SELECT 1; PRI|", "PRI", ["PRINT"], []),
    ("EXPLAIN |", "", ["JSON", "SELECT", "RANK", "FINETUNE"], ["PRINT"]),
    ("EXPLAIN JSON |", "", ["SELECT", "RANK", "FINETUNE"], ["JSON"]),
    ("SELECT |", "", ["*", "name", "source"], ["FROM"]),
    ("SELECT name, num|", "num", ["num_params", "num_classes"], ["*"]),
    ("SELECT name |", "", ["FROM"], ["name"]),
    ("SELECT * FROM |", "", ["models", "image_models", "text_models", "readers", "top"], []),
    ("SELECT * FROM im|", "im", ["image_models"], ["models"]),
    ("SELECT * FROM [|", "", ['"efficientnet-lite0"', '"efficientnet-lite1"'], ["models"]),
    ('SELECT * FROM ["eff|', "eff", ['efficientnet-lite0"', 'efficientnet-lite1"'], []),
    ("SELECT * FROM models |", "", ["WHERE", "ORDER BY", "TRAINED ON", "TESTED ON"], ["BY"]),
    ("SELECT * FROM models WHERE |", "", ["name", "source", "modality"], ["num_classes"]),
    ("SELECT * FROM readers WHERE |", "", ["name", "reader", "size"], ["num_params"]),
    ("SELECT * FROM readers WHERE num|", "num", ["num_classes"], ["num_params"]),
    ("SELECT * FROM models WHERE up|", "up", ["up_acc"], []),
    ("SELECT * FROM models WHERE num_params |", "", ["BETWEEN", "IN", "LIKE", "IS"], ["AND"]),
    ("SELECT * FROM models WHERE num_params NOT |", "", ["BETWEEN", "IN", "LIKE"], ["name"]),
    ("SELECT * FROM models WHERE num_params < 10M |", "", ["AND", "OR", "ORDER BY"], ["WHERE"]),
    ("SELECT * FROM models WHERE a < 1 AND |", "", ["name", "source"], ["AND"]),
    ("SELECT * FROM models WHERE x BETWEEN 1 AND |", "", [], ["name"]),
    ("SELECT * FROM models WHERE name IN |", "", ["top", "small_ones"], ["name"]),
    ("SELECT * FROM models WHERE license IS |", "", ["NOT", "NULL"], []),
    ("SELECT * FROM models WHERE license IS NOT |", "", ["NULL"], ["NOT"]),
    ("SELECT * FROM models ORDER BY |", "", ["err", "acc", "name"], ["ASC"]),
    ("SELECT * FROM models ORDER |", "", ["BY"], []),
    ("SELECT * FROM readers ORDER BY si|", "si", ["size"], []),
    ("SELECT * FROM models ORDER BY err |", "", ["ASC", "DESC", "TRAINED ON"], ["ORDER BY"]),
    ("SELECT * FROM models ORDER BY err d|", "d", ["desc"], ["ASC"]),
    ("SELECT * FROM models ORDER BY up_acc DESC |", "", ["TRAINED ON", "LIMIT"], ["DESC"]),
    ("SELECT * FROM models TRAINED |", "", ["ON"], []),
    ("DRO|", "DRO", ["DROP"], []),
    ("DROP |", "", ["DATASET", "MODEL"], ["SELECT"]),
    ("DROP MODEL |", "", ["IF", '"efficientnet-lite0"', '"minilm-l3"'], ['"digits-test"']),
    ("DROP DATASET IF EXISTS |", "", ['"digits-test"', '"photos-train"'], ['"minilm-l3"']),
    ('DROP MODEL "eff|', "eff", ['efficientnet-lite0"', 'efficientnet-lite1"'], []),
    ("SELECT name, st|", "st", ["status"], []),
    ("SELECT * FROM readers WHERE err|", "err", ["error"], ["err"]),
    ("SELECT * FROM models TRAINED ON |", "", ['"digits-test"', '"digits-train"'], ["TASK"]),
    ('SELECT * FROM models TRAINED ON "dig|', "dig", ['digits-test"', 'digits-train"'], []),
    ("SELECT * FROM models TRAINED ON 'pho|", "pho", ["photos-train'"], []),
    ('SELECT * FROM models TRAINED ON "train|', "train", ['digits-train"', 'photos-train"'], []),
    ('SELECT * FROM models TRAINED ON ["digits-train", "|', "", ['digits-test"'], []),
    (TASK + "TESTED ON |", "", ["TASK", "BENCHMARK", '"digits-test"'], []),
    (TASK + 'TESTED ON BENCHMARK ["|', "", ['digits-test"', 'digits-train"'], []),
    (TASK + 'TESTED ON "digits-test" |', "", ["CLASSIFIED BY", "LIMIT", "WAIT"], ["TRAINED ON"]),
    (TASK + "CLASSIFIED BY |", "", ['"Euclidean NN"', '"Cosine NN"'], ['"logme"']),
    (TASK + 'CLASSIFIED BY ["Euclidean NN", |', "", ['"Euclidean NN"', '"Cosine NN"'], []),
    (TASK + 'CLASSIFIED BY ["Cos|', "Cos", ['Cosine NN"'], ['Euclidean NN"']),
    (TASK + "CLASSIFIED BY Linear(|", "", ["learning_rate", "num_epochs"], []),
    (TASK + "CLASSIFIED BY Linear(learning_rate=0.1, |", "", ["learning_rate", "num_epochs"], []),
    (TASK + "LIMIT 3 |", "", ["TESTED ON", "CLASSIFIED BY", "WAIT"], ["LIMIT"]),
    (TASK + "CHUNK |", "", ["AUTO"], []),
    (TASK + "BUDGET 40 |", "", ["WAIT"], ["BUDGET"]),
    (TASK + "OTHER THAN |", "", ["top", "small_ones"], []),
    (TASK + "WAIT |", "", ["TESTED ON", "UNION"], ["WAIT"]),
    ('RANK name FROM models TRAINED ON "a" TESTED ON "b" |', "", ["ORDER BY", "BY"], []),
    ('RANK name FROM models TRAINED ON "a" TESTED ON "b" BY |', "", ['"logme"'], []),
    ('RANK name FROM models BY "ra|', "ra", ['random(seed=0)"'], ['logme"']),
    ('SELECT vec FROM readers WHERE probe = "|', "", ['efficientnet-lite0"', 'minilm-l3"'], []),
    ("DECLARE best |", "", ["AS"], []),
    ("DECLARE best AS |", "", ["SELECT", "RANK"], ["PRINT"]),
    ("DECLARE best AS SELECT * FROM |", "", ["models", "top"], []),
    ("PRINT |", "", ["top", "small_ones", "*"], []),
    ("PRINT s|", "s", ["small_ones"], ["top"]),
    ("REGISTER |", "", ["DATASET", "MODEL"], []),
    ('REGISTER DATASET "pets" (|', "", ["reader", "path"], ["hub_id"]),
    ('REGISTER MODEL "r50" (source, |', "", ["modality", "hub_id"], ["source", "reader"]),
    ('REGISTER MODEL "r50" (source, hub_id, m|', "m", ["modality"], ["source", "hub_id"]),
    ('REGISTER DATASET "p" (reader, path, |', "", ["text_column"], ["reader", "path"]),
    ('REGISTER MODEL "r50" (source) |', "", ["VALUES"], []),
    ("PURGE |", "", ["RESULTS", "FEATURES", "ALL"], []),
    ("FINETUNE |", "", ["top", "small_ones", '"efficientnet-lite0"'], []),
    ("FINETUNE top |", "", ["WITH"], []),
    ("FINETUNE top WITH |", "", ['"digits-test"'], []),
    ('FINETUNE top WITH "digits-train" (|', "", ["learning_rate", "epochs"], []),
    ("SELECT name FROM models UNION |", "", ["ALL", "SELECT", "RANK"], []),
    ("USE |", "", [], ["SELECT"]),
]


def _in_order(wanted: list[str], got: list[str]) -> bool:
    rest = iter(got)
    return all(any(w == g for g in rest) for w in wanted)


@pytest.mark.parametrize(("text", "prefix", "wanted", "absent"), CASES, ids=[c[0] for c in CASES])
def test_completion(text: str, prefix: str, wanted: list[str], absent: list[str]) -> None:
    before = text.split("|", 1)[0]
    got = complete(before, NAMES)
    assert got.prefix == prefix
    assert _in_order(wanted, got.texts), got.texts
    if not wanted:
        assert got.texts == []
    assert not set(absent) & set(got.texts), got.texts


def test_names_come_from_the_snapshot() -> None:
    assert complete("PRINT ", Names()).texts == ["*"]
    assert complete("FINETUNE x WITH ", Names(datasets=("new",))).texts == ['"new"']


@pytest.mark.parametrize(
    ("text", "complete_"),
    [
        ("", True),
        ("SELECT * FROM models", False),
        ("SELECT * FROM models;", True),
        ("SELECT * FROM models;  -- done", True),
        ("SELECT * FROM models -- no end;", False),
        ("SELECT * FROM models WHERE name = 'a;'", False),
        ("SELECT * FROM models WHERE name = 'a;", False),
        ("SELECT 1;\nSELECT", False),
        ("\\format json", True),
    ],
)
def test_enter_runs_only_finished_statements(text: str, complete_: bool) -> None:
    assert is_complete(text) is complete_


def test_tokenizer_never_fails() -> None:
    tokens = tokenize("SELECT 'it''s' \"open")
    assert [t.kind for t in tokens] == ["word", "string", "open"]
    assert tokens[1].value == "it's" and tokens[2].value == "open"


def test_statement_starts_come_from_the_grammar() -> None:
    assert set(STATEMENT_STARTS) == {"SELECT", "RANK", "EXPLAIN", "DECLARE", "PRINT", "USE",
                                     "REGISTER", "FINETUNE", "PURGE", "DROP"}  # fmt: skip


def _expected_words(message: str) -> set[str]:
    """The tokens a syntax error lists: "Expected one of a, b or c but found ..."."""
    listed = message.split(" but found ")[0].removeprefix("Expected ").removeprefix("one of ")
    return {w.strip() for part in listed.split(", ") for w in part.split(" or ")}


#: Rows whose cursor follows whole tokens: the parser can be asked about the same text.
WHOLE = [c[0].split("|")[0] for c in CASES if not c[1] and not c[0].rstrip("|").endswith('"')]


@pytest.mark.parametrize("text", WHOLE)
def test_offered_keywords_are_what_the_parser_expects(text: str) -> None:
    """A keyword the completer offers is one the parser's error lists at that point."""
    offered = [s.text for s in complete(text, NAMES).items if s.kind == "keyword"]
    with pytest.raises(QueryError) as caught:
        parse_script(text + " @")
    diagnostic = caught.value.diagnostics[-1]
    expected = _expected_words(diagnostic.message)
    for phrase in offered:
        assert phrase.split()[0] in expected, (phrase, diagnostic.message)
    assert all(p.split()[0] in KEYWORDS for p in offered)
