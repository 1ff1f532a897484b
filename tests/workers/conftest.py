"""Shared fixtures of the worker tests: offline hub settings and one model cache per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def models():
    """The process's model cache, widened so each zoo model loads once per test session."""
    from workers.models import MODEL_CACHE

    MODEL_CACHE.capacity = 8
    return MODEL_CACHE


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory):
    """A feature store shared by the task tests of one session."""
    return str(tmp_path_factory.mktemp("features"))
