"""Languages of the app: English (the source strings) and Simplified Chinese, from a gettext message catalogue.

Every translatable string is written in English in the code and wrapped in :func:`t` (``_`` by convention); the
Chinese catalogue is ``dynmask_app/locale/zh_CN/LC_MESSAGES/dynmask.po`` (standard gettext PO: ``msgid`` /
``msgstr``, ``#`` comments, multi-line strings). Strategy titles and summaries from the registry go through the same
catalogue, so a new strategy without a translation shows its English text. The PO file is read with a small reader
here (no compile step, no ``.mo`` file to keep in sync); a missing entry falls back to English.

The language is part of the recipe (``lang=`` in the link): see :mod:`dynmask_app.editor.display`.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import streamlit as st

LANGS: dict[str, str] = {"en": "English", "zh": "简体中文"}
DEFAULT_LANG = "en"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
_CATALOGUES = {"zh": LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "dynmask.po"}
SESSION_KEY = "ui.lang"  # the session's language
PRESENT_KEY = "ui.present"  # the session's presenter mode


def read_po(path: Path) -> dict[str, str]:
    """``{msgid: msgstr}`` of a PO file (entries with an empty ``msgstr`` are left out: they fall back to English).

    Raises:
        ValueError: a line the reader does not understand (with its number).
    """
    entries: dict[str, str] = {}
    msgid: list[str] | None = None
    msgstr: list[str] | None = None
    current: list[str] | None = None

    def flush() -> None:
        if msgid is not None and msgstr is not None:
            key, value = "".join(msgid), "".join(msgstr)
            if key and value:
                entries[key] = value

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("msgid "):
            flush()
            msgid, msgstr = [_unquote(line[6:], path, number)], None
            current = msgid
        elif line.startswith("msgstr "):
            msgstr = [_unquote(line[7:], path, number)]
            current = msgstr
        elif line.startswith('"') and current is not None:
            current.append(_unquote(line, path, number))
        else:
            raise ValueError(f"{path.name}:{number}: not a PO line: {line[:60]!r}")
    flush()
    return entries


def _unquote(text: str, path: Path, number: int) -> str:
    text = text.strip()
    if not (text.startswith('"') and text.endswith('"')):
        raise ValueError(f"{path.name}:{number}: a PO string must be in double quotes")
    return ast.literal_eval(text)


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """The translations of ``lang`` (empty for English, the source language)."""
    path = _CATALOGUES.get(lang)
    return read_po(path) if path is not None and path.is_file() else {}


def current() -> str:
    """The language of this session (the active recipe's ``lang``, kept in the session state)."""
    lang = st.session_state.get(SESSION_KEY, DEFAULT_LANG)
    return lang if lang in LANGS else DEFAULT_LANG


def translate(message: str, lang: str) -> str:
    """``message`` in ``lang`` (English when the catalogue has no entry)."""
    return catalogue(lang).get(message, message) if lang != DEFAULT_LANG else message


def t(message: str, **values: object) -> str:
    """``message`` in this session's language, with ``{name}`` fields filled from ``values``."""
    text = translate(message, current())
    return text.format(**values) if values else text


_ = t
