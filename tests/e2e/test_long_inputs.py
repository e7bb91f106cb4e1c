"""Past 512 tokens in a real browser: a link with a token limit shows pooled heatmaps that say so, and the zoom
draws a window of one head at full resolution (only that window is sent)."""

from __future__ import annotations

from tests.e2e.harness import EXCEPTION, open_app, runs_started, wait_idle

DIGITS = "0123456789" * 100  # 1,000 SmolLM2 tokens in 1,000 characters (the text rides in the link)
LINK = (f"/?v=2&input=text&ref={DIGITS}&model=smollm2&tokens=1000&s=sliding_window&p.radius=32"
        "&layer=1&head=2")


def _cells(page, key: str) -> tuple[int, int]:
    """Rows and columns of the heatmap a chart's browser-side plotly holds (its ``z``, rows of numbers or a
    typed array with its shape)."""
    shape = page.evaluate(f"""() => {{
        const z = document.querySelector('.st-key-{key} .js-plotly-plot').data[0].z;
        if (Array.isArray(z)) return [z.length, Math.max(...z.map(r => r.length))];
        return String(z.shape || z._shape || '').split(',').map(Number); }}""")
    return int(shape[0]), int(shape[1])


def test_a_long_link_shows_pooled_maps_and_zooms_at_full_resolution(app_url, page, screenshot):
    open_app(page, app_url + LINK, timeout=300)
    assert page.locator(EXCEPTION).count() == 0
    page.wait_for_selector(".st-key-mask_fig .main-svg", timeout=120_000)
    body = page.get_by_test_id("stMain").inner_text()
    assert "1,000 tokens: past the usual 512" in body and "pooled maps" in body
    rows, cols = _cells(page, "mask_fig")
    assert rows == cols < 1000  # block means, not every cell
    page.get_by_role("tab", name="Zoom (full resolution)", exact=True).click()
    button = page.get_by_role("button", name="Compute rows 0–127 at full resolution", exact=True)
    button.wait_for(timeout=60_000)
    since = runs_started(page)
    button.click()
    wait_idle(page, 300, since=since)
    page.wait_for_selector(".st-key-zoom_fig .main-svg", timeout=120_000)
    assert _cells(page, "zoom_fig") == (128, 128)  # the window, at one cell per query-key pair
    assert page.locator(EXCEPTION).count() == 0
    assert "Computed in" in page.get_by_test_id("stMain").inner_text()
    shot = screenshot(page, "long-input-zoom")
    assert shot.stat().st_size > 10_000
