"""A long text in the app, as a teacher would run it: the figures of docs/PERFORMANCE.md's "In the app" table.

Starts the app (``serve.py``), opens the Playground in headless Chromium on SmolLM2 with a sliding window, picks the
example *Long text*, sets *Tokens to read* and presses Run; then a second strategy on the same text (its baseline
pass is shared), and a zoom window of one head at full resolution. Prints, for each step, the wall time from the
click to the drawn chart, and the server process's resident memory (now and its peak) and CPU seconds.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/long_app.py --tokens 8192
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dynmask_core.samples import LONG_EXAMPLE  # noqa: E402
from tests.e2e.harness import (  # noqa: E402
    EXCEPTION,
    app_server,
    launch,
    new_context,
    open_app,
    pick,
    runs_started,
    server_pid,
    wait_idle,
)


def _server(pid: int) -> tuple[float, float, float]:
    """(resident MB, peak resident MB, CPU seconds) of the server process."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    ticks = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(ticks[11]) + int(ticks[12])) / 100
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024, cpu


def _timed(page, what: str, click, selector: str, pid: int, timeout: float = 1800) -> float:
    before = _server(pid)[2]
    start, since = time.perf_counter(), runs_started(page)
    click()
    wait_idle(page, timeout, since=since)
    page.wait_for_selector(selector, timeout=timeout * 1000)
    rss, peak, cpu = _server(pid)
    errors = page.locator(EXCEPTION).count()
    seconds = time.perf_counter() - start
    print(f"{what:<44} {seconds:8.1f} s   server CPU {cpu - before:7.1f} s   "
          f"RSS {rss:6.0f} MB (peak {peak:6.0f} MB){'   EXCEPTION' if errors else ''}", flush=True)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=8192, help="Tokens to read (default 8192)")
    parser.add_argument("--radius", type=int, default=64, help="the sliding window's radius (default 64)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with app_server(timeout=180) as url, sync_playwright() as pw:
        pid = server_pid(int(url.rsplit(":", 1)[1].split("/")[0]))
        browser = launch(pw)
        page = new_context(browser).new_page()
        open_app(page, f"{url}/?v=2&input=text&model=smollm2&s=sliding_window&p.radius={args.radius}")
        pick(page, "Example sentences", LONG_EXAMPLE)
        counted = page.locator(".st-key-token_count").inner_text() if page.locator(".st-key-token_count").count() \
            else "(no count shown)"
        print(f"text: {counted.strip()}")
        box = page.get_by_role("spinbutton", name="Tokens to read")
        box.fill(str(args.tokens))
        since = runs_started(page)
        box.press("Enter")
        wait_idle(page, since=since)
        rss, peak, _ = _server(pid)
        print(f"server before the run: RSS {rss:.0f} MB (peak {peak:.0f} MB)")
        run = page.get_by_role("button", name="Run", exact=True)
        first = _timed(page, f"Run, sliding_window r={args.radius}, {args.tokens} tokens", run.click,
                       ".st-key-mask_fig .main-svg", pid)
        pick(page, "Mask strategy", "Dilated window · static")
        second = _timed(page, "Run, dilated window (baseline pass shared)", run.click, ".st-key-mask_fig .main-svg",
                        pid)
        page.get_by_role("tab", name="Zoom (full resolution)", exact=True).click()
        wait_idle(page)
        button = page.get_by_role("button", name="Compute rows", exact=False)
        zoom = _timed(page, "Zoom: layer 0, head 0, rows 0-127", button.click, ".st-key-zoom_fig .main-svg", pid)
        print(f"ratios to the first Run: second strategy {second / first:.2f}x, zoom {zoom / first:.3f}x")
        kept = page.get_by_test_id("stMain").inner_text()
        line = next((s for s in kept.splitlines() if "past the usual 512" in s), "")
        print(line.strip())
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
