"""A real broker with two workers for the REPL's terminal tests (the search tests' helpers)."""

from __future__ import annotations

from tests.search.conftest import ROOT, Cluster, cluster

__all__ = ["ROOT", "Cluster", "cluster"]
