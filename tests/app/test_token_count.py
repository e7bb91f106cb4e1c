"""The live token count under the text area, through AppTest (its JavaScript does not run here: a send of the
component is its state, set as the browser would set it)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from dynmask_app.editor.token_counter import CONTAINER, count_line
from dynmask_core.modalities.text import count_tokens

TIMEOUT = 120
KEY = "pg.text"
TYPED = f"{KEY}.typed"  # the component's key: its state is what the browser sent
START = "The weather today is cold, but the coffee is warm."


def _page(model_id, limit, context, load) -> None:
    import streamlit as st

    from dynmask_app.editor.widgets import text_controls
    from dynmask_app.server import runner

    st.session_state.setdefault("pg.text", "The weather today is cold, but the coffee is warm.")
    if load:
        runner.get_model(load)
    text_controls("pg.text", model_id=model_id, limit=limit, context=context)


def _open(model_id: str | None = "minilm", limit: int | None = None, context: int | None = None,
          load: str | None = "minilm") -> AppTest:
    at = AppTest.from_function(_page, args=(model_id, limit, context, load), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _line(at: AppTest) -> str:
    lines = [c.value for c in at.caption if _inside(at, c, CONTAINER)]
    assert len(lines) == 1, lines
    return lines[0]


def _inside(at: AppTest, element, key: str) -> bool:
    """Whether ``element`` lies in the container keyed ``key``."""
    def walk(node, inside: bool) -> bool:
        inside = inside or getattr(node, "key", None) == key
        if node is element:
            return inside
        return any(walk(child, inside) for child in getattr(node, "children", {}).values())

    return walk(at._tree, False)


def _send(at: AppTest, text: str, n: int) -> AppTest:
    """What the component does after a pause in typing: its state ``typed`` becomes ``{text, n}``."""
    at.session_state[TYPED] = {"typed": {"text": text, "n": n}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_committed_text_is_counted_before_anything_is_typed(minilm) -> None:
    at = _open()
    assert _line(at) == f"{count_tokens(minilm, START)} tokens"
    assert at.get("bidi_component")[0].key == TYPED  # the listener is mounted


def test_typed_text_is_counted_then_a_newer_committed_text(minilm) -> None:
    at = _open()
    typed = "A teacher pastes a much longer text here, word after word, and waits."
    _send(at, typed, 1)
    assert _line(at) == f"{count_tokens(minilm, typed)} tokens"
    assert at.text_area(key=KEY).value == START  # nothing was committed: only the count moved
    _send(at, "Short.", 2)
    assert _line(at) == f"{count_tokens(minilm, 'Short.')} tokens"
    # a rerun from elsewhere (the text committed by leaving it, an example picked) counts the committed value,
    # not the last send
    at.text_area(key=KEY).input("Committed by leaving the field.").run()
    assert _line(at) == f"{count_tokens(minilm, 'Committed by leaving the field.')} tokens"
    # the same text typed again afterwards is a new send (its number differs): counted again
    _send(at, "Short.", 3)
    assert _line(at) == f"{count_tokens(minilm, 'Short.')} tokens"


def test_past_the_limit_the_line_says_what_the_model_reads(minilm) -> None:
    long = " ".join(["The class reads a long essay about attention."] * 80)
    n = count_tokens(minilm, long)
    assert n > 512
    at = _send(_open(), long, 1)  # the loaded model's usual limit (MiniLM: 512); no field to raise it
    assert _line(at) == f"{n:,} tokens; the model reads the first 512"
    at = _send(_open(limit=100), long, 1)
    assert _line(at) == f"{n:,} tokens; the model reads the first 100"
    at = _send(_open(limit=100, context=8192), long, 1)  # may be raised: up to MiniLM's own context, not more
    assert _line(at) == f"{n:,} tokens; the model reads the first 100 (raise *Tokens to read* to read up to 512)"
    at = _send(_open(limit=4000, context=8192), long, 1)  # more than MiniLM reads: capped as a run caps it
    assert _line(at) == f"{n:,} tokens; the model reads the first 512"


def test_a_model_not_loaded_yet_counts_characters() -> None:
    at = _open(model_id="no-such-org/not-loaded", load=None)
    assert _line(at) == f"{len(START)} characters"
    at = _send(at, "  four  ", 1)
    assert _line(at) == "4 characters"


def test_without_a_model_id_there_is_no_counter() -> None:
    at = _open(model_id=None, load=None)
    assert not at.get("bidi_component") and not at.caption


def test_count_line() -> None:
    assert count_line(0, 0, 512, 512) == "0 tokens"
    assert count_line(512, 9, 512, 8192) == "512 tokens"
    assert count_line(513, 9, 512, 8192) == "513 tokens; the model reads the first 512 (raise *Tokens to read* to " \
                                            "read up to 8,192)"
    assert count_line(9000, 9, None, None) == "9,000 tokens"
    assert count_line(None, 1, 512, 512) == "1 character"
