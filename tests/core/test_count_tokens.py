"""count_tokens: the token count the Playground shows while a text is typed equals what a run tokenises."""

from __future__ import annotations

import threading

import pytest

from dynmask_core.modalities import MAX_CHARS, encode_text
from dynmask_core.modalities.text import count_tokens

SHORT = "The weather today is cold, but the coffee is warm."
PARAGRAPH = ("A teacher pastes a long essay into the box, and the class watches the attention of every head as the "
             "model reads it, sentence after sentence, word after word. ")


def _long_text(loaded, tokens: int = 3000) -> str:
    text = PARAGRAPH
    while count_tokens(loaded, text) < tokens:
        text += PARAGRAPH
    return text


@pytest.mark.parametrize("which", ["smollm2", "minilm"])
def test_count_equals_the_tokens_a_run_gets(which, request):
    loaded = request.getfixturevalue(which)
    for text in (SHORT, f"  \n{SHORT}\n\n"):
        n = count_tokens(loaded, text)
        assert n == len(encode_text(loaded, text, max_tokens=100000).labels) > 5


def test_long_text_counts_past_the_token_limit(smollm2):
    text = _long_text(smollm2)
    n = count_tokens(smollm2, text)
    assert 3000 <= n < 3100
    assert n > smollm2.max_tokens  # past the default cut: the count is what comes before it
    assert n == len(encode_text(smollm2, text, max_tokens=100000).labels)
    assert n == encode_text(smollm2, text).n_before  # what a default run reports as cut from
    assert len(encode_text(smollm2, text).labels) == smollm2.max_tokens  # ...and counting left its cut alone


def test_empty_text_is_zero(smollm2, minilm):
    for loaded in (smollm2, minilm):
        assert count_tokens(loaded, "  ") == 0
        assert count_tokens(loaded, "") == 0
        assert count_tokens(loaded, None) == 0


def test_text_is_cut_to_max_chars(smollm2):
    text = "word " * (MAX_CHARS // 5 + 2000)
    n = count_tokens(smollm2, text)
    assert n == encode_text(smollm2, text).n_before
    assert n < len(smollm2.tokenizer(text.strip())["input_ids"])  # what lies past MAX_CHARS is not counted


def test_counting_waits_for_the_processor_lock(smollm2):
    """The tokenizer is shared by every session: counting runs under the model's processor lock."""
    done = threading.Event()
    counted: list[int] = []

    def count() -> None:
        counted.append(count_tokens(smollm2, SHORT))
        done.set()

    with smollm2.processor_lock:
        worker = threading.Thread(target=count, daemon=True)
        worker.start()
        assert not done.wait(0.3), "count_tokens ran without the processor lock"
    worker.join(30)
    assert counted == [len(encode_text(smollm2, SHORT).labels)]


def test_a_model_without_tokenizer_says_so():
    class NoText:
        id = "vit"
        tokenizer = None
        processor_lock = threading.Lock()

    with pytest.raises(ValueError, match="no tokenizer"):
        count_tokens(NoText(), "hello")
