"""Every statement handler, registered by importing the modules that define them.

:func:`execute` here is :func:`broker.statements.execute` with every family loaded; the
query service calls it.
"""

from __future__ import annotations

from broker import (
    catalog_statements,
    entry_statements,
    explain,
    finetunes,
    rank_statements,
    registry_statements,
    search_statements,
    session_statements,
    vectors,
)
from broker.statements import execute

MODULES = (
    catalog_statements,
    search_statements,
    rank_statements,
    entry_statements,
    session_statements,
    explain,
    vectors,
    finetunes,
    registry_statements,
)
"""The modules whose ``@handles`` and ``@explains`` functions are registered."""

__all__ = ["MODULES", "execute"]
