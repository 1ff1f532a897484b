"""The status lines of ``shift query``: progress while a query runs, the cache line after."""

from __future__ import annotations

import io

import pytest

from repl.runner import _is_terminal, cache_line, progress_line


@pytest.mark.parametrize(
    ("progress", "line"),
    [
        ({"done": 3, "total": 40, "cached": 0}, "3/40 tasks - 1.5 s"),
        ({"done": 12, "total": 40, "cached": 8}, "12/40 tasks (8 from cache) - 1.5 s"),
        ({"done": 0, "total": 0}, "0/0 tasks - 1.5 s"),
    ],
)
def test_progress_line(progress, line):
    assert progress_line(progress, 1.5) == line


@pytest.mark.parametrize(
    ("progress", "line"),
    [
        (
            {"done": 44, "total": 44, "cached": 44},
            "answered from cache (0 tasks run, 44 found done)",
        ),
        ({"done": 44, "total": 44, "cached": 40}, "ran 4 tasks, 40 found done"),
        ({"done": 44, "total": 44, "cached": 43}, "ran 1 task, 43 found done"),
        ({"done": 0, "total": 0, "cached": 0}, ""),
        ({}, ""),
    ],
)
def test_cache_line(progress, line):
    assert cache_line(progress) == line


def test_no_progress_on_a_pipe():
    assert not _is_terminal(io.StringIO())


@pytest.mark.parametrize(
    ("kind", "line"),
    [
        ("task_select", "answered from cache (0 tasks run)"),
        ("rank", "answered from cache (0 tasks run)"),
        ("select", ""),
        ("declare", ""),
    ],
)
def test_a_search_with_no_task_at_all_was_answered_from_stored_results(kind, line):
    assert cache_line({"done": 0, "total": 0, "cached": 0}, kind) == line
