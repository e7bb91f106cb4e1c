"""Plain-words blocks: the strategy explanation, the output numbers and the facts of a run."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dynmask_app import messages
from dynmask_app.i18n import t
from dynmask_app.state import MAX_URL_TEXT, AppState
from dynmask_core.masks import MODES, get_strategy
from dynmask_core.models import PRESETS


def strategy_card(state: AppState, side: str = "main") -> None:
    """Summary, kind, reference and note of each strategy in the recipe, and the apply mode."""
    masks_attention = False
    with st.container(border=True):
        for i, spec in enumerate(state.terms(side)):
            entry = get_strategy(spec.strategy)
            masks_attention = masks_attention or (entry.hide is None and entry.id != "none")
            prefix = "" if i == 0 else f"{spec.op.upper()} "
            st.markdown(f"**{prefix}{t(entry.title)}** `{entry.label(spec.params)}` "
                        f"· *{t(entry.kind)}*{t(' · uses the seed') if entry.uses_seed else ''}")
            st.markdown(t(entry.summary))
            st.caption(t("Reference: {reference}", reference=t(entry.reference)))
            if entry.note:
                st.caption(t("Note: {note}", note=t(entry.note)))
        if not masks_attention:  # input-hiding strategies (and none) leave the scores alone: no mode to speak of
            return
        st.caption(t("Apply mode **{mode}**: {what}", mode=state.mode, what=t(MODES[state.mode]))
                   + (f" beta = {state.beta:g}." if state.mode == "bias" else "")
                   + (t(" Renormalise: {on_off}.", on_off=t("on") if state.renormalize else t("off"))
                      if state.mode == "gate" else ""))


def _kl_words(kl: float) -> str:
    return t("KL divergence measures how far the masked prediction moved from the baseline, in nats: 0 means "
             "identical, below 0.05 small, above 0.5 large. Here it is {kl:.4f}.", kl=kl)  # the digits of the KL card


def output_metrics(result: Any) -> None:
    """The task output's headline numbers (before -> after, how far it moved), then one plain sentence."""
    base, metrics = result.baseline_output, result.metrics
    for col, card in zip(st.columns([3, 3, 2, 2]), base.cards(result.output, metrics)):
        col.metric(metric_label(card), t(card.value), delta=t(card.delta) if card.delta else card.delta,
                   delta_color="off", delta_arrow="off")
    sentence = base.describe(metrics)
    if sentence:
        st.markdown(t("**In words:** {sentence}", sentence=messages.plain(t(sentence))))
    kl = metrics.get(base.kl_key) if base.kl_key else None
    if kl is not None:
        st.caption(_kl_words(kl) + (t(" Cosine compares the sentence embeddings: 1 = same direction.")
                                    if "cosine" in metrics else ""))


def metric_label(card: Any) -> str:
    """A card's label as markdown (metric labels are): the model's own words in it (a class label, a token: its
    ``subject``) shown literally, e.g. ``Baseline: 3:orange`` (``:orange`` would be read as a directive)."""
    label = t(card.label)  # the subject stays at the end of every translation
    if not card.subject or not label.endswith(card.subject):
        return label
    return label.removesuffix(card.subject) + messages.plain(card.subject)


def run_facts(state: AppState, result: Any) -> None:
    """Seed used, sizes, timings, truncation, empty rows."""
    layers, heads, q, k = result.shape
    seed_text = (t("Seed used: **{seed}**", seed=result.seed) if result.plan.mask().uses_seed
                 else t("Seed used: **{seed}** (this recipe has no random part, so the seed changes nothing)",
                        seed=result.seed))
    st.caption(t("{seed_text} · {q} tokens · {layers} layers x {heads} heads · {s:.2f} s for both passes",
                 seed_text=seed_text, q=q, layers=layers, heads=heads, s=result.timings.get("total_s", 0)))
    if result.truncated:
        st.warning((t("The text was cut to {q} tokens (*Tokens to read*).", q=f"{q:,}") if state.max_tokens else
                    t("The text was cut to the model's limit of {q} tokens.", q=q)) if result.kind == "text" else
                   t("The recording is longer than the model hears: only its beginning went in.")
                   if result.kind == "audio" else t("The {kind} was cut to fit the model.",
                                                    kind=t(result.kind)))
    if result.empty_rows:
        st.caption(t("{n} (layer, head, query) rows had no key allowed: their weights are all 0, so those tokens "
                     "received nothing from attention.", n=result.empty_rows))
    if not state.input_in_url:
        st.caption(t("An uploaded file cannot ride in a link: a shared link opens with the default example.")
                   if state.is_upload else
                   t("The text is longer than {n} characters, so it is not in the page address: a shared link opens "
                     "with the default example text.", n=MAX_URL_TEXT))


def answers_note(state: AppState, result: Any) -> None:
    """Under a bundled classifier's output: the only answers it has. It was trained on a closed set (six shapes, ten
    words) and picks one of them whatever it is given, a photo or a sentence included, with no "none of these"."""
    preset = PRESETS.get(state.model)
    labels = getattr(result.output, "labels", ())
    if preset is None or preset.task != "classifier" or not labels:
        return
    listed = ", ".join(messages.plain(str(label)) for label in labels)
    st.caption(f"{t('**This model knows only these {n} answers:**', n=len(labels))} {listed}. "
               + t("It has no answer for “none of these”: whatever it is given (a photo, a sentence, noise), it picks "
                   "one of them, and its percentage does not say that the input is like what it was trained on."))
