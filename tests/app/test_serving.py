"""Serving many sessions from one process: the result cache's byte budget, and settings that really apply."""

from __future__ import annotations

import threading
import time
import tomllib
from dataclasses import dataclass

import torch
from streamlit import config as st_config

from dynmask_app.server.result_cache import ByteLRU, SharedResult, model_nbytes, nbytes
from dynmask_app.server.serving import load_policy
from tests import ROOT

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
    cache = ByteLRU(budget=100 * MB)
    for i in range(5):
        cache.get_or_compute(f"r{i}", lambda: _Result.of(40))
        assert cache.used <= 100 * MB
    assert len(cache) == 2 and cache.get("r4") is not None and cache.get("r0") is None
    cache.get("r3")  # used recently: survives the next insertion
    cache.get_or_compute("r5", lambda: _Result.of(40))
    assert cache.get("r3") is not None and cache.get("r4") is None
    huge = cache.get_or_compute("huge", lambda: _Result.of(200))  # larger than the budget: returned, not kept
    assert nbytes(huge) == 200 * MB and cache.get("huge") is None and cache.used <= 100 * MB


def _in_a_script_run(cache: ByteLRU, key: str, mb: int, hold: threading.Event, got: threading.Event) -> None:
    """A stand-in for a Streamlit script run: fetches (pinned to its thread) and keeps drawing until told to end."""
    cache.get_or_compute(key, lambda: _Result.of(mb), pin=True)
    got.set()
    hold.wait(10)


def test_a_result_a_script_run_is_drawing_is_kept_until_the_run_ends() -> None:
    cache = ByteLRU(budget=100 * MB)
    hold, got = threading.Event(), threading.Event()
    run = threading.Thread(target=_in_a_script_run, args=(cache, "drawn", 60, hold, got))
    run.start()
    got.wait(10)
    cache.get_or_compute("other", lambda: _Result.of(60))  # over budget: the drawn one is pinned, this one goes
    assert "drawn" in cache and "other" not in cache
    hold.set()
    run.join()
    cache.get_or_compute("third", lambda: _Result.of(60))  # the run has ended: its result is an LRU entry again
    assert "drawn" not in cache and "third" in cache and cache.used <= 100 * MB


def test_room_is_made_before_computing_past_the_budget() -> None:
    cache = ByteLRU(budget=100 * MB)
    for i in range(2):
        cache.get_or_compute(f"r{i}", lambda: _Result.of(40))
    with cache.room_for(50 * MB):  # 80 + 50 > 100: the oldest goes before the new result exists
        assert cache.keys() == ["r1"]
        cache.put("r2", _Result.of(50))  # the value takes its reservation's place
    assert cache.keys() == ["r1", "r2"] and cache.used <= 100 * MB


def test_a_computation_waits_while_other_runs_draw_and_goes_on_when_they_end() -> None:
    cache = ByteLRU(budget=100 * MB)
    hold, got = threading.Event(), threading.Event()
    drawing = threading.Thread(target=_in_a_script_run, args=(cache, "drawn", 70, hold, got))
    drawing.start()
    got.wait(10)
    entered = threading.Event()

    def compute_next() -> None:
        with cache.room_for(60 * MB):  # 70 drawn + 60 > 100: waits for the drawing run
            entered.set()

    waiting = threading.Thread(target=compute_next)
    waiting.start()
    assert not entered.wait(0.6), "computed past the budget while another run was drawing"
    hold.set()
    drawing.join()
    assert entered.wait(5), "still waiting after the drawing run ended"
    waiting.join()
    assert "drawn" not in cache  # evicted for the new computation


def test_a_run_holding_a_result_is_never_stuck_waiting_for_room() -> None:
    """A page computing its second side goes ahead (past the budget) instead of waiting on others."""
    cache = ByteLRU(budget=100 * MB)
    hold, got = threading.Event(), threading.Event()
    other = threading.Thread(target=_in_a_script_run, args=(cache, "other", 50, hold, got))
    other.start()
    got.wait(10)
    done = threading.Event()

    def two_sides() -> None:
        cache.get_or_compute("side a", lambda: _Result.of(40), pin=True)
        with cache.room_for(40 * MB):  # 50 + 40 + 40 > 100, but this run holds side a: no waiting
            done.set()

    page = threading.Thread(target=two_sides)
    page.start()
    assert done.wait(5)
    hold.set()
    other.join()
    page.join()


def test_models_are_kept_within_their_byte_budget_newest_first() -> None:
    sizes = []
    cache = ByteLRU(budget=10 * MB, sizeof=model_nbytes, keep_newest=True)
    for name, mb in (("small", 4), ("medium", 5), ("big", 12)):
        model = torch.nn.Linear(mb * MB // 4, 1, bias=False)
        sizes.append(model_nbytes(model))
        cache.get_or_compute(name, lambda model=model: model)
    assert sizes == [4 * MB, 5 * MB, 12 * MB]
    assert cache.keys() == ["big"]  # past the budget alone, but the newest model stays (it is about to be used)
    tied = torch.nn.Embedding(1000, 256)
    twice = torch.nn.ModuleDict({"a": tied, "b": tied})
    assert model_nbytes(twice) == 1000 * 256 * 4  # shared weights counted once


def test_a_session_handle_does_not_keep_the_result_alive() -> None:
    import gc
    import weakref

    cache = ByteLRU(budget=100 * MB)
    computed = []

    def fetch() -> _Result:
        return cache.get_or_compute("k", lambda: computed.append(1) or _Result.of(10))

    handle = SharedResult("k", fetch)
    seen = weakref.ref(handle.resolve())
    assert handle.attention.numel() == 10 * MB // 4 and len(computed) == 1  # one fetch per script run
    cache.clear()
    gc.collect()
    assert seen() is None, "the handle kept a dropped result alive"
    assert handle.attention.numel() == 10 * MB // 4 and len(computed) == 2  # recomputed when needed again


def test_one_recipe_asked_at_once_is_computed_once() -> None:
    cache, calls = ByteLRU(budget=10 * MB), []

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


def test_budgets_from_the_policy_and_the_environment() -> None:
    policy = load_policy({"DYNMASK_RESULT_BUDGET_MB": "64", "DYNMASK_MODEL_BUDGET_MB": "512",
                          "DYNMASK_PARALLEL_RUNS": "1"})
    assert (policy.result_budget, policy.model_budget, policy.parallel_runs) == (64 * MB, 512 * MB, 1)
    assert ("Memory for results (all sessions)", "64 MB") in policy.rows()
    shipped = load_policy({})
    assert (shipped.result_budget, shipped.model_budget, shipped.parallel_runs) == (1024 * MB, 2048 * MB, 2)
    for bad in ({"DYNMASK_RESULT_BUDGET_MB": "lots"}, {"DYNMASK_PARALLEL_RUNS": "0"},
                {"DYNMASK_MODEL_BUDGET_MB": "-1"}):
        try:
            load_policy(bad)
        except ValueError as err:
            assert "serving policy" in str(err)
        else:
            raise AssertionError(f"{bad} was accepted")
