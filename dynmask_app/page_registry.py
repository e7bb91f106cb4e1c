"""Every page of the app, declared once: id, file, titles, the runs it shows (sides), its default recipe, its views.

Adding a page touches this list and the page's own file (a few lines calling :func:`dynmask_app.page.render_page`).
Navigation, links (``page=``), session namespaces and defaults all read from here.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any


@dataclass(frozen=True)
class PageSpec:
    """One page.

    Attributes:
        id: The ``page=`` value in links.
        file: Script path, relative to the repository root.
        ns: Prefix of the page's keys in ``st.session_state``.
        nav: Label in the navigation; icon: its emoji.
        tab: Short name for the browser tab; title: the page heading; caption: one line under it.
        sides: The runs it shows: ``("main",)`` (one recipe, optionally two strategies joined) or ``("a", "b")``.
        defaults: Recipe fields that differ from the recipe's own defaults when a link says nothing.
        views: ``"module:function"`` drawing the results, called as ``views(state, *results)``.
        empty: What to do before the first Run (markdown).
        quick_run: A Run reruns the results area alone (a fragment: the sidebar is not rebuilt, resent or
            redrawn). Off where the results hold a control that must stop a computation in progress (a click in a
            fragment waits for the run under way instead of interrupting it), e.g. the attribution's Cancel.
    """

    id: str
    file: str
    ns: str
    nav: str
    icon: str
    tab: str
    title: str
    caption: str
    sides: tuple[str, ...]
    views: str
    empty: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    quick_run: bool = True

    def view_function(self) -> Callable[..., None]:
        """The views callable (imported on first use: views import Streamlit and the recipe)."""
        module, _, name = self.views.partition(":")
        return getattr(importlib.import_module(module), name)


PAGES: dict[str, PageSpec] = {p.id: p for p in (
    PageSpec(
        id="playground", file="app.py", ns="pg", nav="Playground", icon="🎛️", tab="Playground",
        title="Attention masks, inside a real model",
        caption="Pick a text, a model and a mask strategy, then press Run. The model runs with and without your "
                "mask; everything you see is what the model actually used.",
        sides=("main",), views="dynmask_app.views.playground:result_views",
        defaults={"strategy": "sliding_window", "op": "none", "strategy2": "none"},
        empty="**Start here.** In the sidebar: 1. type a sentence or pick an example, 2. choose a model, "
              "3. choose a mask strategy and its parameters (optionally combine two), 4. press **Run**.\n\n"
              "The model then runs twice, without and with your mask, and you see the mask it actually applied, "
              "the attention weights, how they changed, and how much the prediction moved. "
              "Every setting goes into the page address: copy it to share the exact run.",
    ),
    PageSpec(
        id="compare", file="pages/1_Compare.py", ns="cmp", nav="Compare two strategies", icon="⚖️", tab="Compare",
        title="Compare two strategies",
        caption="Same text, same model, two masks. A static mask depends only on sizes; a dynamic one on the input, "
                "the scores or a seed.",
        sides=("a", "b"), views="dynmask_app.views.compare:compare_views",
        defaults={"strategy": "sliding_window", "op": "none", "strategy2": "random_dynamic"},
        empty="**Nothing to compare yet.** In the sidebar: type or pick a text, choose strategy A and strategy B, "
              "then press **Run**. Both run on the same input, drawn on the same colour scales, with their "
              "difference and per-layer numbers. For a dynamic strategy, **Re-draw** draws a new seed: watch "
              "the dynamic pattern change while the static one stays put.",
    ),
)}
PAGES["attribution"] = PageSpec(
    id="attribution", file="pages/2_Attribution.py", ns="attr", nav="Attribution", icon="🔍", tab="Attribution",
    title="What did the prediction depend on?",
    caption="Attention shows where a model looked; attribution shows what its prediction depended on. Both runs, "
            "with and without your mask, explain the same number, on one colour scale.",
    sides=("main",), views="dynmask_app.views.attribution:attribution_views",
    defaults={"strategy": "sliding_window", "op": "none", "strategy2": "none"},
    empty="**Start here.** In the sidebar: pick an input, a model and a mask strategy, then under **What to "
          "explain** a method (integrated gradients is a good first choice) and a target (`predicted` explains "
          "the unmasked model's prediction), and press **Run**.\n\nYou get, for the masked and the unmasked model, "
          "how much each word, patch or moment of sound pushed the target up (blue) or down (red), their "
          "difference, which heads the prediction leans on, and a button that switches the least important "
          "heads off.",
    quick_run=False,  # its Cancel button must interrupt the attribution under way
)
PAGES["steps"] = PageSpec(
    id="steps", file="pages/3_Step_by_step.py", ns="steps", nav="Attention step by step", icon="🧮",
    tab="Step by step", title="Attention, step by step",
    caption="One layer and one head of a real model: Q, K, V, the scores, the scaling, the mask, the softmax and the "
            "output, with the numbers the model used. Edit the mask and watch every later step change.",
    sides=("main",), views="dynmask_app.views.steps:steps_views",
    defaults={"strategy": "causal", "op": "none", "strategy2": "none", "input_ref": "apple banana orange"},
    empty="**Start here.** The sidebar holds the source article's own example, the three words *apple banana "
          "orange*, with a causal mask. Press **Run**: the model runs, and you see how one head of one layer turns "
          "its queries and keys into attention weights, step by step. Then change the mask by ticking cells.",
)
PAGES["sinks"] = PageSpec(
    id="sinks", file="pages/4_Attention_sinks.py", ns="sinks", nav="Lesson: attention sinks", icon="⚓",
    tab="Attention sinks", title="Attention sinks: why windows keep the first token",
    caption="A causal language model parks much of its attention on the first token. A sliding window that drops "
            "it breaks the prediction; keeping that one token brings most of it back.",
    sides=("main",), views="dynmask_app.views.sinks:sinks_views",
    defaults={"model": "smollm2", "input_ref": "The capital of France is", "strategy": "sliding_window",
              "params": (("radius", 3),), "op": "none", "strategy2": "none"},
    empty="**Start here.** The sidebar holds SmolLM2, the prompt *The capital of France is* and a sliding window "
          "of radius 3. Press **Run**: you see how much attention goes to the first token, then the next-token "
          "prediction with the window, and with the same window plus the first token kept as a sink. Try a "
          "longer prompt and other radii.",
)
#: Pages without an attention-mask recipe (their own settings ride in their links): (file, navigation label, icon).
OTHER_PAGES: tuple[tuple[str, str, str], ...] = (
    ("pages/5_MLM_lab.py", "Lesson: static vs dynamic MLM masking", "🎭"),
)
#: The ``page=`` value of each page in :data:`OTHER_PAGES` (their own links carry it): id -> file.
OTHER_PAGE_IDS: dict[str, str] = {"mlm": "pages/5_MLM_lab.py"}
DEFAULT_PAGE = "playground"


def page(page_id: str) -> PageSpec:
    """The page declared with ``page_id`` (KeyError for an unknown id; links are checked before)."""
    return PAGES[page_id]


def url_path(file: str) -> str:
    """A page's address under the app's root, as Streamlit derives it from the file name: ``""`` for ``app.py``
    (the main page), ``"Step_by_step"`` for ``pages/3_Step_by_step.py`` (the number that orders it dropped)."""
    return "" if file == PAGES[DEFAULT_PAGE].file else re.sub(r"^\d+[_ -]*", "", PurePosixPath(file).stem)


def every_page() -> list[tuple[str, str, str]]:
    """``(page= id, file, navigation label)`` of every page, in the navigation's order."""
    nav = {file: label for file, label, _ in OTHER_PAGES}
    return [(p.id, p.file, p.nav) for p in PAGES.values()] + [(i, f, nav[f]) for i, f in OTHER_PAGE_IDS.items()]
