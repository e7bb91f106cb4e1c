"""The token count under the Playground's text area, kept up to date while the text is typed.

``st.text_area`` hands its value to Python only when the field loses focus (or on Ctrl+Enter), so a teacher pasting
an essay would not learn how many tokens the model gets until later. A components-v2 component with JavaScript only
(:data:`JS`, fixed code: nothing from the user goes into it) listens to the ``input`` events of that text area in the
page and, after a pause of :data:`PAUSE_MS`, sends the text as its state. :func:`live_token_count` is a fragment, so
each pause reruns only the fragment: the count is the one thing that changes; the text area keeps its focus.

While the model is not loaded yet (the Playground draws the text before the model picker, which loads it) the line
counts characters, and the component sends the text again every :data:`WAIT_MS` (at most :data:`MAX_WAITS` times),
so the tokens show once the model is there. The counter never loads a model.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dynmask_app.i18n import t
from dynmask_app.server import resources

NAME = "dynmask_token_counter"
PAUSE_MS = 300  # quiet time after the last keystroke before the text is sent
WAIT_MS = 1000  # while the model loads: how often the text is sent again
MAX_WAITS = 60  # ...and at most how many times
CONTAINER = "token_count"  # key of the container of the count line (CSS class ``st-key-token_count``)

#: Finds the text area whose widget key is ``data.key`` by the class Streamlit gives a keyed widget's container
#: (``st-key-`` + the key with every character outside ``[a-zA-Z0-9_-]`` made ``-``: ``pg.text`` ->
#: ``st-key-pg-text``), listens to its ``input`` events on the document (the element itself may be replaced when the
#: editor redraws) and sends ``{text, n}`` after a pause; ``n`` makes every send a new state, so Python can tell a
#: send from a rerun caused by something else.
#:
#: Two rules keep a send from undoing the user's other edits. Every rerun request carries the browser's values of
#: all widgets, the text area's committed value included; a send that left while another rerun was changing that
#: value on the server (an example picked) would put the old text back. So (1) leaving the field drops a pending
#: send (leaving commits the text: that rerun counts it), and (2) a send waits while the app is not idle
#: (``data-test-script-state`` other than ``notRunning``: running, or a rerun requested).
#:
#: The component function is called again on every redraw without its previous cleanup, so the listeners live in a
#: module-level map (one entry per key) and each call only hands the entry its newest ``setStateValue``; a pending
#: send survives a redraw.
JS = """
const counters = new Map();

function streamlitKeyClass(key) {
  return "st-key-" + String(key).trim().replace(/[^a-zA-Z0-9_-]/g, "-");
}

function appBusy() {
  const app = document.querySelector('[data-testid="stApp"]');
  const state = app ? app.getAttribute("data-test-script-state") : null;
  return !!state && state !== "notRunning";
}

export default function (component) {
  const data = component.data || {};
  const key = typeof data.key === "string" ? data.key : "";
  if (!key) return undefined;
  let entry = counters.get(key);
  if (!entry) {
    const selector = "." + CSS.escape(streamlitKeyClass(key)) + " textarea";
    const ours = (target) => target instanceof HTMLTextAreaElement && target.matches(selector);
    entry = {gen: 0, timer: 0, wait: 0, sent: 0, send: null};
    entry.push = () => {
      const area = document.querySelector(selector);
      if (!area || !entry.send) return;
      entry.sent += 1;
      entry.send("typed", {text: area.value, n: entry.sent});
    };
    entry.fire = () => {
      if (appBusy()) {
        entry.timer = setTimeout(entry.fire, 100);
        return;
      }
      entry.timer = 0;
      entry.push();
    };
    entry.later = (ms) => {
      clearTimeout(entry.timer);
      entry.timer = setTimeout(entry.fire, ms);
    };
    entry.onInput = (event) => {
      if (!ours(event.target)) return;
      clearTimeout(entry.wait);
      entry.wait = 0;
      entry.later(data.pause || 300);
    };
    entry.onLeave = (event) => {
      if (!ours(event.target)) return;
      clearTimeout(entry.timer);
      entry.timer = 0;
    };
    document.addEventListener("input", entry.onInput, true);
    document.addEventListener("focusout", entry.onLeave, true);
    counters.set(key, entry);
  }
  const gen = ++entry.gen;
  entry.send = component.setStateValue;
  clearTimeout(entry.wait);
  entry.wait = 0;
  if (data.wait && !entry.timer) {
    entry.wait = setTimeout(() => { entry.wait = 0; if (!entry.timer) entry.later(0); }, data.wait);
  }
  return () => {
    if (counters.get(key) !== entry || entry.gen !== gen) return;
    clearTimeout(entry.timer);
    clearTimeout(entry.wait);
    document.removeEventListener("input", entry.onInput, true);
    document.removeEventListener("focusout", entry.onLeave, true);
    counters.delete(key);
  };
}
"""

_mount = st.components.v2.component(NAME, js=JS)


def _noop() -> None:
    """The state callback: its presence makes ``typed`` a state of the component; the fragment reads it."""


def _text_now(key: str, typed: Any) -> str:
    """The text to count: what the component just sent, else the text area's committed value (any other rerun
    follows a blur or Ctrl+Enter of the text area, or an example picked, so the committed value is the newest)."""
    seen = f"{key}.counted"
    if isinstance(typed, dict) and typed != st.session_state.get(seen):
        st.session_state[seen] = typed
        return str(typed.get("text") or "")
    return str(st.session_state.get(key) or "")


def count_line(n_tokens: int | None, n_chars: int, limit: int | None, context: int | None) -> str:
    """The line under the text area (numbers only: nothing typed is shown in it).

    >>> count_line(1234, 5000, 512, 8192)
    '1,234 tokens; the model reads the first 512 (raise *Tokens to read* to read up to 8,192)'
    >>> count_line(1234, 5000, 512, 512)
    '1,234 tokens; the model reads the first 512'
    >>> count_line(1, 3, 512, None), count_line(None, 1234, 512, None)
    ('1 token', '1,234 characters')
    """
    if n_tokens is None:
        return t("{n} character", n=f"{n_chars:,}") if n_chars == 1 else t("{n} characters", n=f"{n_chars:,}")
    line = t("{n} token", n=f"{n_tokens:,}") if n_tokens == 1 else t("{n} tokens", n=f"{n_tokens:,}")
    if limit and n_tokens > limit:
        line += t("; the model reads the first {limit}", limit=f"{limit:,}")
        if context and context > limit:
            line += t(" (raise *Tokens to read* to read up to {context})", context=f"{context:,}")
    return line


def _tokens(loaded: Any, text: str) -> int | None:
    """Tokens of ``text`` for the loaded model, or None (no model, no tokenizer)."""
    if loaded is None or getattr(loaded, "tokenizer", None) is None:
        return None
    from dynmask_core.modalities.text import count_tokens

    try:
        return count_tokens(loaded, text)
    except Exception:  # noqa: BLE001 - a count is a hint: never a traceback under the text area
        return None


@st.fragment
def live_token_count(key: str, model_id: str, limit: int | None = None, context: int | None = None) -> None:
    """Mounts the counter for the text area ``key`` and shows how many tokens ``model_id`` makes of its text.

    Args:
        key: Widget key of the ``st.text_area`` (e.g. ``pg.text``).
        model_id: The model whose tokenizer counts, when it is loaded (else characters are counted; the counter
            never loads a model).
        limit: The tokens the model reads (the recipe's *Tokens to read*; more are cut); None or 0: the loaded
            model's usual limit. Capped at the model's context, as a run caps it.
        context: How far *Tokens to read* may be raised on this page (e.g. the server's ``max_tokens``), capped at
            the model's context: past ``limit``, the line says so. None: the page has no such field (no hint).
    """
    loaded = resources.model_cache().get(model_id) if model_id else None
    waits_key = f"{key}.count_waits"  # (model, runs so far without it): another model starts again from 0
    before = st.session_state.get(waits_key)
    waits = 0 if loaded is not None or not model_id else (before[1] + 1 if before and before[0] == model_id else 1)
    st.session_state[waits_key] = (model_id, waits)
    # ``waits`` changes the data while waiting, so the component function runs again and plans the next send
    data = {"key": key, "pause": PAUSE_MS, "wait": WAIT_MS if 0 < waits <= MAX_WAITS else 0, "waits": waits}
    with st.container(key=CONTAINER, gap=None):  # the component draws nothing: no gap above the line
        state = _mount(key=f"{key}.typed", data=data, on_typed_change=_noop)
        text = _text_now(key, state.get("typed") if state else None)
        n_tokens = _tokens(loaded, text)
        if loaded is not None:  # what a run does with this model: prepare_text's limit, capped at its context
            usual = int(getattr(loaded, "max_tokens", 0) or 0)
            most = max(int(getattr(loaded, "context", 0) or 0), usual)
            limit = (min(int(limit or usual), most) if most else int(limit or usual)) or None
            context = (min(int(context), most) if most else int(context)) if context else None
        st.caption(count_line(n_tokens, len(text.strip()), limit, context))
