"""Views of an audio run: the sound, and attention, the mask and rollout along its time axis over the spectrogram."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from dynmask_app import messages
from dynmask_app.i18n import error_text, t
from dynmask_app.server import figure_cache, uploads
from dynmask_app.views import charts
from dynmask_core.analysis.rollout import on_grid, rollout
from dynmask_core.messages import N_
from dynmask_core.viz.audio import time_figure, waveform_figure


def sound_of(state: Any) -> tuple[np.ndarray, int] | None:
    try:
        source = uploads.source_of(state)
    except ValueError as err:
        messages.warning(t("The recording is not available here: {error}", error=error_text(err)))
        return None
    return np.asarray(source.waveform, dtype=np.float32), int(source.sampling_rate)


def over_time(row: Any, result: Any) -> np.ndarray:
    """One row of weights over positions as one value per time step (summed over frequency for AST patches)."""
    g = result.geometry
    if g.grid is not None:
        return on_grid(row, g.grid, g.prefix).sum(axis=0)
    return np.asarray(row, dtype=np.float64).reshape(-1)[g.prefix:]


def audio_tab(state: Any, result: Any, layer: int, head: int, ns: str) -> None:
    """Player, then one query's attention along time (masked and baseline) and where its mask blocks."""
    sound = sound_of(state)
    if sound is None:
        return
    wave, rate = sound
    st.audio(wave, sample_rate=rate)
    title = t("The recording ({s:.2f} s at {rate} Hz)", s=wave.size / rate, rate=rate)
    charts.plotly(figure_cache.figure(state, result, "audio.wave", (title,), lambda: waveform_figure(wave, rate,
                                                                                                    title)),
                  "dynmask-audio-waveform", key="audio_wave")
    g = result.geometry
    options = list(range(len(result.tokens)))
    summary = t(" (a summary token)")
    q = st.selectbox(t("Query: whose attention to show"), options, key=f"{ns}.audio_query",
                     format_func=lambda i: result.tokens[i] + (summary if i < g.prefix else ""),
                     help=t("CLS: what the classification token listened to; a patch or frame: what it listened to."))
    title = t("{who} attends along time ({where})", who=result.tokens[q], where=f"L{layer} H{head}")
    label = t("attention")

    def attention() -> Any:
        curves = {"masked": over_time(result.attention[layer, head, q], result),
                  "baseline": over_time(result.baseline_attention[layer, head, q], result)}
        allowed = over_time(result.masks[layer, head, q].float(), result) > 0
        return time_figure(wave, rate, curves, g.seconds_per_frame, title, label=label, shade=allowed)

    charts.plotly(figure_cache.figure(state, result, "audio.attention", (layer, head, q, title), attention),
                  "dynmask-audio-attention", key="audio_attention")
    st.caption(t("Grey: the spectrogram (darker = louder). Lines: attention of the chosen query to each time step "
                 "(summed over frequency), with and without the mask. Shaded steps are blocked by the mask."))
    if result.hidden is not None:
        def hidden() -> Any:
            rows = g.grid[0] if g.grid is not None else 1
            share = over_time(result.hidden.float(), result) / rows
            return time_figure(wave, rate, {N_("hidden"): share}, g.seconds_per_frame,
                               t("What the masked run could not hear (input mask)"), label=t("share hidden"),
                               shade=share < 0.5)

        charts.plotly(figure_cache.figure(state, result, "audio.hidden", (), hidden), "dynmask-audio-hidden",
                      key="audio_hidden")
        st.caption(t("The share of each time step's patches hidden from the masked run's input; shaded steps are "
                     "mostly hidden. Hidden spectrogram cells were set to the normalised mean."))


def sound_getter(state: Any) -> Callable[[], tuple[np.ndarray, int]] | None:
    """The recording as a getter that reads it on first call (figures already built for this input need none), or
    None, with a warning, when this session cannot have it (someone else's upload)."""
    if state.is_upload and state.input_ref not in st.session_state.get(uploads.UPLOADS, {}):
        sound = sound_of(state)  # says why
        return None if sound is None else (lambda: sound)
    memo: dict[str, tuple[np.ndarray, int]] = {}

    def sound() -> tuple[np.ndarray, int]:
        if "sound" not in memo:
            source = uploads.source_of(state)
            memo["sound"] = np.asarray(source.waveform, dtype=np.float32), int(source.sampling_rate)
        return memo["sound"]

    return sound


def audio_rollout_tab(state: Any, result: Any, layer: int, head: int, ns: str) -> None:
    """Attention rollout from the class token along time, masked and baseline."""
    sound = sound_getter(state)
    if sound is None:
        return

    def build() -> Any:  # rollout of every layer: computed only when the figure is built
        wave, rate = sound()
        curves = {"masked": over_time(rollout(result.attention)[0], result),
                  "baseline": over_time(rollout(result.baseline_attention)[0], result)}
        return time_figure(wave, rate, curves, result.geometry.seconds_per_frame, words[0], label=words[1])

    words = (t("Rollout from the first token"), t("rollout"))
    try:
        fig = figure_cache.figure(state, result, "audio.rollout", (), build)
    except ValueError as err:
        messages.warning(t("The recording is not available here: {error}", error=error_text(err)))
        return
    charts.plotly(fig, "dynmask-audio-rollout", key="audio_rollout")
    st.caption(t("Attention rollout (Abnar & Zuidema 2020) through all layers, from the first token, along time."))
