"""Plain-words blocks: the empty state, the strategy explanation and the output numbers."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dynmask_app.state import AppState
from dynmask_core import describe_change
from dynmask_core.masks import MODES, get_strategy


def empty_state(page: str) -> None:
    """What to do before the first Run."""
    if page == "compare":
        st.info("**Nothing to compare yet.** In the sidebar: type or pick a text, choose strategy A and strategy B, "
                "then press **Run**. Both run on the same input, drawn on the same colour scales, with their "
                "difference and per-layer numbers. For a dynamic strategy, **Re-draw** draws a new seed: watch "
                "the dynamic pattern change while the static one stays put.")
        return
    st.info("**Start here.** In the sidebar: 1. type a sentence or pick an example, 2. choose a model, "
            "3. choose a mask strategy and its parameters (optionally combine two), 4. press **Run**.\n\n"
            "The model then runs twice, without and with your mask, and you see the mask it actually applied, "
            "the attention weights, how they changed, and how much the prediction moved. "
            "Every setting goes into the page address: copy it to share the exact run.")


def strategy_card(state: AppState, side: str = "main") -> None:
    """Summary, kind, reference and note of each strategy in the recipe, and the apply mode."""
    with st.container(border=True):
        for i, spec in enumerate(state.terms(side)):
            entry = get_strategy(spec.strategy)
            prefix = "" if i == 0 else f"{spec.op.upper()} "
            st.markdown(f"**{prefix}{entry.title}** `{entry.label(spec.params)}` "
                        f"· *{entry.kind}*{' · uses the seed' if entry.uses_seed else ''}")
            st.markdown(entry.summary)
            st.caption(f"Reference: {entry.reference}")
            if entry.note:
                st.caption(f"Note: {entry.note}")
        st.caption(f"Apply mode **{state.mode}**: {MODES[state.mode]}"
                   + (f" beta = {state.beta:g}." if state.mode == "bias" else "")
                   + (f" Renormalise: {'on' if state.renormalize else 'off'}." if state.mode == "gate" else ""))


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _kl_words(kl: float) -> str:
    return ("KL divergence measures how far the masked prediction moved from the baseline, in nats: "
            "0 means identical, below 0.05 small, above 0.5 large. "
            f"Here it is {kl:.4g}.")


def output_metrics(result: Any) -> None:
    """Top prediction before -> after, KL, cosine or top-5 overlap, seed; then one plain sentence."""
    out, base, m = result.outputs, result.baseline_outputs, result.metrics
    cols = st.columns([3, 3, 2, 2])
    if "probs" in out:
        top = out["top1"]
        cols[0].metric(f"With the mask: {top}", _pct(out["probs"][top]),
                       delta=f"{m['prob_delta'][top]:+.1%} vs baseline", delta_color="off", delta_arrow="off")
        cols[1].metric(f"Baseline: {base['top1']}", _pct(base["probs"][base["top1"]]))
        cols[2].metric("KL(baseline ‖ masked)", f"{m['kl']:.4f}")
        if "cosine" in m:
            cols[3].metric("Embedding cosine", f"{m['cosine']:.4f}")
    elif "top5" in out:
        cols[0].metric(f"Next token with the mask: {out['top1']!r}", _pct(out["top5"][0]["prob"]),
                       delta="changed" if m.get("top1_changed") else "same as baseline", delta_color="off",
                       delta_arrow="off")
        cols[1].metric(f"Baseline next token: {base['top1']!r}", _pct(base["top5"][0]["prob"]))
        cols[2].metric("KL(baseline ‖ masked)", f"{m['next_token_kl']:.4f}")
        cols[3].metric("Top-5 tokens in common", f"{m['top5_overlap']} of 5")
    elif "cosine" in m:  # a plain encoder: only the pooled embedding to compare
        cols[0].metric("Embedding cosine (baseline vs masked)", f"{m['cosine']:.4f}")
        cols[1].metric("Embedding size", str(out.get("embedding_dim", "?")))
    kl = m.get("kl", m.get("next_token_kl"))
    sentence = describe_change(m)
    if sentence:
        st.markdown(f"**In words:** {sentence}")
    if kl is not None:
        st.caption(_kl_words(kl) + (" Cosine compares the sentence embeddings: 1 = same direction."
                                    if "cosine" in m else ""))


def run_facts(state: AppState, result: Any) -> None:
    """Seed used, sizes, timings, truncation, empty rows."""
    layers, heads, q, k = result.attention.shape
    seed_text = (f"Seed used: **{result.seed}**" if result.plan.mask().uses_seed
                 else f"Seed used: **{result.seed}** (this recipe has no random part, so the seed changes nothing)")
    st.caption(f"{seed_text} · {q} tokens · {layers} layers x {heads} heads · "
               f"{result.timings.get('total_s', 0):.2f} s for both passes")
    if result.truncated:
        st.warning(f"The text was cut to the model's limit of {q} tokens.")
    if result.empty_rows:
        st.caption(f"{result.empty_rows} (layer, head, query) rows had no key allowed: their weights are all 0, "
                   "so those tokens received nothing from attention.")
    if not state.text_in_url:
        st.caption("The text is longer than 1000 characters, so it is not in the page address: a shared link "
                   "opens with the default example text.")
