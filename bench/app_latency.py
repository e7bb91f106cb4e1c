"""App latency and payload, measured in a real browser (headless Debian chromium via Playwright).

(i)   click Run -> the new mask heatmap drawn (its plotly SVG present, holding the new tokens) and -> the app idle,
      default model and strategy, 32-token sentences, a new sentence each time (so the result cache never hits);
      median of N, twice: N Runs in one open session (after a warm-up Run), and N first Runs of fresh sessions
      (these also fetch and compile plotly.js). Also: click -> last websocket frame (the server is done) and the
      server's own run() time (the page's "s for both passes" caption), to split the time. The click is timed from
      Playwright's ``click()`` (which first checks the button is visible, stable and enabled, ~0.03-0.05 s) and,
      on the page's own clock, from the browser's click event to the first animation frame that has the heatmap.
(ii)  the core's own time for the same inputs in this process: ``encode_text`` + ``run`` with the app's plan
      (``load`` is timed once, apart); median of N; the ratio app / core.
(iii) the bytes the browser receives on the websocket from clicking Run until idle and charted, for a 512-token
      text (plotly.js itself comes over HTTP and is not counted).
(iv)  ``--media``: in one open session, click Run -> the first view on the input drawn and the app idle, for a
      32-token text (the mask heatmap), the bundled image model on a bundled picture ("On the image" overlay) and
      the bundled audio model on a ~1.3 s bundled clip ("On the sound"); the radius of the window changes at each
      Run so no result comes from the cache. Prints each median and the ratio to the text Run.

The machine is shared: the load average is printed with the results.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/app_latency.py [--repeats 5] [--media]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import (  # noqa: E402
    EXCEPTION,
    app_server,
    browser_problem,
    click_run,
    launch,
    new_context,
    open_app,
    runs_started,
    set_text,
    wait_charts,
    wait_idle,
)

WORDS = ("the students watched how a sliding window of attention changes what each token can see while the "
         "teacher explained sparse masks dynamic routing clusters hashing buckets and why long documents need "
         "cheaper attention than the full quadratic pattern of a transformer").split()
PARAGRAPH = ("Attention lets every token look at every other token, which is why transformers read long contexts "
             "so well and also why they get slow: the cost grows with the square of the length. Sparse attention "
             "masks trade a little accuracy for a lot of speed. ")
#: The mask heatmap (``key="mask_fig"``) is drawn and shows the labels of the given token.
NEW_MASK = """label => { const g = document.querySelector('.st-key-mask_fig .js-plotly-plot');
    const drawn = !!(g && g.querySelector('.main-svg .heatmaplayer') && g.data && g.data[0] && g.data[0].x
                     && Array.from(g.data[0].x).includes(label));
    if (drawn && window.__dmDrawnAt === undefined) window.__dmDrawnAt = performance.now();
    return drawn; }"""
#: On the page: the time of the last click event (capture phase, before any handler of the app's).
CLICK_CLOCK = """() => { if (!window.__dmClockOn) { window.__dmClockOn = true;
    document.addEventListener('click', () => { window.__dmClickAt = performance.now(); }, true); }
    window.__dmDrawnAt = undefined; window.__dmClickAt = undefined; }"""


FIRST_WORDS = ("apple", "river", "garden", "violin", "candle", "window", "forest", "silver", "yellow", "market",
               "bridge", "winter", "orange", "castle", "pencil", "rabbit")


def sentences(loaded, n: int, n_tokens: int = 32) -> list[tuple[str, str]]:
    """``n`` different sentences of exactly ``n_tokens`` tokens (special tokens included) for ``loaded``, each with
    the axis label of its distinctive first token (``"1:apple"``), which tells a new heatmap from the last one."""
    from dynmask_core import encode_text

    out = []
    for i, first in enumerate(FIRST_WORDS[:n]):
        rng = random.Random(i)
        words = [first]
        while len(encode_text(loaded, " ".join(words) + ".").tokens) < n_tokens:
            words.append(rng.choice(WORDS))
        text = " ".join(words) + "."
        tokens = encode_text(loaded, text).tokens
        if tokens[1] != first:
            raise RuntimeError(f"{first!r} is not one token for this model: {tokens[:3]}")
        out.append((text, f"1:{first}"))
    return out


def fmt_s(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} s  (min {min(values):.3f}, max {max(values):.3f})"


def median(values: list[float]) -> float:
    return statistics.median(values)


def measure_run(page, arrivals: list[float], text: str, label: str) -> dict[str, float]:
    """Types ``text``, clicks Run; seconds from the click to: the new mask heatmap drawn (its plotly SVG present
    and its data holding ``label``), the app idle, the last websocket frame (the server is done); and the server's
    own ``run()`` time (from the page caption)."""
    set_text(page, text)
    page.evaluate(CLICK_CLOCK)
    arrivals.clear()
    t0 = time.perf_counter()
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_function(NEW_MASK, arg=label, timeout=120_000, polling="raf")
    chart = time.perf_counter() - t0
    in_page = page.evaluate("() => (window.__dmDrawnAt - window.__dmClickAt) / 1000")
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]'
                           '[data-test-connection-state="CONNECTED"]', timeout=120_000)
    idle = time.perf_counter() - t0
    if page.locator(EXCEPTION).count():
        raise RuntimeError(f"the app raised: {page.locator(EXCEPTION).first.inner_text()[:300]}")
    caption = page.get_by_text(re.compile(r"s for both passes")).first.inner_text()
    server = float(re.search(r"([0-9.]+) s for both passes", caption).group(1))
    return {"chart": chart, "in_page": in_page, "idle": idle, "last_frame": max(arrivals) - t0, "server_run": server}


def _page(browser):
    ctx = new_context(browser)
    page = ctx.new_page()
    arrivals: list[float] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda _: arrivals.append(time.perf_counter())))
    return ctx, page, arrivals


def browser_runs(pw, url: str, texts: list[tuple[str, str]], fresh: bool) -> dict[str, list[float]]:
    """One Run per text. ``fresh``: each in a new browser session (a visitor's first Run: plotly.js is fetched
    and compiled too); else all in one session after a warm-up Run (the usual case: changing the recipe)."""
    browser = launch(pw)
    out: dict[str, list[float]] = {"chart": [], "in_page": [], "idle": [], "last_frame": [], "server_run": []}
    try:
        if not fresh:
            ctx, page, arrivals = _page(browser)
            open_app(page, url)
            measure_run(page, arrivals, *texts[0])
            texts = texts[1:]
        for text, label in texts:
            if fresh:
                ctx, page, arrivals = _page(browser)
                open_app(page, url)
            for key, value in measure_run(page, arrivals, text, label).items():
                out[key].append(value)
            if fresh:
                ctx.close()
    finally:
        browser.close()
    return out


def payload(pw, url: str, text: str) -> dict[str, float]:
    """Websocket bytes received from clicking Run until idle and every chart drawn."""
    browser = launch(pw)
    frames: list[int] = []
    counting = {"on": False}

    def on_ws(ws) -> None:
        def received(data) -> None:
            if counting["on"]:
                frames.append(len(data.encode("utf-8")) if isinstance(data, str) else len(data))

        ws.on("framereceived", received)

    try:
        ctx = new_context(browser)
        page = ctx.new_page()
        page.on("websocket", on_ws)
        open_app(page, url)
        set_text(page, text)
        counting["on"] = True
        t0 = time.perf_counter()
        click_run(page, timeout=300)
        charts = wait_charts(page, 1, timeout=120)
        elapsed = time.perf_counter() - t0
        counting["on"] = False
        shown = page.get_by_text("tokens ·").first.inner_text()
        if page.locator(EXCEPTION).count():
            raise RuntimeError(f"the app raised: {page.locator(EXCEPTION).first.inner_text()[:300]}")
        ctx.close()
    finally:
        browser.close()
    return {"bytes": sum(frames), "frames": len(frames), "largest": max(frames, default=0), "charts": charts,
            "seconds": elapsed, "caption": shown}


MEDIA_VIEWS = {"text": "Mask applied (layer", "image": "Masked run: CLS attends to", "audio": "attends along time"}


def media_runs(pw, url: str, text: str, repeats: int) -> dict[str, list[float]]:
    """Seconds from clicking Run to the app idle with the input's first view drawn, per input kind (one session)."""
    browser = launch(pw)
    out: dict[str, list[float]] = {kind: [] for kind in MEDIA_VIEWS}
    try:
        ctx, page, _ = _page(browser)
        open_app(page, url)
        set_text(page, text)
        for kind, title in MEDIA_VIEWS.items():
            if kind != "text":
                since = runs_started(page)
                page.get_by_test_id("stSidebar").get_by_text(kind.capitalize(), exact=True).click()
                wait_idle(page, since=since)
            for i in range(repeats + 1):  # the first Run of each kind warms up (model load): not counted
                radius = page.get_by_role("spinbutton", name="radius")
                radius.fill(str(1 + i))
                since = runs_started(page)
                radius.press("Enter")
                wait_idle(page, since=since)
                t0 = time.perf_counter()
                click_run(page)
                page.wait_for_function(
                    """t => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"] .gtitle'))
                             .some(e => e.textContent.includes(t))""", arg=title, timeout=120_000, polling="raf")
                if i:
                    out[kind].append(time.perf_counter() - t0)
                if page.locator(EXCEPTION).count():
                    raise RuntimeError(f"the app raised: {page.locator(EXCEPTION).first.inner_text()[:300]}")
        ctx.close()
    finally:
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--media", action="store_true",
                        help="(iv) only: a Run on text, on the bundled image model and on the bundled audio model")
    args = parser.parse_args()
    problem = browser_problem()
    if problem:
        sys.exit(f"cannot run: {problem}")

    import torch
    from playwright.sync_api import sync_playwright

    from dynmask_app.state import AppState
    from dynmask_core import encode_text, load, run
    from dynmask_core.models import DEFAULT_MODEL

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    loaded = load(DEFAULT_MODEL)
    load_s = time.perf_counter() - t0
    texts = sentences(loaded, 2 * args.repeats + 2)
    warm, same, fresh = texts[0], texts[1:args.repeats + 2], texts[args.repeats + 2:]
    long_text = PARAGRAPH * 40
    long_input = encode_text(loaded, long_text)

    def core_times() -> list[float]:
        """encode_text + run of every text with the app's plan (the server sits idle meanwhile)."""
        times = []
        for text, _ in texts:
            plan = AppState(input_ref=text).plan()
            t0 = time.perf_counter()
            run(loaded, encode_text(loaded, text), plan)
            times.append(time.perf_counter() - t0)
        return times[1:]  # the first one warms up

    if args.media:
        with app_server(timeout=90) as url, sync_playwright() as pw:
            res = media_runs(pw, url, texts[0][0], args.repeats)
        base = median(res["text"])
        print(f"dynmask Run latency by input kind -- one open session, {args.repeats} runs each, load average "
              f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}")
        for kind, values in res.items():
            ratio = median(values) / base
            print(f"  {kind:<6} click Run -> first view drawn  {fmt_s(values)}   ratio to text {ratio:.2f}x")
        return

    with app_server(timeout=90) as url, sync_playwright() as pw:
        t0 = time.perf_counter()
        browser_runs(pw, url, [warm], fresh=True)  # the first page loads the model in the server; not counted
        warm_s = time.perf_counter() - t0
        core = core_times()
        app = browser_runs(pw, url, same, fresh=False)
        first = browser_runs(pw, url, fresh, fresh=True)
        core += core_times()  # before and after the browser runs: same conditions on a shared machine
        big = payload(pw, url, long_text)
    load_after = os.getloadavg()[0]

    n_tok = len(encode_text(loaded, same[0][0]).tokens)
    med_core = median(core)
    print(f"dynmask app latency -- model {DEFAULT_MODEL}, strategy {AppState().label()}, {n_tok}-token sentences, "
          f"{args.repeats} runs each, torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, "
          f"load average {load_before:.1f} -> {load_after:.1f}")
    print(f"  server start + first page with model load (warm-up, not counted): {warm_s:.1f} s")
    for name, res in (("Run in an open session (recipe changed)", app),
                      ("first Run of a fresh session (+ plotly.js load)", first)):
        chart, frame, server = median(res["chart"]), median(res["last_frame"]), median(res["server_run"])
        print(f"  (i)   app, {name}:")
        print(f"          click Run -> mask heatmap drawn    {fmt_s(res['chart'])}")
        print(f"            the same on the page's clock     {fmt_s(res['in_page'])}  (click event -> frame)")
        print(f"          click Run -> app idle              {fmt_s(res['idle'])}")
        print(f"          click Run -> last websocket frame  {fmt_s(res['last_frame'])}  (server done)")
        print(f"          the server's own run() (caption)   {fmt_s(res['server_run'])}")
        print(f"          ratio app(heatmap) / core = {chart / med_core:.1f}x;  split: core-in-server {server:.2f} s"
              f" + rest of the server {frame - server:.2f} s + browser drawing after the last frame "
              f"{chart - frame:.2f} s")
    print(f"  (ii)  core: encode_text + run (in process)    {fmt_s(core)}   [load once: {load_s:.2f} s]")
    print(f"  (iii) 512-token view: {len(long_input.tokens)} tokens (text had {long_input.n_tokens_before}, "
          f"truncated={long_input.truncated}); page caption: {big['caption'][:90]!r}")
    print(f"        websocket bytes received, click Run -> idle: {big['bytes'] / 1e6:.2f} MB in {big['frames']} "
          f"frames (largest {big['largest'] / 1e6:.2f} MB), {big['charts']} charts, {big['seconds']:.1f} s")


if __name__ == "__main__":
    main()
