"""The one SHiFT-QL tokenizer: what it splits, that it never fails, and that the parser,
the REPL's lexer, highlighter and completer all read text through it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shift.ql import tokens as tk
from shift.ql.numbers import parse_number
from tests.ql.test_fixtures import INVALID, VALID

ROOT = Path(__file__).resolve().parents[2]

KINDS = [
    # (text, [(kind, text), ...]) without whitespace and comments
    ("SELECT * FROM m", [("word", "SELECT"), ("punct", "*"), ("word", "FROM"), ("word", "m")]),
    ("a<=-1.5e3K", [("word", "a"), ("op", "<="), ("number", "-1.5e3K")]),
    ("x == 'it''s'", [("word", "x"), ("op", "=="), ("string", "'it''s'")]),
    ('"a""b" "open', [("string", '"a""b"'), ("open", '"open')]),
    ("10MB 1.2.3 .5", [("bad_number", "10MB"), ("bad_number", "1.2.3"), ("number", ".5")]),
    ("a -- c ; d\n# e\n;", [("word", "a"), ("punct", ";")]),
    ("'a;b' ; @", [("string", "'a;b'"), ("punct", ";"), ("punct", "@")]),
    ("[1, 2]", [("punct", "["), ("number", "1"), ("punct", ","), ("number", "2"), ("punct", "]")]),
    ("x<>y!=z", [("word", "x"), ("op", "<>"), ("word", "y"), ("op", "!="), ("word", "z")]),
    ("USE h:8001 [::1]:80", [("word", "USE"), ("hostport", "h:8001"), ("hostport", "[::1]:80")]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), KINDS, ids=[k[0] for k in KINDS])
def test_kinds(text: str, expected: list[tuple[str, str]]) -> None:
    assert [(t.kind.value, t.text) for t in tk.tokenize(text)] == expected


def test_values_and_keywords() -> None:
    select, string, open_ = tk.tokenize("select 'it''s' \"o\"\"pen")
    assert select.is_keyword and select.upper == "SELECT"
    assert string.value == "it's" and open_.value == 'o"pen'
    assert not tk.tokenize("models")[0].is_keyword


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_scan_never_fails_and_covers_the_text(text: str) -> None:
    tokens = list(tk.scan(text))
    assert "".join(t.text for t in tokens) == text
    assert all(t.text == text[t.start : t.end] for t in tokens)


@pytest.mark.parametrize("case", VALID, ids=lambda c: f"L{c.line}")
def test_the_grammar_reads_the_tokens_the_tokenizer_finds(case: object) -> None:
    text = case.text  # type: ignore[attr-defined]
    for token in tk.tokenize(text):
        assert token.kind not in (tk.Kind.OPEN, tk.Kind.BAD_NUMBER), token
        if token.kind is tk.Kind.NUMBER:
            parse_number(token.text)


def test_statement_start_skips_semicolons_in_strings_and_comments() -> None:
    text = "SELECT 1; PRINT 'a;b' -- c;\n; SEL"
    assert text[tk.statement_start(text) :] == " SEL"
    assert tk.skip_trivia(text, 8, semicolons=True) == text.index("PRINT")


def test_invalid_fixtures_are_located_at_token_starts() -> None:
    """A diagnostic's caret sits where the tokenizer starts a token (or past the end)."""
    for case in INVALID:
        lines = case.text.split("\n")
        for want in case.diagnostics:
            offset = sum(len(ln) + 1 for ln in lines[: want.line - 1]) + want.column - 1
            starts = {t.start for t in tk.scan(case.text)} | {len(case.text)}
            assert offset in starts, (case.line, want)


#: Modules that read SHiFT-QL text; only shift/ql/tokens.py may define how it splits.
READERS = [
    "shift/ql/parser.py",
    "shift/ql/diagnostics.py",
    "shift/ql/limits.py",
    "shift/ql/expect.py",
    "repl/lexing.py",
    "repl/highlight.py",
    "repl/completer.py",
]


@pytest.mark.parametrize("path", READERS)
def test_no_second_lexer(path: str) -> None:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "re" not in imported, f"{path} tokenizes text itself; use shift.ql.tokens"
    assert "pygments.lexer" not in imported or path == "repl/highlight.py"
    keywords = set(tk.KEYWORDS)
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            words = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            listed = [w for w in words if isinstance(w, str) and w in keywords]
            assert len(listed) < 3, f"{path} keeps its own keyword list: {listed}"
