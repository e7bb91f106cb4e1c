"""A selectbox or radio whose options are ids shown by words in the session's language (see :func:`choice`).

Its own module, below :mod:`dynmask_app.editor.widgets` and :mod:`dynmask_app.editor.inputs`, which both draw such
choices (``widgets`` re-exports it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from dynmask_app import messages
from dynmask_app.i18n import LANGS, current


def choice(kind: str, label: str, options: Sequence[Any], *, key: str,
           label_of: Callable[[Any, str], str] | None = None, fallback: Any = None, **kwargs: Any) -> Any:
    """A selectbox (``kind="select"``) or radio (``"radio"``) whose value is always one of ``options`` (ids), each
    shown as ``label_of(option, lang)`` (default: ``str(option)``) in this session's language. Every choice whose
    labels depend on the language (or on anything but the option) is drawn by this.

    Streamlit keeps a keyed widget across runs and hears a choice back from the browser as the *label* shown; it
    maps it to an option by this run's labels. When the labels change and the value does not (a language
    switch), the browser keeps the old label and sends it with its next rerun (a presenter switch, any edit):
    Streamlit then gives back the label itself as the value ("op must be one of none, and, or, got 'no second
    strategy'") or resets the choice. So, before the widget is drawn, (1) a value that is an option's label, in
    any language, becomes that option again, and (2) when the labels differ from those last drawn, the value is
    set again, which sends the browser its label in the new language.

    A radio's options are markdown, so its labels are escaped (:func:`dynmask_app.messages.plain`: a token such
    as ``3:orange`` shows as written); a selectbox shows its options as plain text, unescaped. ``label`` is the
    caller's to escape.

    Args:
        kind: ``select`` or ``radio``.
        label: The widget's label (markdown).
        options: The values (ids).
        key: Widget key.
        label_of: ``(option, lang) -> shown text``.
        fallback: The value when the one held is none of the options (None: Streamlit's own, ``index``).
        kwargs: Passed on (``help``, ``horizontal``, ``index``, ...).
    """
    options = list(options)
    name = label_of or (lambda option, _lang: str(option))
    radio = kind == "radio"

    def shown(option: Any, lang: str) -> str:
        text = name(option, lang)
        return messages.plain(text) if radio else text

    lang = current()
    labels = tuple(shown(o, lang) for o in options)
    held = st.session_state.get(key)
    if isinstance(held, str) and held not in options:  # a label the browser kept (e.g. in the other language)
        held = next((o for other in (lang, *LANGS) for o in options if shown(o, other) == held), held)
    if held not in options and fallback is not None:
        held = fallback
    drawn = f"{key}.labels"
    if held in options and (held != st.session_state.get(key) or st.session_state.get(drawn, labels) != labels):
        st.session_state[key] = held  # the browser is sent the value's label of this run
        if kwargs.get("index") not in (None, 0):
            kwargs.pop("index")  # the session's value holds (Streamlit warns about both)
    st.session_state[drawn] = labels
    draw = st.radio if radio else st.selectbox
    return draw(label, options, key=key, format_func=lambda o: shown(o, lang), **kwargs)
