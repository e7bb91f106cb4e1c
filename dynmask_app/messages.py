"""Showing messages that carry user-supplied values, safely.

``st.warning``/``st.error``/``st.caption`` render markdown: a value from a link (a strategy id, a model id) could
otherwise turn into a live link, an image loaded from anywhere, LaTeX or coloured text. Every message that can hold
such a value goes through :func:`plain`, which escapes all markdown punctuation so the text shows exactly as written.
The core already cuts long values short (:func:`dynmask_core.messages.shown`); many warnings are summarised here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import streamlit as st

from dynmask_app.i18n import t

MAX_BOXES = 5  # warnings shown one by one; the rest are summarised in one more box
MAX_CHARS = 600  # a message longer than this is cut
# What can turn text into markup: links and images ([]()!<>), emphasis and code (*_~`), math ($), Streamlit's
# :colour[...] and :icon: directives (:), tables (|), braces, and the backslash itself. Plain punctuation
# (- . / , ' " = % @) is left alone, so ids and numbers read as typed.
_MARKUP = re.compile(r"([\\`*_{}\[\]()<>!$:~|])")
# Bare URLs, www. names and e-mail addresses become links even when escaped (GitHub-flavoured autolinks): an
# invisible word joiner after the scheme, after "www" and before "@" breaks the pattern; the text reads the same.
_AUTOLINK = re.compile(r"(?<=https)(?=:)|(?<=http)(?=:)|(?<=ftp)(?=:)|(?<=www)(?=\.)|(?=@)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def plain(text: Any) -> str:
    """``text`` as markdown that renders literally (no links, images, emphasis, math or colours).

    >>> print(plain("see [x](https://e.com) *now* $x$, no-such-org/model-1.5").replace(WORD_JOINER, "+"))
    see \\[x\\]\\(https+\\://e.com\\) \\*now\\* \\$x\\$, no-such-org/model-1.5
    >>> print(plain("www.e.com a@b.org").replace(WORD_JOINER, "+"))
    www+.e.com a+@b.org
    """
    text = str(text).replace("\r", " ")
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 1] + "…"
    return _MARKUP.sub(r"\\\1", _AUTOLINK.sub(WORD_JOINER, text))


def warning(text: str, where: Any = None) -> None:
    """A warning box showing ``text`` literally."""
    (where or st).warning(plain(text))


def error(text: str, where: Any = None) -> None:
    """An error box showing ``text`` literally."""
    (where or st).error(plain(text))


def warnings(texts: Sequence[str], where: Any = None) -> None:
    """Up to :data:`MAX_BOXES` warnings, then one box that says how many more there were."""
    texts = list(texts)
    shown = texts if len(texts) <= MAX_BOXES else texts[: MAX_BOXES - 1]
    for text in shown:
        warning(text, where)
    if len(texts) > len(shown):
        rest = len(texts) - len(shown)
        warning(t("…and {rest} more problems with the link; each was replaced by a default.", rest=rest), where)
