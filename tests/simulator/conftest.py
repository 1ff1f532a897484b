"""Fixtures of the simulator tests (the sample records live in :mod:`tests.simulator.sample`)."""

from tests.simulator.sample import make_csv, small_csv

__all__ = ["make_csv", "small_csv"]
