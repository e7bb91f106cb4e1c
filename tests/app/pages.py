"""Opening a page of the app in AppTest, and the check every app test makes (no exception, no error)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests import ROOT


def open_page(file: str, query: dict[str, str] | None = None, timeout: float = 180) -> AppTest:
    """Runs the page ``file`` (relative to the repository root), opened with ``query`` as its link."""
    at = AppTest.from_file(str(ROOT / file), default_timeout=timeout)
    if query:
        at.query_params.update(query)
    return at.run()


def no_exception(at: AppTest) -> None:
    """The page ran to its end (an error message it shows on purpose is allowed)."""
    assert not at.exception, [e.value for e in at.exception]


def ok(at: AppTest) -> None:
    """No exception and no error message on the page."""
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
