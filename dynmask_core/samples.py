"""Bundled sample inputs, by id: the examples offered in the app's picker and the default input of a recipe.

Text samples are short sentences (and one long enough for the 128+ token views). Image and audio samples come with
the image and audio adapters' bundled inputs.
"""

from __future__ import annotations

TEXT_EXAMPLES: dict[str, str] = {
    "Sentiment: a clear positive review": "The film was surprisingly good, and the acting was great.",
    "Sentiment: negation far from its word": "I expected to hate this film, but honestly it was not bad at all.",
    "Sentiment: a clear negative review": "The service was slow, the food was cold, and nobody apologised.",
    "Next token: a fact (try smollm2)": "The capital of France is",
    "Next token: who is 'he'? (try smollm2)": "Alice gave Bob the book because he asked for it. Later, Bob thanked",
    "Two sentences (try the document mask)": "The cat sat on the mat. Then the dog chased it out of the house.",
    "Long paragraph (~150 tokens, model view pooling)": (
        "Attention lets every token look at every other token, which is why transformers read long contexts so "
        "well and also why they get slow: the cost grows with the square of the length. Sparse attention masks "
        "trade a little accuracy for a lot of speed. A sliding window keeps only the neighbours, a dilated window "
        "skips some of them, and global tokens such as the first one connect distant parts of the text. Dynamic "
        "masks go further and decide, for each input, which keys are worth keeping: the largest scores, the same "
        "hash bucket, or the same cluster. In this lab you can apply each of them inside a real model, see the "
        "pattern that was actually used, and measure how much the prediction changed."
    ),
}
DEFAULT_TEXT = next(iter(TEXT_EXAMPLES.values()))
