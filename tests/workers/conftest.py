"""Shared fixtures of the worker tests: offline hub settings, data roots and state directory
in the session's temporary folder, and one model cache per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def worker_settings(tmp_path_factory):
    """Data roots and state directory of the in-process worker code: the session's temporary
    folder (tests build their models and datasets there) and a state folder inside it."""
    base = tmp_path_factory.getbasetemp()
    saved = {k: os.environ.get(k) for k in ("SHIFT_DATA_ROOTS", "SHIFT_STATE_DIR")}
    os.environ["SHIFT_DATA_ROOTS"] = str(base)
    os.environ["SHIFT_STATE_DIR"] = str(base / "state")
    yield base
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


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
