"""The step-by-step lesson: one head's attention redone from the model's own Q, K and V, a mask the student edits by
ticking cells, the pitfall (four ways to apply a mask) on the same scores, and a question to check yourself.

Every number comes from the run: :func:`dynmask_core.lessons.steps.inspect_layer` keeps what the layer computed,
:func:`~dynmask_core.lessons.steps.attention_steps` redoes it. The page says how far its weights are from the engine's.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dynmask_app import messages, session
from dynmask_app.editor.widgets import choice
from dynmask_app.i18n import t
from dynmask_app.server import keys, runner
from dynmask_app.state import AppState
from dynmask_app.views import charts
from dynmask_core.lessons.steps import attention_steps, pitfall, strategy_mask
from dynmask_core.viz.lessons import numbers_figure, pitfall_figure

MAX_POSITIONS = 16  # the numbers stay readable up to here; longer inputs are cut for this lesson


def steps_views(state: AppState, result: Any) -> None:
    """The lesson for the active recipe: pick a layer and head, edit the mask, read every step."""
    ns = session.ns_of(state.page)
    layer, head = _pick_view(state, result, ns)
    try:
        keep = runner.inspect_recipe(state, result.plan, layer)
    except ValueError as err:
        messages.error(str(err))
        return
    tokens = [f"{i}:{tok}" for i, tok in enumerate(result.tokens)]
    if len(tokens) > MAX_POSITIONS:
        st.warning(t("This lesson shows at most {n} positions; the input has {m}. Use a shorter text.",
                     n=MAX_POSITIONS, m=len(tokens)))
        return
    mask, edited = _mask_editor(state, result, keep, head, tokens, ns)
    steps = attention_steps(keep, head, tokens, mask)
    _check_line(steps, result, layer, head, edited)
    _show_steps(steps, keep, head, tokens)
    _pitfall(steps, tokens, ns)
    _check_yourself(steps, tokens, ns, layer, head)


def _pick_view(state: AppState, result: Any, ns: str) -> tuple[int, int]:
    layers, heads = result.attention.shape[:2]
    c1, c2 = st.columns(2)
    shown = session.fit_view(state.layer, state.head, layers, heads)
    layer = c1.selectbox(t("Layer"), list(range(layers)), index=shown[0], key=f"{ns}.lesson_layer")
    head = c2.selectbox(t("Head"), list(range(heads)), index=shown[1], key=f"{ns}.lesson_head")
    session.set_view(state.page, int(layer), int(head))
    return int(layer), int(head)


def _mask_editor(state: AppState, result: Any, keep: Any, head: int, tokens: list[str], ns: str
                 ) -> tuple[np.ndarray, bool]:
    """The mask as a grid of ticks (rows: queries, columns: keys), starting from the strategy's; returns it and
    whether the student changed it."""
    start = strategy_mask(keep, head)
    st.subheader(t("Step 4 is yours: the mask"))
    st.caption(t("Ticked = this query (row) may attend to this key (column). It starts as the strategy's mask "
                 "({label}); untick or tick cells and every later step is recomputed. The model's own mask "
                 "(causality, padding) is applied on top.", label=messages.plain(state.label())))
    digest = hashlib.sha1(f"{keys.recipe_key(state, result.plan)}|{keep.layer}|{head}".encode()).hexdigest()[:12]
    key = f"{ns}.mask_{digest}"
    frame = pd.DataFrame(start, index=tokens, columns=tokens)
    edited = st.data_editor(frame, key=key, width="content", disabled=False,
                            column_config={c: st.column_config.CheckboxColumn(c, width="small") for c in tokens})
    mask = np.asarray(edited.to_numpy(), dtype=bool)
    changed = bool((mask != start).any())
    if changed:
        c1, c2 = st.columns(2)
        if c1.button(t("Back to the strategy's mask"), key=f"{ns}.mask_reset"):
            st.session_state.pop(key, None)
            st.rerun()
        c2.button(t("Use my mask as the custom strategy (every layer and head)"), key=f"{ns}.mask_custom",
                  on_click=_use_as_custom, args=(state, mask),
                  help=t("Runs the whole model with this mask in every layer; the link carries it, so the other "
                         "pages can use it too."))
    return mask, changed


def _use_as_custom(state: AppState, mask: np.ndarray) -> None:
    """Makes the edited mask the recipe's strategy (``custom``), in every layer and head."""
    from dataclasses import replace

    from dynmask_app.editor.widgets import load_widgets
    from dynmask_core.masks.custom import encode_matrix

    new = replace(state, strategy="custom", params=(("matrix", encode_matrix(mask)),), op="none",
                  strategy2="none", params2=(), layers=(), heads=())
    load_widgets(session.ns_of(state.page), new, force=True)
    session.activate(new)
    session.need_whole_page()  # the sidebar shows the new recipe


def _check_line(steps: Any, result: Any, layer: int, head: int, edited: bool) -> None:
    engine = result.attention[layer, head].double().numpy()
    if edited:
        n = int((steps.allowed != (engine > 0)).sum())
        st.info(t("You changed the mask: these weights are what the head WOULD compute with your mask "
                  "({n} cells differ from the run with the strategy).", n=n))
    elif result.plan.apply.mode != "hard":
        st.info(t("The run used the {mode} mode; this lesson applies the mask the correct way (hard). The pitfall "
                  "below shows what {mode} does.", mode=result.plan.apply.mode))
    else:
        diff = float(np.abs(steps.weights - engine).max())
        st.success(t("These are the model's own numbers: the weights below equal the engine's run for layer "
                     "{layer}, head {head} (largest difference {diff:.1e}).", layer=layer, head=head, diff=diff))


def _show_steps(steps: Any, keep: Any, head: int, tokens: list[str]) -> None:
    d = steps.q.shape[1]
    dims = [f"d{i}" for i in range(d)]
    st.subheader(t("Steps 1-3: queries, keys, values"))
    st.caption(t("Each position's hidden state is multiplied by three learned matrices. Row i of Q asks 'what am I "
                 "looking for', row j of K says 'what I contain', V holds what is passed on. Head size d = {d}.",
                 d=d))
    for name, matrix in (("Q", steps.q), ("K", steps.k), ("V", steps.v)):
        charts.plotly(numbers_figure(matrix, tokens, dims, f"{name} ({len(tokens)} x {d})", decimals=1),
                    f"step-{name}", f"lesson_{name}")
    st.subheader(t("Step 5: scores, scaling, mask, softmax"))
    cols = charts.columns(2)
    with cols[0]:
        charts.plotly(numbers_figure(steps.scores, tokens, tokens, t("Scores Q·Kᵀ")), "step-scores", "lesson_scores")
        st.caption(t("How well each query matches each key (a dot product)."))
    with cols[1]:
        charts.plotly(numbers_figure(steps.scaled, tokens, tokens, t("Scaled: × 1/√d = × {s:.4f}", s=steps.scale)),
                    "step-scaled", "lesson_scaled")
        st.caption(t("Divided by √d so the softmax does not saturate as d grows."))
    additive = np.where(steps.allowed, 0.0, -np.inf)
    cols = charts.columns(2)
    with cols[0]:
        charts.plotly(numbers_figure(additive, tokens, tokens, t("The mask as numbers: 0 or −∞"), "Greys",
                                   decimals=0), "step-mask", "lesson_mask")
        st.caption(t("Added to the scores: a blocked key's score becomes −∞, so its weight will be exactly 0."))
    with cols[1]:
        charts.plotly(numbers_figure(steps.masked, tokens, tokens, t("Scaled scores + mask")), "step-masked",
                    "lesson_masked")
    cols = charts.columns(2)
    with cols[0]:
        charts.plotly(numbers_figure(steps.weights, tokens, tokens, t("Softmax of each row: the attention weights"),
                                   "Blues", decimals=3, symmetric=False), "step-weights", "lesson_weights")
        st.caption(t("Each row sums to 1 (a row with nothing allowed is all 0)."))
    st.subheader(t("Step 6: the output"))
    charts.plotly(numbers_figure(steps.output, tokens, dims, t("Output: weights × V"), decimals=1), "step-output",
                "lesson_output")
    st.caption(t("Each position's output is the weighted average of the values it attends to."))


def _pitfall(steps: Any, tokens: list[str], ns: str) -> None:
    st.subheader(t("The pitfall: four ways to apply the same mask"))
    blocked_per_row = np.where(steps.allowed.any(axis=1), (~steps.allowed).sum(axis=1), -1)
    q = st.selectbox(t("Query row"), list(range(len(tokens))), index=int(np.argmax(blocked_per_row)),
                     format_func=lambda i: tokens[i], key=f"{ns}.pitfall_row")
    row, mask = steps.scaled[q], steps.allowed[q]
    rows = pitfall(row, mask)
    charts.plotly(pitfall_figure(tokens, rows, t("Query {q}: the same scores, the same mask", q=tokens[q])),
                "pitfall", "lesson_pitfall")
    table = pd.DataFrame({t("key"): tokens, t("allowed"): mask, t("scaled score"): np.round(row, 4),
                          **{name: np.round(v, 4) for name, v in rows.items()}})
    st.dataframe(table, hide_index=True)
    blocked = ~mask
    leak = float(rows["naive_multiply"][blocked].sum()) if blocked.any() else 0.0
    st.markdown(t("**hard** (additive −∞) gives blocked keys exactly 0. **naive_multiply**, softmax(S·M), turns a "
                  "blocked score into 0, not −∞, and e⁰ = 1 is not 0: here the blocked keys keep {leak:.1%} of the "
                  "weight, and a blocked key whose score was negative GAINS weight. **gate** multiplies after the "
                  "softmax: with renormalisation it equals hard; without, the row no longer sums to 1 and the output "
                  "shrinks.", leak=leak))
    st.caption(t("The source article's example: scores [2, 1, 3], mask [1, 1, 0]. Hard: {hard}; naive: {naive}.",
                 hard=_fmt(pitfall([2, 1, 3], [1, 1, 0])["hard"]),
                 naive=_fmt(pitfall([2, 1, 3], [1, 1, 0])["naive_multiply"])))


def _check_yourself(steps: Any, tokens: list[str], ns: str, layer: int, head: int) -> None:
    st.subheader(t("Check yourself"))
    q = len(tokens) - 1
    top = int(np.argmax(steps.weights[q])) if steps.allowed[q].any() else -1
    # the tokens are the options (radio options are markdown: choice() shows them literally, e.g. 3:orange)
    answer = choice("radio", t("Which key does the last query ({q}) attend to most in layer {layer}, head {head}, "
                               "with the mask above?", q=messages.plain(tokens[q]), layer=layer, head=head),
                    tokens, index=None, key=f"{ns}.quiz_{layer}_{head}_{_digest(steps.allowed)}")
    if answer is not None:
        right = tokens[top] if top >= 0 else None
        if answer == right:
            st.success(t("Right: {key} gets {w:.1%} of its attention.", key=messages.plain(right),
                         w=float(steps.weights[q, top])))
        else:
            st.error(t("Not this time: the model gives {key} the most, {w:.1%}. Look at row {q} of the weights.",
                       key=messages.plain(right), w=float(steps.weights[q, top]), q=messages.plain(tokens[q])))
    blocked = int((~steps.allowed).sum())
    guess = st.number_input(t("How many of the {total} cells does the mask above block (the model's own mask "
                              "included)?", total=steps.allowed.size), 0, steps.allowed.size, None,
                            key=f"{ns}.quiz_cells_{_digest(steps.allowed)}")
    if guess is not None:
        if int(guess) == blocked:
            st.success(t("Right: {n} cells get −∞, so exactly 0 weight.", n=blocked))
        else:
            st.error(t("Not this time: {n} cells are blocked. Count the −∞ in the mask step.", n=blocked))


def _fmt(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"



def _digest(mask: np.ndarray) -> str:
    return hashlib.sha1(np.packbits(mask).tobytes()).hexdigest()[:8]
