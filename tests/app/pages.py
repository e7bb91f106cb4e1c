"""Opening a page of the app in AppTest, and the check every app test makes (no exception, no error)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def open_page(file: str, query: dict[str, str] | None = None, timeout: float = 180) -> AppTest:
    """Runs the page ``file`` (relative to the repository root), opened with ``query`` as its link."""
    at = AppTest.from_file(str(ROOT / file), default_timeout=timeout)
    if query:
        at.query_params.update(query)
    return at.run()


def ok(at: AppTest) -> None:
    """No exception and no error message on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
