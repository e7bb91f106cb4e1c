"""The Attribution page's views: overlays on the input (masked, unmasked, difference), the honesty numbers, scores
per position, head importance with one-click pruning, downloads.

The attribution is computed here (not in :mod:`results`): it comes after the run, with a progress bar and a Cancel
button, and is cached by the full recipe (method, target and steps included) like a run.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
import streamlit as st

from dynmask_app import kinds, messages, session
from dynmask_app.editor.widgets import load_widgets
from dynmask_app.i18n import error_text, t, translator
from dynmask_app.server import keys, resources, runner
from dynmask_app.state import AppState
from dynmask_app.views import audio as audio_views
from dynmask_app.views import charts
from dynmask_app.views import image as image_views
from dynmask_app.views.downloads import download_button
from dynmask_core import export
from dynmask_core.analysis.rollout import on_grid
from dynmask_core.attribution import DELTA_WARN, MAX_STEPS, AttributionResult, get_method, least_important
from dynmask_core.masks.base import format_pairs, parse_pairs
from dynmask_core.modalities.audio import FRAME_SHIFT_S
from dynmask_core.viz import attribution as viz

log = logging.getLogger(__name__)
_KEYS = {"masked": "With the mask", "unmasked": "Without the mask", "diff": "Masked minus unmasked"}  # chart keys


def attribution_views(state: AppState, result: Any) -> None:
    """Everything below the run: compute (or fetch) the attribution, then draw it."""
    ns = session.ns_of(state.page)
    method = get_method(state.attr_method)
    st.markdown(t("**{title}.** {help}", title=t(method.title), help=t(method.help)))
    attr = _compute(state, result, ns)
    if attr is None:
        return
    what = t(attr.target.describe())
    st.info(t("Attribution splits one number, the **{what}**, among the input's positions: blue pushed it up, red "
              "pushed it down. It tells what this prediction depended on in this model; it does not say why, nor what "
              "a person would find important, and two methods can disagree: compare them.",
              what=messages.plain(what)))
    honesty(attr, result)
    scale = viz.symmetric_scale(attr.masked.positions, attr.baseline.positions)
    views = kinds.kind_views(attr.kind)
    if views.attribution:
        kinds.view(views.attribution)(state, result, attr, ns, scale)
    with st.expander(t("Scores per position (masked, unmasked, difference)"), expanded=views.scores_open):
        title = t("{method}: {what}", method=t(get_method(attr.method).title), what=what)
        charts.plotly(viz.positions_figure(attr.positions, {"masked": attr.masked.positions,
                                                            "unmasked": attr.baseline.positions}, title,
                                           t("attribution")),
                      "attribution-positions", "attr_pos")
        charts.plotly(viz.positions_figure(attr.positions, {"difference": attr.masked.positions
                                                            - attr.baseline.positions},
                                           t("Masked minus unmasked"), t("attribution")),
                      "attribution-difference", "attr_diff")
    _heads(state, result, ns)
    _downloads(state, result, attr)


# ------------------------------------------------------------------------------------------------ computing


def _compute(state: AppState, result: Any, ns: str) -> AttributionResult | None:
    """The attribution (cached), computed under a progress bar with a Cancel button; None when cancelled/failed."""
    key = keys.attribution_key(state, result.plan)
    if st.session_state.get(f"{ns}.attr_cancel"):  # Cancel was clicked: that click stopped the computation
        st.session_state[f"{ns}.attr_cancelled"] = key
    hit = resources.result_cache().get(key)
    if hit is None and st.session_state.get(f"{ns}.attr_cancelled") == key:
        st.warning(t("The attribution was cancelled. Lower the steps or pick a faster method in the sidebar, or "
                     "start it again."))
        if st.button(t("Compute the attribution"), key=f"{ns}.attr_restart"):
            st.session_state.pop(f"{ns}.attr_cancelled", None)
            st.rerun()
        return None
    box = st.empty()
    try:
        if hit is not None:
            return hit
        with box.container():
            bar = st.progress(0.0, text=t("{method}: starting...", method=t(get_method(state.attr_method).title)))
            st.button(t("Cancel"), key=f"{ns}.attr_cancel", help=t("Stops the computation; nothing is kept."))

        def progress(fraction: float, what: str) -> None:
            bar.progress(min(1.0, fraction), text=t("{what}: {share:.0%} (masked model, then unmasked)", what=t(what),
                                                    share=fraction))

        return runner.attribute_recipe(state, result.plan, progress)
    except ValueError as err:
        messages.error(error_text(err))
    except Exception as err:  # noqa: BLE001 - one line for the user, the traceback in the log
        log.exception("attribution failed")
        messages.error(t("Something went wrong while attributing: {error}",
                         error=f"{type(err).__name__}: {str(err)[:300]}"))
    finally:
        box.empty()
    return None


def _miss_advice(share: float, steps: int) -> str:
    """What to do when the parts miss the change by more than :data:`DELTA_WARN`. More steps help only where the
    path from the neutral input is smooth: on SmolLM2 with a sliding window, "who is 'he'?" still missed by 1493% at
    512 steps (masked side), so the advice says what to conclude when raising the steps does not help."""
    if steps < MAX_STEPS:
        return t("The parts miss the change by {share}: raise the integration steps (now {steps}, at most {max}) for "
                 "a faithful split. If the miss stays large, the path from the neutral input is too rough for "
                 "integrated gradients on this model: read the picture as a rough guide.", share=f"{share:.0%}",
                 steps=steps, max=MAX_STEPS)
    return t("The parts miss the change by {share} even at {steps} integration steps, the most there are: the path "
             "from the neutral input is too rough for integrated gradients on this model, so read the picture as a "
             "rough guide.", share=f"{share:.0%}", steps=steps)


def honesty(attr: AttributionResult, result: Any) -> None:
    """The numbers that say how far to trust the picture: target values, steps, convergence delta."""
    m, b = attr.masked, attr.baseline
    cols = st.columns(4)
    cols[0].metric(t("Target, masked model"), f"{m.score:.4f}")
    cols[1].metric(t("Target, unmasked model"), f"{b.score:.4f}")
    if attr.method == "ig":
        cols[2].metric(t("Integration steps"), str(attr.steps))
        rel = [s.relative_delta() for s in (m, b)]
        share = t("almost no change to explain") if rel[0] is None else t("{share} of the change",
                                                                            share=f"{rel[0]:.1%}")
        cols[3].metric(t("Convergence delta (masked)"), f"{m.delta:+.1e}", share, delta_color="off")
        st.caption(t(
            "Completeness: integrated gradients share out the change of the target from the neutral input (padding / "
            "mean colour / silence) to this one. Masked: the parts add up to {m_sum:+.4f} for a change of "
            "{m_change:+.4f} (delta {m_delta:+.1e}); unmasked: {b_sum:+.4f} for {b_change:+.4f} (delta "
            "{b_delta:+.1e}). {steps} steps, Gauss-Legendre.", m_sum=m.positions.sum(),
            m_change=m.score - m.reference_score, m_delta=m.delta, b_sum=b.positions.sum(),
            b_change=b.score - b.reference_score, b_delta=b.delta, steps=attr.steps))
        measured = [r for r in rel if r is not None]
        if len(measured) < len(rel):
            st.info(t("The target barely changes from the neutral input to this one ({changes}): there is almost "
                      "nothing to share out, so the scores are near zero and their share of the change says nothing.",
                      changes=", ".join(f"{s.change:+.1e}" for s in (m, b) if s.relative_delta() is None)))
        if measured and max(measured) > DELTA_WARN:
            st.warning(_miss_advice(max(measured), attr.steps))
    elif attr.method == "attention_attribution":
        worst = max(abs(d) for d in [*m.layer_deltas, *b.layer_deltas])
        cols[2].metric(t("Integration steps"), str(attr.steps))
        cols[3].metric(t("Largest per-layer delta"), f"{worst:.1e}", delta_color="off")
        st.caption(t("Per layer, the attributions of its attention weights should add up to the change of the target "
                     "when that layer's weights go from 0 to their value; the largest miss over layers and both "
                     "models is shown."))
    else:
        cols[2].metric(t("Method"), attr.method)
        cols[3].metric(t("Computed in"), f"{attr.seconds:.1f} s")
    if attr.hidden:
        st.caption(t("{n} positions were hidden from the masked model's input by the input mask; its attribution is "
                     "over what it saw.", n=len(attr.hidden)))


# ------------------------------------------------------------------------------------------------ overlays


def on_text(state: AppState, result: Any, attr: AttributionResult, ns: str, scale: float) -> None:
    """The scores on the tokens: masked, unmasked (one scale) and their difference."""
    diff = attr.masked.positions - attr.baseline.positions
    diff_scale = viz.symmetric_scale(diff)
    # st.html, not markdown: the tokens are escaped HTML, and markdown would still read `*x*`, `$x$` or `:red[x]`
    # inside them (one path for HTML built from values; it is sanitised again in the browser)
    st.html(viz.legend_html(scale, "target", tr=translator()))
    st.html(viz.token_html(attr.positions, attr.masked.positions, scale, t("With the mask")))
    st.html(viz.token_html(attr.positions, attr.baseline.positions, scale, t("Without the mask")))
    st.html(viz.token_html(attr.positions, diff, diff_scale,
                           t("Difference, masked minus unmasked (own scale, ±{scale})", scale=f"{diff_scale:.3g}")))
    st.caption(t("Hover a token for its value. The first two rows share one colour scale."))


def _grid_map(values: np.ndarray, attr: AttributionResult) -> np.ndarray:
    g = attr.geometry
    return on_grid(values, g.grid, g.prefix)


def on_image(state: AppState, result: Any, attr: AttributionResult, ns: str, scale: float) -> None:
    """The scores on the picture (pixels, or patches), masked next to unmasked."""
    image = image_views.picture_of(state)
    if image is None:
        return
    opacity = st.slider(t("Overlay opacity"), 0.0, 1.0, 0.6, 0.05, key=f"{ns}.attr_opacity")
    pixels = attr.masked.overlay is not None
    maps = ({"masked": attr.masked.overlay, "unmasked": attr.baseline.overlay} if pixels else
            {"masked": _grid_map(attr.masked.positions, attr), "unmasked": _grid_map(attr.baseline.positions, attr)})
    scale = viz.symmetric_scale(*maps.values())
    diff = maps["masked"] - maps["unmasked"]
    grid = attr.geometry.grid
    cols = st.columns(3)
    for col, (name, title, values, s) in zip(cols, (("masked", t("With the mask"), maps["masked"], scale),
                                                    ("unmasked", t("Without the mask"), maps["unmasked"], scale),
                                                    ("diff", t("Masked minus unmasked"), diff,
                                                     viz.symmetric_scale(diff)))):
        with col:
            charts.plotly(viz.pixel_overlay_figure(image, values, title, s, opacity, grid, t("attribution")),
                          "attribution-image", f"attr_img_{_KEYS[name]}")
    unit = t("pixel (colour channels summed)") if pixels else t("patch")
    prefix = attr.geometry.prefix
    extra = "" if not prefix or pixels else t(" The class token(s) are not on the picture: masked {m:+.4f}, unmasked "
                                              "{b:+.4f}.", m=attr.masked.positions[:prefix].sum(),
                                              b=attr.baseline.positions[:prefix].sum())
    st.caption(t("One value per {unit}; blue pushed the target up, red down; the first two share one scale, the "
                 "difference has its own. Thin lines: the model's patches.{extra}", unit=unit, extra=extra))


def on_audio(state: AppState, result: Any, attr: AttributionResult, ns: str, scale: float) -> None:
    """The scores along time, masked and unmasked, and their difference."""
    sound = audio_views.sound_of(state)
    if sound is None:
        return
    wave, rate = sound
    if attr.masked.overlay is not None:  # spectrogram frames (mel bins summed), 10 ms each
        curves = {"masked": attr.masked.overlay, "unmasked": attr.baseline.overlay}
        step, unit = FRAME_SHIFT_S, t("spectrogram frame (mel bins summed)")
    else:
        curves = {"masked": audio_views.over_time(attr.masked.positions, result),
                  "unmasked": audio_views.over_time(attr.baseline.positions, result)}
        step, unit = attr.geometry.seconds_per_frame, t("time step of the model (frequency patches summed)")
    charts.plotly(audio_views.time_figure(wave, rate, curves, step,
                                          t("{method} along time", method=t(get_method(attr.method).title)),
                                          label=t("attribution"), signed=True), "attribution-audio", "attr_audio")
    charts.plotly(audio_views.time_figure(wave, rate, {"difference": curves["masked"] - curves["unmasked"]}, step,
                                          t("Masked minus unmasked"), label=t("attribution"), signed=True),
                  "attribution-audio-diff", "attr_audio_diff")
    st.caption(t("Grey: the spectrogram. Lines: one value per {unit}; above 0 pushed the target up, below 0 down. "
                 "Past the end of the recording the model hears padding.", unit=unit))


# ------------------------------------------------------------------------------------------------ heads


def _heads(state: AppState, result: Any, ns: str) -> None:
    """Head importance (Michel et al.) for the masked and unmasked model, and pruning of the least important."""
    st.subheader(t("Which heads the prediction leans on"))
    try:
        importance = runner.head_importance_recipe(state, result.plan)
    except ValueError as err:
        messages.error(error_text(err))
        return
    off = parse_pairs(dict(state.params).get("off", "")) if state.strategy == "head_gate" else ()
    a, b = st.columns(2)
    with a:
        charts.plotly(viz.head_importance_figure(importance.masked,
                                                 t("With the mask (top {top})", top=f"{importance.masked.max():.3g}"),
                                                 off=off), "heads-masked", "heads_masked")
    with b:
        charts.plotly(viz.head_importance_figure(importance.baseline,
                                                 t("Without the mask (top {top})",
                                                   top=f"{importance.baseline.max():.3g}")),
                      "heads-unmasked", "heads_unmasked")
    st.caption(t("Importance of a head = |d target / d gate|: every head's weights are multiplied by a gate of 1, and "
                 "the gradient says how much the target would move if that head were turned down (Michel et al., "
                 "NeurIPS 2019; here for this one input). Each chart has its own colour scale (a confident "
                 "prediction has small gradients everywhere). Red frames: heads switched off by head_gate."))
    layers, heads = importance.baseline.shape
    total = layers * heads
    c1, c2 = st.columns([1, 2])
    n = c1.number_input(t("Heads to switch off"), 1, max(1, total - len(off) - 1), min(heads, max(1, total - 1)),
                        key=f"{ns}.prune_n")
    ranked_by = importance.masked if state.strategy == "head_gate" else importance.baseline
    label = (t("Switch off the {n} least important heads (with the heads already off kept off)", n=int(n)) if off
             else t("Switch off the {n} least important heads (ranked in the unmasked model)", n=int(n)))
    c2.button(label, key=f"{ns}.prune", type="primary", on_click=_prune, args=(state, ranked_by, off))


def _prune(state: AppState, ranked_by: np.ndarray, off: tuple[tuple[int, int], ...]) -> None:
    """The Prune button's callback (runs before the next script run, so the sidebar widgets can take the recipe):
    head_gate with the least important heads off, made the active recipe."""
    ns = session.ns_of(state.page)
    pairs = least_important(ranked_by, int(st.session_state.get(f"{ns}.prune_n", 1)), off)
    new = replace(state, strategy="head_gate", params=(("off", format_pairs(pairs)),), op="none",
                  strategy2="none", params2=(), layers=(), heads=())
    load_widgets(ns, new, force=True)
    session.activate(new)
    session.need_whole_page()  # the sidebar shows the new recipe


# ------------------------------------------------------------------------------------------------ downloads


def _downloads(state: AppState, result: Any, attr: AttributionResult) -> None:
    with st.expander(t("Download the attribution")):
        stem = f"dynmask-{result.model_id.replace('/', '_')}-{state.strategy}-{attr.method}"
        files = export.attribution_files(attr)
        cols = st.columns(2)
        for i, (name, data) in enumerate(files.items()):
            with cols[i % 2]:
                mime = "application/json" if name.endswith(".json") else "application/octet-stream"
                download_button(name, lambda data=data: data, f"{stem}-{name}", mime, f"dl_attr_{name}")
        st.code(" ".join(["python -m dynmask_core attribute", *(_quote(a) for a in _args(state)), "--out", "out/"]),
                language="bash")


def _args(state: AppState) -> list[str]:
    from dynmask_core.recipe.cli_args import recipe_to_args

    return recipe_to_args(state)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
