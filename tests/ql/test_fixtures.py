"""Fixture-table tests for SHiFT-QL: every valid form and every error message.

``tests/fixtures/ql_valid.txt`` holds valid statements with their canonical rendering;
``tests/fixtures/ql_invalid.txt`` holds invalid statements with the located diagnostics
they must produce. The file formats are described at the top of each file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shift.errors import QueryError
from shift.ql import dumps, from_json, parse, parse_script, render

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


# ------------------------------------------------------------------------ fixture readers


@dataclass
class ValidCase:
    line: int
    text: str
    expected: str
    notes: list[str] = field(default_factory=list)


@dataclass
class Expected:
    line: int
    column: int
    message: str
    hint: str | None = None


@dataclass
class InvalidCase:
    line: int
    text: str
    diagnostics: list[Expected] = field(default_factory=list)


def _blocks(path: Path) -> list[tuple[int, list[str]]]:
    """Split a fixture file into blank-line separated blocks, with 1-based start lines."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            if current:
                blocks.append((start, current))
            current = []
            continue
        if not current:
            start = number
        current.append(line)
    if current:
        blocks.append((start, current))
    return blocks


def load_valid(path: Path = FIXTURES / "ql_valid.txt") -> list[ValidCase]:
    cases = []
    for start, lines in _blocks(path):
        notes = [ln[2:].strip() for ln in lines if ln.startswith(";;")]
        body = [ln for ln in lines if not ln.startswith(";;")]
        if not body:
            continue  # a comment-only block
        assert body[-1].startswith("=> "), f"{path.name}:{start}: case must end with '=> '"
        text = "\n".join(body[:-1])
        assert text.strip(), f"{path.name}:{start}: empty statement"
        cases.append(ValidCase(start, text, body[-1][3:], notes))
    return cases


def load_invalid(path: Path = FIXTURES / "ql_invalid.txt") -> list[InvalidCase]:
    cases = []
    for start, lines in _blocks(path):
        body = [ln for ln in lines if not ln.startswith(";;")]
        if not body:
            continue
        text_lines: list[str] = []
        expected: list[Expected] = []
        for ln in body:
            if ln.startswith("!! "):
                where, _, message = ln[3:].partition(" ")
                line_no, _, col = where.partition(":")
                expected.append(Expected(int(line_no), int(col), message))
            elif ln.startswith("?? "):
                assert expected, f"{path.name}:{start}: '??' before any '!!'"
                expected[-1].hint = ln[3:]
            else:
                assert not expected, f"{path.name}:{start}: statement text after '!!'"
                text_lines.append(ln)
        assert expected, f"{path.name}:{start}: case has no '!!' line"
        cases.append(InvalidCase(start, "\n".join(text_lines), expected))
    return cases


VALID = load_valid()
INVALID = load_invalid()


def _id(case: ValidCase | InvalidCase) -> str:
    return f"L{case.line}"


# --------------------------------------------------------------------------- valid cases


def test_fixture_sizes() -> None:
    assert len(VALID) >= 220
    assert len(INVALID) >= 70


def test_valid_cases_are_distinct() -> None:
    texts = [c.text for c in VALID]
    assert len(texts) == len(set(texts))


@pytest.mark.parametrize("case", VALID, ids=_id)
def test_valid(case: ValidCase) -> None:
    script = parse_script(case.text)
    statements = script.statements
    assert statements, "a valid case must hold at least one statement"
    rendered = " ; ".join(render(s) for s in statements)
    assert rendered == case.expected
    if len(statements) == 1:
        assert parse(case.text) == statements[0]
    for statement in statements:
        text = render(statement)
        assert "\n" not in text
        # the canonical text is a fixed point and parses back to an equal tree
        again = parse(text)
        assert again == statement
        assert render(again) == text
        # the JSON form round-trips through the validating decoder
        assert from_json(json.loads(dumps(statement))) == statement
    # the whole script round-trips too
    assert parse_script(render(script)) == script
    assert from_json(json.loads(dumps(script))) == script


# ------------------------------------------------------------------------- invalid cases


@pytest.mark.parametrize("case", INVALID, ids=_id)
def test_invalid(case: InvalidCase) -> None:
    with pytest.raises(QueryError) as caught:
        parse_script(case.text)
    diagnostics = caught.value.diagnostics
    if len(case.diagnostics) > 1:
        assert len(diagnostics) == len(case.diagnostics), str(caught.value)
    else:
        assert diagnostics, "a QueryError must carry a diagnostic"
    for want, got in zip(case.diagnostics, diagnostics, strict=False):
        assert (got.line, got.column) == (want.line, want.column), got.render()
        assert want.message.lower() in got.message.lower(), got.render()
        if want.hint is not None:
            assert want.hint.lower() in got.hint.lower(), got.render()
        assert got.snippet, "a located diagnostic shows the source line with a caret"
        assert "^" in got.snippet


@pytest.mark.parametrize("case", INVALID, ids=_id)
def test_invalid_single_statement_parse(case: InvalidCase) -> None:
    """parse() raises QueryError too (never another exception)."""
    with pytest.raises(QueryError):
        parse(case.text)
