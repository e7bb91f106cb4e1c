"""Shared helpers for the real-browser tests and ``bench/app_latency.py``: start the app, launch Debian's
chromium through Playwright, wait for a Streamlit run to finish.

Playwright is imported lazily so that collecting this module (``--doctest-modules``) never needs it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tests import ROOT

#: The page has finished its run: connected, script not running (initial -> running -> notRunning).
IDLE = ('[data-testid="stApp"][data-test-connection-state="CONNECTED"]'
        '[data-test-script-state="notRunning"]')
EXCEPTION = '[data-testid="stException"]'
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamlit_command(port: int) -> list[str]:
    """The command that serves the app on ``port`` (headless, no telemetry): ``serve.py``, as deployed."""
    return [sys.executable, "-m", "streamlit", "run", str(ROOT / "serve.py"), "--server.headless", "true",
            "--server.port", str(port), "--browser.gatherUsageStats", "false"]


def _health(url: str) -> str:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
            return r.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


@contextmanager
def app_server(timeout: float = 90.0, log_path: Path | None = None) -> Iterator[str]:
    """Serves the app in its own process group with ``HF_HUB_OFFLINE=1``; yields ``http://127.0.0.1:<port>``.

    The whole process group is killed on exit. Raises ``RuntimeError`` (with the log's tail) when
    ``/_stcore/health`` does not answer ``ok`` within ``timeout`` seconds.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"dynmask-e2e-streamlit-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(streamlit_command(port), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while _health(url) != "ok":
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = log_path.read_text("utf-8", "replace")[-3000:]
                why = f"exited with {proc.returncode}" if proc.poll() is not None else f"not healthy in {timeout:.0f} s"
                raise RuntimeError(f"streamlit {why}; log {log_path}:\n{tail}")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        log.close()


def browser_problem() -> str | None:
    """Why a real browser cannot run here (None when it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as err:
        return f"the playwright package is not installed ({err})"
    if not shutil.which("chromium"):
        return "Debian's chromium is not on PATH (apt-get install chromium; never `playwright install`)"
    return None


def launch(playwright: Any) -> Any:
    """Headless Debian chromium."""
    return playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)


#: Installed in every page (``context.add_init_script``): counts the script runs the page has seen start, so a
#: wait can tell "the run I triggered has finished" from "the previous run had finished".
TRACK_RUNS = """(() => {
  window.__dmRuns = 0;
  new MutationObserver(records => {
    for (const r of records) {
      if (r.target.getAttribute('data-test-script-state') === 'running' && r.oldValue !== 'running') {
        window.__dmRuns += 1;
      }
    }
  }).observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                        attributeFilter: ['data-test-script-state']});
})();"""


def new_context(browser: Any, **options: Any) -> Any:
    """A fresh browser context (own cookies, cache, Streamlit session) whose pages count their script runs."""
    ctx = browser.new_context(viewport=VIEWPORT, **options)
    ctx.add_init_script(TRACK_RUNS)
    return ctx


def runs_started(page: Any) -> int | None:
    """How many script runs the page has seen start (None without :data:`TRACK_RUNS`)."""
    return page.evaluate("() => (typeof window.__dmRuns === 'number') ? window.__dmRuns : null")


def wait_idle(page: Any, timeout: float = 120.0, since: int | None = None, settle_ms: int = 600) -> None:
    """Waits until the Streamlit run triggered just before has finished.

    With ``since`` (``runs_started(page)`` taken *before* the action), waits for a run that started after it (up
    to 10 s; an action that triggered none falls through) and then for the idle state. Without it, a short
    initial wait (``settle_ms``) first, so that the selector does not match the *previous* idle state before the
    rerun has even started (a rerun starts ~0.1-0.5 s after a click). Either way, a last short pause lets React
    commit the final elements (they appear ~50 ms after the state flips to notRunning).
    """
    if since is not None:
        with suppress(Exception):  # no rerun started: nothing to wait for but the idle state
            page.wait_for_function("n => window.__dmRuns > n", arg=since, timeout=10_000)
    else:
        page.wait_for_timeout(settle_ms)
    page.wait_for_selector(IDLE, timeout=timeout * 1000)
    page.wait_for_timeout(150)


def wait_charts(page: Any, count: int, timeout: float = 60.0) -> int:
    """Waits until at least ``count`` plotly charts have drawn their SVG (plotly.js loads after the run ends)."""
    page.wait_for_function(
        """n => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"]'))
                 .filter(c => c.querySelector('.main-svg')).length >= n""",
        arg=count, timeout=timeout * 1000)
    return page.get_by_test_id("stPlotlyChart").count()


def open_app(page: Any, url: str, timeout: float = 120.0) -> None:
    """Opens ``url`` and waits for the first run to finish."""
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    wait_idle(page, timeout, since=0 if runs_started(page) is not None else None)


def set_text(page: Any, text: str) -> None:
    """Types ``text`` into the sidebar's text area and commits it (blur), then waits for the sidebar rerun."""
    box = page.get_by_role("textbox", name="Text", exact=True)
    box.fill(text)
    since = runs_started(page)
    box.press("Control+Enter")
    wait_idle(page, since=since)


def pick(page: Any, label: str, option: str) -> None:
    """Chooses ``option`` (its shown text) in the selectbox labelled ``label`` (scrolled into view first: a click
    that has to scroll the sidebar closes the dropdown it opens)."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box.click()
    since = runs_started(page)
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page, since=since)


def click_run(page: Any, timeout: float = 120.0) -> None:
    """Presses the sidebar's Run button and waits for the whole-app rerun it triggers."""
    since = runs_started(page)
    page.get_by_role("button", name="Run", exact=True).click()
    wait_idle(page, timeout, since=since)


def server_pid(port: int) -> int:
    """The Streamlit process serving ``port`` (found by its command line), to read its CPU time and memory."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"streamlit" in b" ".join(cmd) and str(port).encode() in cmd:
                return int(entry.name)
    raise RuntimeError(f"no streamlit process serves port {port}")


def output_numbers(page) -> dict[str, str]:
    """The output section's metrics (label -> shown value) and the seed caption's number."""
    out = {}
    for metric in page.get_by_test_id("stMetric").all():
        label = metric.get_by_test_id("stMetricLabel").inner_text().strip()
        out[label] = metric.get_by_test_id("stMetricValue").inner_text().strip()
    seed = page.get_by_text(re.compile(r"^Seed used: \d+")).first.inner_text()
    out["seed"] = re.match(r"Seed used: (\d+)", seed).group(1)
    return out


def mask_data(page) -> str:
    """The drawn mask heatmap's cells (layer/head shown), as the browser's plotly holds them."""
    return page.evaluate("""() => { const g = document.querySelector('.st-key-mask_fig .js-plotly-plot');
        return JSON.stringify(g.data[0].z); }""")
