"""Session statements: ``DECLARE``, ``PRINT`` and ``USE``."""

from __future__ import annotations

from broker.context import Context
from broker.results import Result, Table
from broker.sources import variable
from broker.statements import execute, handles
from shift.errors import SchedulerError
from shift.ql import nodes as n


@handles(n.Declare)
async def run_declare(statement: n.Declare, ctx: Context) -> Result:
    """DECLARE name AS query: bind the names of the query's rows."""
    result = await execute(statement.query, ctx)
    names = list(dict.fromkeys(result.names))
    await ctx.session.declare(statement.name, names)
    message = f"{statement.name} = [{', '.join(names)}]"
    return Result(result.tables, message, tuple(names))


@handles(n.Print)
async def run_print(statement: n.Print, ctx: Context) -> Result:
    """PRINT name or PRINT *."""
    if statement.name is None:
        rows = [{"variable": k, "names": ", ".join(v)} for k, v in sorted(ctx.variables.items())]
        return Result(
            (Table.of("variables", ["variable", "names"], rows),), f"{len(rows)} variable(s)"
        )
    names = variable(ctx, statement.name)
    rows = [{"name": name} for name in names]
    return Result(
        (Table.of(statement.name, ["name"], rows),), f"{len(names)} name(s)", tuple(names)
    )


@handles(n.Use)
async def run_use(statement: n.Use, ctx: Context) -> Result:
    """USE is the client's business."""
    raise SchedulerError("USE is handled by the client (it changes which broker it talks to)")
