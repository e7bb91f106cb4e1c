"""The attention-sinks lesson: a causal LM parks much of its attention on the first token; a sliding window that
drops it breaks the prediction, and keeping it as a sink (``sliding_window(sinks=1)``) brings most of it back.

The page runs the recipe's window twice on the real model, without and with the first token as a sink, next to the
unmasked run (Xiao et al., "Efficient Streaming Language Models with Attention Sinks", ICLR 2024).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dynmask_app import messages, session
from dynmask_app.editor.widgets import choice
from dynmask_app.i18n import t, translate
from dynmask_app.server import runner
from dynmask_app.state import AppState
from dynmask_app.views import charts
from dynmask_core.viz import inert


def sinks_views(state: AppState, result: Any) -> None:
    """The lesson for the active recipe (a window on a causal LM)."""
    ns = session.ns_of(state.page)
    if state.strategy != "sliding_window":
        st.warning(t("This lesson compares a sliding window with and without a sink: pick sliding_window in the "
                     "sidebar."))
        return
    params = dict(state.params)
    with_sink = replace(state, params=tuple(sorted({**params, "sinks": max(1, int(params.get("sinks", 0)))}.items())))
    without = replace(state, params=tuple(sorted({**params, "sinks": 0}.items())))
    try:
        runs = {name: runner.run_recipe(s, s.plan().resolved()) for name, s in (("window", without),
                                                                                ("window + sink", with_sink))}
    except ValueError as err:
        messages.error(str(err))
        return
    _attention_to_first(result)
    _predictions(runs, result)
    _check_yourself(runs, ns)


def _attention_to_first(result: Any) -> None:
    st.subheader(t("1. Where the attention goes without any mask"))
    base = result.baseline_attention  # (L, H, Q, K)
    share = base[:, :, 1:, 0].mean(dim=(1, 2)).numpy()  # every query but the first: weight on token 0
    fig = go.Figure(go.Bar(x=[f"L{i}" for i in range(len(share))], y=np.round(share, 4), marker_color="#1f4e99",
                           hovertemplate="%{x}: %{y:.1%}<extra></extra>"))
    fig.update_layout(title={"text": inert(t("Share of attention on the first token ({tok}), per layer",
                                             tok=result.tokens[0])), "x": 0.0},
                      yaxis={"tickformat": ".0%", "range": [0, 1]}, height=320,
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, font={"size": 14})
    charts.plotly(fig, "sink-share", "sink_share")
    st.caption(t("Averaged over heads and over every query after the first. A token that receives this much "
                 "attention while carrying little meaning is an attention sink: the softmax must put its weight "
                 "somewhere, and the first token, visible to every query, takes it."))


def _predictions(runs: dict[str, Any], result: Any) -> None:
    st.subheader(t("2. The same window, without and with the first token kept"))
    base = result.baseline_output
    rows = []
    best = base.top(1)[0]
    for name, run in (("unmasked", None), *runs.items()):
        out = base if run is None else run.output
        top = out.top(1)[0]
        rows.append({t("run"): t(name), t("next token"): repr(top["token"]), t("its probability"): f"{top['prob']:.1%}",
                     t("probability of {tok}", tok=repr(best["token"])): f"{float(out.probs[best['id']]):.2%}",
                     t("KL to unmasked (nats)"): "" if run is None else f"{run.metrics.get('next_token_kl', 0):.3f}"})
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    kl = {name: run.metrics.get("next_token_kl", 0.0) for name, run in runs.items()}
    st.markdown(t("Dropping the first token costs **{a:.2f}** nats of KL; keeping it as a sink, **{b:.2f}**. The "
                  "window is otherwise the same: what came back is the sink, not the words.",
                  a=kl["window"], b=kl["window + sink"]))
    st.caption(t("StreamingLLM (Xiao et al., ICLR 2024) keeps the first 4 tokens next to a window for this reason. "
                 "On a very short prompt the window may drop only the first token, and the sink then restores "
                 "the prediction exactly."))


def _check_yourself(runs: dict[str, Any], ns: str) -> None:
    st.subheader(t("Check yourself"))
    answer = choice("radio", t("With the first token kept as a sink, is the top-1 next token the unmasked model's "
                               "again?"), ["yes", "no"], label_of=translate, index=None, key=f"{ns}.sink_quiz")
    if answer is None:
        return
    back = not runs["window + sink"].metrics.get("top1_changed", True)
    if (answer == "yes") == back:
        st.success(t("Right: the run says {yes_no}.", yes_no=t("yes") if back else t("no")))
    else:
        st.error(t("Not this time: the run says {yes_no}. Compare the table's first column.",
                   yes_no=t("yes") if back else t("no")))
