"""A class of twenty on twenty different long links: the server's memory stays within its result budget.

Each 512-token SmolLM2 result holds ~0.7 GB of masks and attention (30 layers x 9 heads x 512 x 512, both runs);
twenty of them would be 14 GB. The server runs with a 1.5 GB result budget, and its resident memory, sampled the
whole time, must stay under the budget plus what it held with the model loaded (measured after one long run, less
that run's result, which the budget then holds), plus DRAWING: building and sending the pages' 512 x 512 heatmaps
(~1.4 MB of JSON each) for a wave of sessions, which no result budget covers (measured: 130 to 200 MB over the
budget on this machine; without the budget the same run reached 4.3 GB over the floor). The twenty sessions open in
waves of five and all stay open: twenty browsers drawing at once on this machine's two cores would starve the
server they measure.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from dynmask_app.state import AppState
from dynmask_core.recipe import MAX_URL_TEXT
from tests.e2e.harness import EXCEPTION, app_server, new_context, server_pid

BUDGET_MB = 1500
SESSIONS = 20
WAVE = 5
DRAWING_MB = 256
DONE = """() => document.querySelectorAll('[data-testid="stPlotlyChart"] .main-svg').length >= 2
               && document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]')"""


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _link(text: str, seed: int) -> str:
    state = AppState(page="playground", model="smollm2", strategy="random_dynamic", input_kind="text",
                     input_ref=text, seed=seed)
    return "/?" + urlencode(state.to_query_params())


def _long_text(seed: int) -> str:
    """900 Chinese characters (a link carries up to 1,000): SmolLM2's tokenizer makes them well over 512 tokens."""
    chars = "注意力掩码让模型只看到允许的位置老师和学生一起观察每一层每一个头的变化"
    rng = random.Random(seed)
    text = "".join(rng.choice(chars) for _ in range(900))
    assert len(text) <= MAX_URL_TEXT
    return text


# A hang guard, not a speed check: four waves of five 512-token SmolLM2 sessions took 130 s a wave at bb2721e and
# 151 s now (measured 2026-12-07 on this 2-core machine, model load in the first), so the whole test passes the
# suite's 600 s default.
@pytest.mark.timeout(1500)
def test_twenty_long_links_at_once_stay_within_the_result_budget(browser, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DYNMASK_RESULT_BUDGET_MB", str(BUDGET_MB))
    with app_server(timeout=120, log_path=tmp_path / "streamlit.log") as url:
        pid = server_pid(int(url.rsplit(":", 1)[1]))
        warm = new_context(browser).new_page()
        warm.goto(url + _link(_long_text(-1), 1))
        warm.wait_for_function(DONE, timeout=600_000, polling=500)
        warm.context.close()
        one_result = 30 * 9 * 512 * 512 * (4 + 4 + 1 + 1)  # its masks and attention, both runs (now in the cache)
        floor = _rss_mb(pid) - one_result / 2**20  # Python, Streamlit, torch, the model, a long run's buffers

        peak, stop = [0.0], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak.append(_rss_mb(pid))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        pages = []
        try:
            for wave in range(0, SESSIONS, WAVE):
                opened = []
                for i in range(wave, wave + WAVE):
                    page = new_context(browser).new_page()
                    page.goto(url + _link(_long_text(i), 100 + i), wait_until="commit")
                    opened.append(page)
                for page in opened:
                    page.wait_for_function(DONE, timeout=600_000, polling=1000)
                    assert page.locator(EXCEPTION).count() == 0
                    assert "512 tokens" in page.inner_text("body")
                pages += opened
        finally:
            stop.set()
            sampler.join()
            for page in pages:
                page.context.close()
        top = max(peak)
        print(f"server resident memory: {floor:.0f} MB with the model (less a result), peak {top:.0f} MB over "
              f"{SESSIONS} sessions: {top - floor - BUDGET_MB:+.0f} MB against the {BUDGET_MB} MB budget")
        assert top <= floor + BUDGET_MB + DRAWING_MB, \
            f"peak {top:.0f} MB > {floor:.0f} MB + the {BUDGET_MB} MB budget + {DRAWING_MB} MB for drawing"
