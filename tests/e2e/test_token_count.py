"""The token count under the Playground's text area follows the text AS IT IS TYPED, in a real browser: no blur,
no Ctrl+Enter; a pasted essay is counted too, and the line says how much of it the model reads."""

from __future__ import annotations

from playwright.sync_api import expect

from dynmask_core.modalities.text import count_tokens
from dynmask_core.samples import DEFAULT_TEXT, TEXT_EXAMPLES
from tests.e2e.harness import EXCEPTION, open_app, pick

#: The count line: the caption in the container keyed ``token_count`` (``st.container(key=...)``).
LINE = '.st-key-token_count [data-testid="stCaptionContainer"]'
SENTENCE = "Attention masks decide which words may look at which other words."
ESSAY = ("A teacher pastes a long essay into the box, and the class watches the attention of every head as the "
         "model reads it, sentence after sentence, word after word. ")


def _expect_line(page, text: str, timeout: float = 30_000) -> None:
    """Waits until the count line reads ``text`` exactly (a timeout says what it read instead)."""
    try:
        page.wait_for_function(
            """([sel, want]) => { const el = document.querySelector(sel);
                                  return !!el && el.innerText.trim() === want; }""",
            arg=[LINE, text], timeout=timeout)
    except Exception as err:  # noqa: BLE001 - the line as it stands is the useful part of the message
        shown = page.locator(LINE).all_inner_texts() if page.locator(LINE).count() else ["(no count line)"]
        raise AssertionError(f"the count line reads {shown!r}, not {text!r}") from err


def _open(page, url: str) -> None:
    """Opens the Playground and checks that the count line is there (field_widget passes the model to
    text_controls)."""
    open_app(page, url)
    try:
        page.wait_for_selector(LINE, timeout=30_000)
    except Exception as err:  # noqa: BLE001 - a clear message instead of a timeout further down
        raise AssertionError("no token count under the text area: field_widget must call text_controls(key, "
                             "\"Text\", model_id=..., limit=..., context=...)") from err


def test_the_count_follows_typing_without_leaving_the_field(app_url, page, minilm):
    _open(page, app_url)
    box = page.get_by_role("textbox", name="Text", exact=True)
    # the first render can show the text area before its value arrives: wait for the default text, not ""
    expect(box).to_have_value(DEFAULT_TEXT, timeout=60_000)
    # before anything is typed: the default text (characters while MiniLM loads, then its tokens)
    _expect_line(page, f"{count_tokens(minilm, DEFAULT_TEXT):,} tokens", timeout=180_000)

    box.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    _expect_line(page, "0 tokens")
    page.keyboard.type(SENTENCE, delay=20)  # key by key; the field keeps the focus throughout
    _expect_line(page, f"{count_tokens(minilm, SENTENCE):,} tokens")
    assert box.input_value() == SENTENCE
    assert page.evaluate("() => document.activeElement && document.activeElement.tagName") == "TEXTAREA"
    assert page.get_by_text("Press Ctrl+Enter to apply").is_visible()  # not committed: only the count moved

    more = " And then some more words."
    box.press_sequentially(more, delay=40)
    _expect_line(page, f"{count_tokens(minilm, SENTENCE + more):,} tokens")
    assert box.input_value() == SENTENCE + more

    # a long text pasted at once (fill sends one input event): counted in full, and the cut is said
    essay = ESSAY * 40
    n = count_tokens(minilm, essay)
    assert n > minilm.max_tokens
    box.fill(essay)
    _expect_line(page, f"{n:,} tokens; the model reads the first {minilm.max_tokens:,}")
    assert box.input_value() == essay
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()[:500]


def test_an_example_picked_after_typing_is_counted(app_url, page, minilm):
    _open(page, app_url)
    box = page.get_by_role("textbox", name="Text", exact=True)
    box.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(SENTENCE, delay=10)
    _expect_line(page, f"{count_tokens(minilm, SENTENCE):,} tokens", timeout=90_000)
    label, example = next(iter(TEXT_EXAMPLES.items()))
    pick(page, "Example sentences", label)  # leaves the field (it commits) and replaces its text
    assert box.input_value() == example
    _expect_line(page, f"{count_tokens(minilm, example):,} tokens")
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()[:500]


def test_a_long_text_for_smollm2_says_how_far_tokens_to_read_goes(app_url, page, smollm2):
    from dynmask_core.models import PRESETS

    _open(page, app_url)
    pick(page, "Model", f"smollm2: {PRESETS['smollm2'].title}")
    box = page.get_by_role("textbox", name="Text", exact=True)
    essay = ESSAY * 120
    n = count_tokens(smollm2, essay)
    assert 2_000 < n < 8_192
    box.fill(essay)
    _expect_line(page, f"{n:,} tokens; the model reads the first 512 (raise Tokens to read to read up to 8,192)",
                 timeout=120_000)  # (*Tokens to read* is in italics)
    reads = page.get_by_role("spinbutton", name="Tokens to read")
    reads.fill("4096")
    reads.press("Enter")  # the editor reruns with the new limit: the whole text is read now
    _expect_line(page, f"{n:,} tokens")
    assert box.input_value() == essay
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()[:500]
