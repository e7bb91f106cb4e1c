"""Shared fixtures of the app tests: offline Hub, the repo root as working directory, a loaded MiniLM."""

from __future__ import annotations

import os
import tempfile

import pytest

from tests import ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# the tests load tiny models saved to temporary folders: this server's policy allows those (and nothing else)
os.environ.setdefault("DYNMASK_ALLOW_MODELS", f"{tempfile.gettempdir()}/*")


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """AppTest resolves ``app.py`` and ``pages/`` from the working directory."""
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="session")
def minilm():
    """The bundled MiniLM, loaded once for direct core runs."""
    from dynmask_core import load

    return load("minilm")
