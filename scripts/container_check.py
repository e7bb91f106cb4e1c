"""Share links on a served container against the same links on the app served here (``scripts/container-smoke.sh``).

Opens each link in headless Debian chromium, once on the container's URL and once on a fresh ``serve.py`` started
from this checkout, and compares what the page shows: the output metrics, the seed, the mask heatmap's cells and
the attention heatmap's weights (as the browser's plotly holds them). Also opens a link that asks for a model
outside the bundled ones and checks that the container's serving policy refuses it with its message, without an
exception. Prints one line per check; exits 1 when any check fails.

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/container_check.py http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dynmask_app.state import AppState  # noqa: E402
from tests.e2e.harness import (  # noqa: E402
    EXCEPTION,
    app_server,
    browser_problem,
    launch,
    mask_data,
    new_context,
    open_app,
    output_numbers,
    wait_charts,
)

SENTENCE = "The teacher shares one link and every student sees the same attention."

#: (what it shows, the recipe): the bundled decoder with a static window, the bundled encoder with a seeded random mask
LINKS = (
    ("SmolLM2, sliding window", AppState(page="playground", model="smollm2", strategy="sliding_window",
                                         input_kind="text", input_ref=SENTENCE, layer=3, head=2)),
    ("MiniLM, random (dynamic), seed 7", AppState(page="playground", model="minilm", strategy="random_dynamic",
                                                  input_kind="text", input_ref=SENTENCE, seed=7)),
)
#: A local folder that exists in the image: the serving policy refuses it like any model it does not allow.
REFUSED_MODEL = "/opt/dynmask/app"


def link(state: AppState) -> str:
    return "/?" + urlencode(state.to_query_params())


def attention_data(page) -> str:
    """The attention heatmap's weights (its tab opened first), as plotly holds them in the browser."""
    page.get_by_role("tab", name="Attention weights", exact=True).click()
    page.wait_for_function("""() => { const g = document.querySelector('.st-key-attn_fig .js-plotly-plot');
        return !!(g && g.data && g.data.length); }""", timeout=60_000)
    return page.evaluate("""() => { const g = document.querySelector('.st-key-attn_fig .js-plotly-plot');
        return JSON.stringify(g.data.map(t => t.z)); }""")


def shown(page, url: str, where: str) -> dict[str, object]:
    open_app(page, url, timeout=300)
    try:
        wait_charts(page, 1, timeout=180)
    except Exception:
        shot = Path(os.environ.get("TMPDIR", "/tmp")) / f"container-check-{where}.png"
        page.screenshot(path=str(shot), full_page=True)
        raise AssertionError(f"{where}: no chart drawn for {url} (screenshot: {shot})") from None
    errors = page.locator(EXCEPTION)
    if errors.count():
        raise AssertionError(f"{url}: the page shows an exception: {errors.first.inner_text()[:300]}")
    return {"numbers": settled_numbers(page), "mask": mask_data(page), "attention": attention_data(page)}


def settled_numbers(page) -> dict[str, str]:
    """The output metrics once two reads half a second apart agree (React may still be adding the last cards)."""
    numbers = output_numbers(page)
    for _ in range(20):
        page.wait_for_timeout(500)
        again = output_numbers(page)
        if again == numbers:
            break
        numbers = again
    return numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("container_url", help="the container's base URL, e.g. http://127.0.0.1:8501")
    args = parser.parse_args(argv)
    problem = browser_problem()
    if problem:
        print(f"container_check: {problem}", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    container = args.container_url.rstrip("/")
    failures = 0
    with app_server(timeout=120) as here, sync_playwright() as pw:
        browser = launch(pw)
        for title, state in LINKS:
            seen = {}
            for where, base in (("container", container), ("here", here)):
                ctx = new_context(browser)
                seen[where] = shown(ctx.new_page(), base + link(state), where)
                ctx.close()
            inside, outside = seen["container"], seen["here"]
            same = {part: inside[part] == outside[part] for part in ("numbers", "mask", "attention")}
            print(f"{title}: metrics {inside['numbers']} -> " + ", ".join(
                f"{part} {'same' if ok else 'DIFFERENT'}" for part, ok in same.items()))
            if not all(same.values()):
                print(f"  container: {inside['numbers']}\n  here:      {outside['numbers']}")
                failures += 1

        ctx = new_context(browser)
        page = ctx.new_page()
        open_app(page, container + link(AppState(page="playground", model=REFUSED_MODEL, input_kind="text",
                                                 input_ref=SENTENCE)))
        refusal = page.get_by_test_id("stAlert").filter(has_text="loads only its bundled models")
        ok = refusal.count() >= 1 and page.locator(EXCEPTION).count() == 0  # under the field and above the page
        print(f"serving policy: a link to a local folder model is {'refused' if ok else 'NOT refused'}")
        failures += not ok
        ctx.close()
        browser.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
