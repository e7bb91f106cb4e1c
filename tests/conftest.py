"""Shared fixtures: the bundled models are loaded once per test session; tests run offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def minilm():
    from dynmask_core.models import load

    return load("minilm", device="cpu")


@pytest.fixture(scope="session")
def smollm2():
    from dynmask_core.models import load

    return load("smollm2", device="cpu")
