"""shift: a search engine for transfer learning.

This package is the shared pure core (query language, protocol, specs, state machines,
settings). It imports nothing from ``broker``, ``workers``, ``repl`` or ``simulator``, and
never zmq, aiohttp or torch.
"""

from shift.errors import (
    CatalogError,
    ProtocolError,
    QueryError,
    SchedulerError,
    ShiftError,
    WorkerError,
)

__version__ = "0.1.0"

__all__ = [
    "CatalogError",
    "ProtocolError",
    "QueryError",
    "SchedulerError",
    "ShiftError",
    "WorkerError",
    "__version__",
]
