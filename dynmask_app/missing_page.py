"""A page that does not exist: a mistyped address (``/Atribution``) or ``page=`` value in a link (``?page=atribution``).

Streamlit runs the main page (the Playground) for an address it does not know; a link's unknown ``page=`` opens the
page it was sent to. Either way the page says so once, in the session's language, in a message box that names the
value literally and lists the pages there are (:func:`show`), until the next Run.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dynmask_app import messages
from dynmask_app.i18n import t
from dynmask_app.page_registry import PAGES, every_page, url_path
from dynmask_core.messages import shown

#: The session's unknown page, as asked for: ``("path", name)`` or ``("link", value)``.
KEY = "dm.missing_page"


def asked_path() -> str | None:
    """The address this script run was asked for when Streamlit found no page there and runs the main page instead
    (``"Atribution"`` for ``http://host/Atribution``); None when the address is a page (or there is no browser)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx(suppress_warning=True)
        if ctx is None:
            return None
        manager: Any = ctx.pages_manager
        name = str(manager.intended_page_name or "").strip("/")
        if not name or manager.intended_page_script_hash:
            return None
        known = {str(info.get("url_pathname", "")) for info in manager.get_pages().values()}
    except Exception:  # noqa: BLE001 - Streamlit's internals moved: nothing is said, the page still opens
        return None
    return None if name in known or name in {url_path(file) for _, file, _ in every_page()} else name


def remember(kind: str, asked: str) -> None:
    """Keeps the unknown page (``kind``: ``path`` or ``link``) to be said on this session's page until a Run."""
    st.session_state[KEY] = (kind, asked)


def forget() -> None:
    """The next Run: the message has been read."""
    st.session_state.pop(KEY, None)


def show(page: str) -> None:
    """The message box about the unknown page, if one was asked for: what was asked (literally), the page shown
    instead and every page there is, with its address (a link's ``page=`` value for a link)."""
    missing = st.session_state.get(KEY)
    if not missing:
        return
    kind, asked = missing
    if kind == "path":
        name = shown("/" + asked)
        pages = [f"{t(nav)} (/{url_path(file)})" for _, file, nav in every_page()]
    else:
        name = "page=" + shown(asked)
        pages = [f"{t(nav)} (page={pid})" for pid, _, nav in every_page()]
    messages.warning(t("There is no page {name} in this app, so this is the page {here}. The pages are: {pages}.",
                       name=name, here=t(PAGES[page].nav), pages="; ".join(pages)))
