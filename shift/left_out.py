"""The one line a statement's message gives for the catalog rows it left out.

A search over ``FROM models`` may skip models whose registration failed and models of
another modality than the data. Naming each (or repeating each failure's error) buries the
answer under the pool's history, so the message says it once: how many rows were left out
for each reason, and the catalog query that lists them with their ``status`` and ``error``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shift.ql import nodes as n
from shift.ql.render import render


def left_out_note(
    what: str,
    source: n.Source,
    where: n.Condition | None,
    other_than: n.Source | None,
    failed: Sequence[str],
    other_modality: Mapping[str, Sequence[str]],
    data_modality: str | None,
) -> str | None:
    """``left out N model(s): a failed to load, b vision (text data); list them: SELECT ...``.

    Args:
        what: ``model`` or ``dataset`` (the rows' kind).
        source: The statement's FROM (the listing query reads the same).
        where: The statement's WHERE over the pool (kept in the listing query).
        other_than: The statement's OTHER THAN (kept too).
        failed: Rows left out because their registration failed.
        other_modality: Rows left out for their modality, by that modality.
        data_modality: The modality of the statement's data (``None``: not known).

    Returns:
        The note, or ``None`` when nothing was left out.
    """
    count = len(failed) + sum(len(names) for names in other_modality.values())
    if not count:
        return None
    reasons = []
    if failed:
        verb = "failed to load" if what == "model" else "could not be read"
        reasons.append(f"{len(failed)} {verb}")
    data = f" ({data_modality} data)" if data_modality else ""
    reasons += [f"{len(names)} {m}{data}" for m, names in sorted(other_modality.items()) if names]
    because: list[n.Condition] = []
    if failed:
        because.append(n.Compare(n.Name("status"), n.CmpOp.EQ, n.Value("failed")))
    if data_modality and any(other_modality.values()):
        because.append(n.Compare(n.Name("modality"), n.CmpOp.NE, n.Value(data_modality)))
    reason: n.Condition | None = because[0] if len(because) == 1 else n.Or(tuple(because))
    if not because:
        reason = None
    listing = n.Select(
        tuple(n.Name(c) for c in ("name", "modality", "status", "error")),
        source,
        _both(where, reason),
        (),
        None,
        other_than,
    )
    return f"left out {count} {what}(s): {', '.join(reasons)}; list them: {render(listing)}"


def _both(first: n.Condition | None, second: n.Condition | None) -> n.Condition | None:
    """``first AND second`` (flattened), or whichever is given."""
    if first is None or second is None:
        return first or second
    parts = first.operands if isinstance(first, n.And) else (first,)
    return n.And((*parts, second))
