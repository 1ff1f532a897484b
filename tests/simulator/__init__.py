"""Tests of the simulator: records cleaning, strategies, replay and ``shift simulate``."""
