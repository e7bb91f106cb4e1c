"""What counts as English left on a page shown in Chinese: the one rule of the Chinese-page tests (AppTest and the
real browser).

An *English sentence* is three or more consecutive ASCII words of two or more letters (``The top prediction``,
``key (attended to)``), separated by spaces or punctuation, found after the page's literal values are taken out:
what a student typed or picked and what a model, a link or a file says stays as it is in every language. Those
literals are few and listed here (:func:`literals` and :data:`PATTERNS`):

* the input text (a text input is shown in the text area, in the lesson's own words and in the token labels);
* tokens and other values shown as such: ``3:orange``, ``[CLS]``, anything in straight quotes (``'positive'``,
  ``' Paris'``: a value's ``repr``), identifiers with an underscore or a dot (``sliding_window``,
  ``pydoc_data.topics``, Material icon names such as ``keyboard_arrow_down``), paths and ids with a slash
  (``org/model-name``), ids of three or more parts (``en-gb-scotland+Annie``, ``SmolLM2-135M-Instruct``), what a
  Chinese text quotes in “…” (a word or a recording's words, as said), ``<...>`` placeholders, and ``code``
  elements and text set in a monospace font (tokens written out, as the MLM lab's ``the cat sat [MASK] the mat``:
  taken out by the callers, their text is a value or a command);
* the lists of ids a message names (every strategy id, every sample id of a kind) and the bundled models' class
  labels (``circle, square, triangle``: the model's own words);
* cited works as published: each strategy's ``reference`` (authors and paper titles) and ``Name et al.``;
* proper names of models and data that are several words: :data:`NAMES`;
* Streamlit's own words in its file uploader (``200MB per file``), which the app does not write.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache

from tests import ROOT

#: Two or more ASCII letters (an apostrophe inside: ``model's``).
_WORD = r"[A-Za-z][A-Za-z']*[A-Za-z]"
#: Three such words in a row, with nothing but spaces and ASCII punctuation between them.
SENTENCE = re.compile(rf"{_WORD}(?:[\s,;:()\[\]/&+.!?\"-]+{_WORD}){{2,}}")

#: Values shown literally, as patterns: tokens with their position and special tokens, quoted values (a ``repr``),
#: identifiers with an underscore or a dot, paths and ids with a slash, placeholders, citations' "et al.".
PATTERNS = (
    re.compile(r"\d+:\S+"),
    re.compile(r"\[[A-Z]+\]"),
    re.compile(r"\S*\w/\w\S*"),
    re.compile(r"\b\w+(?:[-+]\w+){2,}"),
    re.compile(r"“[^”\n]{0,80}”"),
    re.compile(r"'[^'\n]{0,80}'"),
    re.compile(r"\b[\w-]*[A-Za-z][\w-]*(?:[_.][\w-]+)+\b"),
    re.compile(r"<[^<>\n]{0,40}>"),
    re.compile(r"\b[A-Z][a-z]+ et al\."),
    re.compile(r"\b\d+(?:\.\d+)?\s?[KMG]B per file"),  # Streamlit's own uploader line ("200MB per file • CSV")
)

#: Proper names of several words that a Chinese page keeps as they are (a model family, a paper's method).
NAMES = ("Hugging Face", "Attention Is All You Need")


@cache
def _class_labels() -> tuple[str, ...]:
    """The class labels of the bundled models, each model's as one comma-separated list and one by one."""
    out: list[str] = []
    for config in sorted((ROOT / "assets" / "models").glob("*/config.json")):
        labels = [str(v) for v in (json.loads(config.read_text()).get("id2label") or {}).values()]
        if labels:
            out += [", ".join(labels), ", ".join(labels[:12]) + " …"]
    for listed in sorted((ROOT / "assets" / "models").glob("*/labels.json")):
        labels = json.loads(listed.read_text())
        labels = list(labels.values()) if isinstance(labels, dict) else list(labels)
        out.append(", ".join(map(str, labels)))
    return tuple(out)


@cache
def _registry_literals() -> tuple[str, ...]:
    """Lists of ids and cited works, from the core's registries."""
    from dynmask_core.masks import strategies
    from dynmask_core.samples import samples

    entries = strategies()
    out = [", ".join(e.id for e in entries), *(e.reference for e in entries if e.reference)]
    for kind in ("text", "image", "audio"):
        out.append(", ".join(s.id for s in samples(kind)))
    return tuple(out)


def chart_text(text: str) -> str:
    """A chart's text as words: plotly's ``%{...}`` placeholders, its ``<br>`` and other tags and HTML entities out
    (a hover template ``query %{y}<br>key %{x}`` reads ``query key``)."""
    text = re.sub(r"%\{[^}]*\}", " ", str(text))
    text = re.sub(r"<[^>]*>", " ", text)
    return re.sub(r"&\w+;|&#\d+;", " ", text)


def literals(inputs: Iterable[str] = ()) -> list[str]:
    """The literal strings to take out of a page before looking for English: ``inputs`` (the page's input text),
    the registries' id lists and citations, the bundled models' class labels and :data:`NAMES`; longest first."""
    found = [s for s in (*inputs, *_registry_literals(), *_class_labels(), *NAMES) if s and s.strip()]
    return sorted(set(found), key=len, reverse=True)


def strip_literals(text: str, allowed: Iterable[str]) -> str:
    """``text`` with every allowed literal and every :data:`PATTERNS` match replaced by a mark that breaks a run."""
    for literal in allowed:
        text = text.replace(literal, " ¦ ")
    for pattern in PATTERNS:
        text = pattern.sub(" ¦ ", text)
    return text


def english_sentences(text: str, allowed: Iterable[str] = ()) -> list[str]:
    """The English sentences left in ``text`` once the literals are out (see the module's rule)."""
    return [m.group(0) for m in SENTENCE.finditer(strip_literals(text, list(allowed)))]


def offenders(items: Iterable[tuple[str, str]], allowed: Iterable[str] = ()) -> list[str]:
    """``"where: sentence  (in: line)"`` for every English sentence in ``(where, text)`` items, line by line."""
    allowed = list(allowed)
    out = []
    for where, text in items:
        for line in str(text).splitlines():
            for sentence in english_sentences(line, allowed):
                out.append(f"{where}: {sentence!r}  (in: {line.strip()[:160]!r})")
    return out
