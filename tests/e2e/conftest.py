"""Real-browser fixtures: one app server per test session, one headless chromium, a fresh context per test.

Without playwright or Debian's chromium the browser tests are skipped -- except in CI (``CI=true``), where they
fail: the browser tests must never be skipped silently there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.harness import app_server, browser_problem, launch, new_context, runs_started, wait_idle

__all__ = ["runs_started", "wait_idle"]


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"browser tests cannot run in CI: {why}", pytrace=False)
    pytest.skip(f"browser tests skipped: {why}")


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """Base URL of ``streamlit run app.py`` (offline, headless, free port); killed with its group at the end."""
    problem = browser_problem()
    if problem:
        _unavailable(problem)
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    with app_server(timeout=90, log_path=log) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium driven by sync Playwright."""
    problem = browser_problem()
    if problem:
        _unavailable(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def new_page(browser):
    """Factory of pages, each in its own fresh browser context (no shared cookies / session)."""
    contexts = []

    def make():
        ctx = new_context(browser)
        ctx.set_default_timeout(60_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def page(new_page):
    """One page in a fresh browser context."""
    return new_page()


@pytest.fixture
def screenshot(tmp_path):
    """``screenshot(page, name)``: a full-page PNG under ``tmp_path`` (the first of the session is also copied to
    ``/tmp/dynmask_e2e_playground.png``); returns its path."""
    def take(page, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        # Streamlit scrolls inside its main block, so a "full page" is only the viewport: grow the viewport to
        # the content's height for the shot, then put it back.
        size = page.viewport_size
        tall = page.evaluate("""() => Math.max(...['stMain', 'stSidebarContent'].map(id => {
            const el = document.querySelector(`[data-testid="${id}"]`); return el ? el.scrollHeight : 0; }))""")
        page.set_viewport_size({"width": size["width"], "height": int(min(max(tall, size["height"]), 8000))})
        page.wait_for_timeout(500)
        page.screenshot(path=str(path), full_page=True)
        page.set_viewport_size(size)
        if not _first_shot["done"]:
            shutil.copyfile(path, "/tmp/dynmask_e2e_playground.png")
            _first_shot["done"] = True
        return path

    return take


_first_shot = {"done": False}
