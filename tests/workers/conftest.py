"""Shared fixtures of the worker tests: offline hub settings and one model cache per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def models():
    """A model cache shared by the whole test session (each zoo model loads once)."""
    from workers.models import ModelCache

    return ModelCache(capacity=8)
