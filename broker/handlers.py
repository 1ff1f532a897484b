"""Every statement handler, registered by importing the modules that define them.

Import this module before :func:`broker.statements.execute` runs a statement.
"""

from __future__ import annotations

from broker import explain, finetunes, statements, vectors

MODULES = (statements, explain, vectors, finetunes)
"""The modules whose ``@handles`` and ``@explains`` functions are registered."""
