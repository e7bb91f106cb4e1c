"""The words under a result agree with its cards: a probability difference in percentage points, one KL in the same
digits in the card and in the sentence."""

from __future__ import annotations

import re

from dynmask_core import MaskPlan, encode_text, run


def test_cards_and_words_agree(minilm) -> None:
    result = run(minilm, encode_text(minilm, "The film was wonderful, but the ending dragged."),
                 MaskPlan.of("sliding_window", {"radius": 1}))
    base = result.baseline_output
    cards = base.cards(result.output, result.metrics)
    moved = cards[0].delta
    points = result.metrics["prob_delta"][result.output.top1] * 100
    assert moved == f"{points:+.1f} percentage points vs baseline" and "%" not in moved
    kl_card = next(c.value for c in cards if c.label.startswith("KL"))
    sentence = base.describe(result.metrics)
    assert re.search(r"KL = ([0-9.]+) nats", sentence).group(1) == kl_card
