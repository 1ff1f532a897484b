"""The statement registry: which handler runs each SHiFT-QL statement on the broker.

A handler is ``async (statement, ctx) -> Result`` registered for statement node types with
:func:`handles`; it returns a :class:`~broker.results.Result` or raises a
:class:`~shift.errors.ShiftError` that fails the query. Handlers live in one module per
family (:mod:`broker.handlers` imports them all): catalog queries, task-aware search,
RANK, registration and purging, session statements, EXPLAIN, Task2Vec and fine-tuning.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from broker.context import Context
from broker.results import NotSupported, Result
from shift.ql import nodes as n

Handler = Callable[[Any, Context], Awaitable[Result]]
HANDLERS: dict[type, Handler] = {}
"""Statement node type -> handler."""


def handles(*types: type) -> Callable[[Handler], Handler]:
    """Register a handler for statement node types."""

    def register(handler: Handler) -> Handler:
        for t in types:
            HANDLERS[t] = handler
        return handler

    return register


async def execute(statement: n.Statement, ctx: Context) -> Result:
    """Run one statement.

    Raises:
        ShiftError: the query fails (the error says why and, for names, the closest one).
    """
    handler = HANDLERS.get(type(statement))
    if handler is None:
        raise NotSupported(f"{statement.TAG} statements")
    return await handler(statement, ctx)
