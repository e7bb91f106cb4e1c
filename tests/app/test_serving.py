"""Serving many sessions from one process: the result cache's byte budget, and settings that really apply."""

from __future__ import annotations

import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import torch
from streamlit import config as st_config

from dynmask_app.result_cache import ResultCache, budget_from_env, nbytes

ROOT = Path(__file__).resolve().parents[2]
MB = 2**20


@dataclass
class _Result:
    attention: torch.Tensor

    @classmethod
    def of(cls, mb: int) -> _Result:
        return cls(torch.zeros(mb * MB // 4, dtype=torch.float32))


def test_every_streamlit_setting_is_a_real_option_that_applies() -> None:
    """A setting Streamlit does not know, or one that bounds a cache the app does not use, promises what it does not
    do (``maxCacheDataSize`` bounds ``st.cache_data`` only; results live in the byte-budget cache)."""
    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text("utf-8"))
    known = set(st_config._config_options_template)
    options = {f"{section}.{key}" for section, values in settings.items() for key in values}
    assert options <= known, options - known
    uses_cache_data = any("cache_data" in p.read_text("utf-8") for p in (ROOT / "dynmask_app").glob("*.py"))
    if not uses_cache_data:
        assert not {o for o in options if "CacheData" in o}, "a cache_data limit, but the app uses no st.cache_data"


def test_results_are_evicted_past_the_byte_budget() -> None:
    cache = ResultCache(budget=100 * MB)
    for i in range(5):
        cache.get_or_compute(f"r{i}", lambda: _Result.of(40))
        assert cache.used <= 100 * MB
    assert len(cache) == 2 and cache.get("r4") is not None and cache.get("r0") is None
    cache.get("r3")  # used recently: survives the next insertion
    cache.get_or_compute("r5", lambda: _Result.of(40))
    assert cache.get("r3") is not None and cache.get("r4") is None
    huge = cache.get_or_compute("huge", lambda: _Result.of(200))  # larger than the budget: returned, not kept
    assert nbytes(huge) == 200 * MB and cache.get("huge") is None and cache.used <= 100 * MB


def test_one_recipe_asked_at_once_is_computed_once() -> None:
    cache, calls = ResultCache(budget=10 * MB), []

    def compute() -> _Result:
        calls.append(1)
        time.sleep(0.2)
        return _Result.of(1)

    threads = [threading.Thread(target=cache.get_or_compute, args=("same", compute)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1


def test_budget_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DYNMASK_RESULT_BUDGET_MB", "64")
    assert budget_from_env() == 64 * MB
    monkeypatch.setenv("DYNMASK_RESULT_BUDGET_MB", "lots")
    assert budget_from_env() == 1024 * MB
