"""Figures over a sound: its log spectrogram with per-time values (attention, rollout, a mask) drawn along time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dynmask_core.messages import N_
from dynmask_core.viz._common import as_array, inert, inert_template

SPECTROGRAM_SCALE = "Greys"
LINE_COLORS = {N_("masked"): "#1f4e99", N_("baseline"): "#e07b00", N_("unmasked"): "#e07b00",
               N_("difference"): "#6a3d9a"}  # the curves' names are the legend's words


def log_spectrogram(wave: Any, rate: int, window_s: float = 0.025, hop_s: float = 0.010,
                    max_hz: float = 8000.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A display spectrogram: ``(times (T,) s, freqs (F,) Hz, decibels (F, T))`` from a Hann-windowed STFT."""
    x = as_array(wave, np.float64).reshape(-1)
    n = max(16, int(window_s * rate))
    hop = max(1, int(hop_s * rate))
    if x.size < n:
        x = np.pad(x, (0, n - x.size))
    starts = np.arange(0, x.size - n + 1, hop)
    frames = np.stack([x[s: s + n] for s in starts]) * np.hanning(n)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    keep = freqs <= max_hz
    db = 10 * np.log10(power[:, keep].T + 1e-10)
    return (starts + n / 2) / rate, freqs[keep], db - db.max()


def time_figure(wave: Any, rate: int, curves: Mapping[str, Any], seconds_per_step: float, title: str,
                label: str = "attention", shade: Any = None, signed: bool = False) -> go.Figure:
    """The spectrogram with one or more curves of per-time values on top (a second y axis).

    Args:
        wave: ``(N,)`` waveform.
        rate: Its sampling rate.
        curves: ``{name: (T,) values}``, one value per time step of the model (a frame or a patch column).
        seconds_per_step: Seconds each value covers (step ``t`` spans ``[t, t + 1) * seconds_per_step``).
        title: Figure title.
        label: Name of the values (axis title).
        shade: Optional ``(T,)`` bool; False steps are shaded (a mask: blocked time steps).
        signed: The values can be negative (attribution): the value axis is not clipped at 0 and 0 is drawn.
    """
    times, freqs, db = log_spectrogram(wave, rate)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Heatmap(x=np.round(times, 4), y=np.round(freqs, 1), z=np.round(db, 1),
                             colorscale=SPECTROGRAM_SCALE, reversescale=False, showscale=False, zmin=-80, zmax=0,
                             hovertemplate="%{x:.2f} s, %{y:.0f} Hz: %{z:.0f} dB<extra></extra>"),
                  secondary_y=False)
    for name, values in curves.items():
        v = as_array(values, np.float64).reshape(-1)
        centres = (np.arange(v.size) + 0.5) * seconds_per_step
        fig.add_trace(go.Scatter(x=np.round(centres, 4), y=np.round(v, 5), name=inert(name), mode="lines+markers",
                                 line={"color": LINE_COLORS.get(name), "width": 3, "shape": "hvh"},
                                 hovertemplate="%{x:.2f} s: %{y:.4f}<extra>" + inert_template(name) + "</extra>"),
                      secondary_y=True)
    if shade is not None:
        for t, on in enumerate(as_array(shade).reshape(-1)):
            if not on:
                fig.add_vrect(x0=t * seconds_per_step, x1=(t + 1) * seconds_per_step, fillcolor="black",
                              opacity=0.35, line_width=0)
    fig.update_layout(title={"text": inert(title), "x": 0.0}, height=380, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      font={"size": 14}, legend={"orientation": "h", "y": -0.2})
    fig.update_xaxes(title_text=N_("time (s)"), range=[0, max(float(times[-1]) if times.size else 0.0,
                                                          seconds_per_step * max(len(as_array(c).reshape(-1))
                                                                                 for c in curves.values()))])
    fig.update_yaxes(title_text=N_("frequency (Hz)"), secondary_y=False)
    fig.update_yaxes(title_text=inert(label), secondary_y=True, rangemode="normal" if signed else "tozero",
                     showgrid=False, zeroline=signed, zerolinecolor="#888", zerolinewidth=1)
    return fig


def waveform_figure(wave: Any, rate: int, title: str = N_("The recording"), max_points: int = 4000) -> go.Figure:
    """The waveform over time (decimated to at most ``max_points`` min/max pairs for the page)."""
    x = as_array(wave, np.float64).reshape(-1)
    step = max(1, int(np.ceil(x.size / max_points)))
    usable = x[: x.size // step * step].reshape(-1, step) if step > 1 else x.reshape(-1, 1)
    low, high = usable.min(axis=1), usable.max(axis=1)
    t = (np.arange(low.size) * step) / rate
    fig = go.Figure([go.Scatter(x=np.round(np.repeat(t, 2), 4), y=np.round(np.ravel(np.column_stack([low, high])), 4),
                                mode="lines", line={"color": "#1f4e99", "width": 1}, hoverinfo="skip")])
    fig.update_layout(title={"text": inert(title), "x": 0.0}, height=200, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      font={"size": 14}, showlegend=False)
    fig.update_xaxes(title_text=N_("time (s)"))
    fig.update_yaxes(title_text=N_("amplitude"), range=[-1.05, 1.05])
    return fig
