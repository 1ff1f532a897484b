"""Fixtures for the broker and worker integration tests (see ``broker_helpers``)."""

from broker_helpers import http, processes

__all__ = ["http", "processes"]
