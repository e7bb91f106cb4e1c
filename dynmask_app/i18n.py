"""Languages of the app: English (the source strings) and Simplified Chinese, from a gettext message catalogue.

Every translatable string is written in English in the code and wrapped in :func:`t` (``_`` by convention); the
Chinese catalogue is ``dynmask_app/locale/zh_CN/LC_MESSAGES/dynmask.po`` (standard gettext PO: ``msgid`` /
``msgstr``, ``#`` comments, multi-line strings). Strategy titles and summaries from the registry go through the same
catalogue, so a new strategy without a translation shows its English text. The PO file is read with a small reader
here (no compile step, no ``.mo`` file to keep in sync); a missing entry falls back to English.

The core (:mod:`dynmask_core`) stays English and knows nothing of Streamlit; what it says to a student is marked
there (see :mod:`dynmask_core.messages`) and translated here, at the point of display, through the same catalogue:

* a :class:`~dynmask_core.messages.Message` (a warning, an explanation, a card's label: an English template and its
  values) goes through :func:`t` like any message: its template is translated, then filled;
* a constant text of the core (``N_("...")``: an axis title, a sample's or a model's title, a parameter's help) goes
  through :func:`t` too;
* a plotly figure is translated by :func:`localize_figure` (its title, axis, colour bar and legend titles, trace
  names, annotations and hover templates, each looked up whole; never a tick label, which holds tokens): the figure
  cache keeps one figure per language, and :func:`dynmask_app.views.charts.plotly` translates the others;
* HTML and Altair builders of the core take a ``tr`` argument: :func:`translator` gives this session's.

The language is part of the recipe (``lang=`` in the link): see :mod:`dynmask_app.editor.display`.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import streamlit as st

from dynmask_core.messages import Message, error_message

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


_OVERRIDE: contextvars.ContextVar[str | None] = contextvars.ContextVar("dynmask_lang", default=None)


def current() -> str:
    """The language of this session (the active recipe's ``lang``, kept in the session state), or the one set by
    :func:`using` (work done outside the script's thread, such as a deferred download, has no session)."""
    lang = _OVERRIDE.get()
    if lang is None:
        try:
            lang = st.session_state.get(SESSION_KEY, DEFAULT_LANG)
        except Exception:  # noqa: BLE001 - no session here (outside a script run): the source language
            lang = DEFAULT_LANG
    return lang if lang in LANGS else DEFAULT_LANG


@contextlib.contextmanager
def using(lang: str) -> Iterator[None]:
    """Within the block, :func:`current` is ``lang`` (for work run outside the script's thread)."""
    token = _OVERRIDE.set(lang)
    try:
        yield
    finally:
        _OVERRIDE.reset(token)


def translate(message: str, lang: str) -> str:
    """``message`` in ``lang`` (English when the catalogue has no entry); a core
    :class:`~dynmask_core.messages.Message` is translated and filled."""
    if isinstance(message, Message):
        return message.render(lambda template: translate(template, lang)) if lang != DEFAULT_LANG else str(message)
    return catalogue(lang).get(message, message) if lang != DEFAULT_LANG else message


def t(message: str, **values: object) -> str:
    """``message`` in this session's language, with ``{name}`` fields filled from ``values`` (a core
    :class:`~dynmask_core.messages.Message` brings its own)."""
    text = translate(message, current())
    return text.format(**values) if values else text


def translator(lang: str | None = None) -> Callable[[str], str]:
    """A ``tr`` for the core's builders: text -> the same text in ``lang`` (default this session's)."""
    lang = lang or current()
    return lambda text: translate(text, lang)


def error_text(err: BaseException) -> str:
    """What an error says, in this session's language (a core error raised with a
    :class:`~dynmask_core.messages.Message` is translated; any other shows its English text)."""
    return t(error_message(err))


def _words(text: Any, lang: str) -> Any:
    """``text`` translated when the catalogue knows it whole; a hover template also line by line and its
    ``<extra>`` name (a template is built from known lines)."""
    if not isinstance(text, str) or not text:
        return text
    whole = translate(text, lang)
    if whole != text or "<br>" not in text and "<extra>" not in text:
        return whole
    head, sep, extra = text.partition("<extra>")
    name, end, tail = extra.partition("</extra>")
    lines = "<br>".join(translate(line, lang) for line in head.split("<br>"))
    return lines + (sep + translate(name, lang) + end + tail if sep else "")


def _set(obj: Any, prop: str, lang: str) -> None:
    """Translates ``obj[prop]`` in place when the catalogue changes it (an unchanged one is not written: a figure
    already translated is never touched)."""
    try:
        value = obj[prop]
    except (KeyError, ValueError):
        return
    if isinstance(value, (list, tuple)):
        shown = [_words(v, lang) for v in value]
        if shown != list(value):
            obj[prop] = shown
    else:
        shown = _words(value, lang)
        if shown != value:
            obj[prop] = shown


def localize_figure(fig: Any, lang: str | None = None) -> Any:
    """Translates a plotly figure's words in place: its title, axis titles, legend title, annotations (subplot
    titles), and each trace's name, hover template and colour bar (title and tick words). Tick labels are data
    (tokens, layers) and stay as they are; so does any text the catalogue does not know whole. Returns ``fig``.

    A figure shared by sessions (the figure cache) is translated when built, once per language; translating it
    again changes nothing and writes nothing."""
    lang = lang or current()
    if lang == DEFAULT_LANG or fig is None or not hasattr(fig, "layout"):
        return fig
    layout = fig.layout
    _set(layout.title, "text", lang)
    _set(layout.legend.title, "text", lang)
    for axis in (*fig.select_xaxes(), *fig.select_yaxes()):
        _set(axis.title, "text", lang)
    for note in layout.annotations or ():
        _set(note, "text", lang)
    for trace in fig.data:
        for prop in ("name", "hovertemplate"):
            if prop in trace:
                _set(trace, prop, lang)
        if "colorbar" in trace:
            _set(trace.colorbar.title, "text", lang)
            _set(trace.colorbar, "ticktext", lang)
    return fig


_ = t
