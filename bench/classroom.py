"""A class on one link: N headless Chromium sessions open the same link at once, then N different links.

Prints, measured from the server's own process (``/proc/<pid>/stat``, so the browsers' drawing does not count):
the server's CPU seconds per session, the wall time from opening the link to the result drawn (median, max), and
the server's resident memory before and after; plus the ratio of per-session server CPU on the shared link to that
of one session alone on an already computed link (same run). The machine is shared: the load average is printed.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/classroom.py [--n 8] [--model minilm]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import EXCEPTION, app_server, browser_problem, launch, new_context, server_pid  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
READY = """() => document.querySelectorAll('[data-testid="stPlotlyChart"] .main-svg').length >= 2
                 && document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]')"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_all(browser, urls: list[str]) -> list[float]:
    """Opens every URL in its own fresh session at once; seconds from opening to the result drawn, per session."""
    pages, starts = [], []
    for url in urls:
        page = new_context(browser).new_page()
        starts.append(time.perf_counter())
        page.goto(url, wait_until="commit")
        pages.append(page)
    done = []
    for page, t0 in zip(pages, starts):
        page.wait_for_function(READY, timeout=600_000, polling=250)
        done.append(time.perf_counter() - t0)
        if page.locator(EXCEPTION).count():
            raise RuntimeError(f"the app raised: {page.locator(EXCEPTION).first.inner_text()[:300]}")
    for page in pages:
        page.context.close()
    return done


def link(model: str, seed: int, strategy: str = "random_dynamic") -> str:
    return "/?" + urlencode({"v": "2", "model": model, "s": strategy, "seed": str(seed)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="sessions at once")
    parser.add_argument("--model", default="minilm")
    args = parser.parse_args()
    problem = browser_problem()
    if problem:
        sys.exit(f"cannot run: {problem}")
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()[0]
    with app_server(timeout=120) as url, sync_playwright() as pw:
        pid = server_pid(int(url.rsplit(":", 1)[1]))
        browser = launch(pw)
        shared = url + link(args.model, 1)
        open_all(browser, [shared])  # computes the shared link once (and loads the model): not counted
        rss_start = rss_mb(pid)
        c0 = cpu_seconds(pid)
        alone = open_all(browser, [shared])
        cpu_alone = cpu_seconds(pid) - c0
        c0 = cpu_seconds(pid)
        one_link = open_all(browser, [shared] * args.n)
        cpu_one_link = (cpu_seconds(pid) - c0) / args.n
        rss_one_link = rss_mb(pid)
        c0 = cpu_seconds(pid)
        many = open_all(browser, [url + link(args.model, 1000 + i) for i in range(args.n)])
        cpu_many = (cpu_seconds(pid) - c0) / args.n
        rss_end = rss_mb(pid)
        browser.close()
    print(f"dynmask classroom -- model {args.model}, {args.n} sessions at once, {os.cpu_count()} CPUs, load average "
          f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"  one session alone, link already computed: server CPU {cpu_alone:.2f} s, to result {alone[0]:.2f} s")
    ratio = cpu_one_link / max(cpu_alone, 1e-9)
    print(f"  {args.n} sessions, one computed link:  server CPU per session {cpu_one_link:.2f} s ({ratio:.2f}x one "
          f"alone); to result median {statistics.median(one_link):.2f} s, max {max(one_link):.2f} s")
    print(f"  {args.n} sessions, {args.n} new links:     server CPU per session {cpu_many:.2f} s; to result median "
          f"{statistics.median(many):.2f} s, max {max(many):.2f} s")
    print(f"  server resident memory: {rss_start:.0f} MB after the first link, {rss_one_link:.0f} MB after the shared "
          f"link, {rss_end:.0f} MB after the new links")


if __name__ == "__main__":
    main()
