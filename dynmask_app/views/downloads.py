"""Download buttons: offline HTML of the current view, the run as JSON, masks/attention as NPY and CSV.

Bytes are built only when a button is clicked (deferred ``data=callable``), so big arrays cost nothing until asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from dynmask_app.i18n import t
from dynmask_app.state import AppState
from dynmask_core import export
from dynmask_core.messages import N_


def download_button(label: str, data: Callable[[], bytes], file_name: str, mime: str, key: str, help: str = "") -> None:
    """A download button; ``file_name`` (made of a link's values) is cleaned to a safe name here, for every button."""
    st.download_button(label, data=data, file_name=export.safe_file_name(file_name), mime=mime, key=key,
                       on_click="ignore", help=help or None, width="stretch")


def numbers(state: AppState, result: Any, layer: int, head: int) -> dict[str, Any]:
    """The numbers written next to the figures in the HTML export."""
    out = {"model": result.model_id, "strategy": state.label(), "mode": state.mode, "seed": result.seed,
           "tokens": len(result.tokens), "layer shown": layer, "head shown": head}
    out.update({f"metric: {k}": v for k, v in result.metrics.items()})
    out["baseline output"] = result.baseline_outputs
    out["masked output"] = result.outputs
    return out


def download_panel(state: AppState, result: Any, layer: int, head: int,
                   figures: Callable[[], list[tuple[str, Any]]]) -> None:
    """All downloads of the current run and view; ``figures()`` gives the view's ``(title, figure)`` pairs, called
    only when the HTML is asked for (so the all-layers figure is not built for a button nobody clicks)."""
    stem = f"dynmask-{result.model_id.replace('/', '_')}-{state.strategy}-s{result.seed}"
    where = f"L{layer}-H{head}"

    def html() -> bytes:
        return export.html_report(f"dynmask: {state.label()} on {result.model_id}", figures(),
                                   numbers(state, result, layer, head), run=result.to_dict(),
                                   notes=[f"Input ({state.input_kind}): {state.input_ref}"])

    st.caption(t("PNG: use the camera button in each chart's toolbar."))
    if result.budgeted:
        _budgeted_buttons(result, stem, html, f"{stem}-{where}.html")
        return
    c1, c2 = st.columns(2)
    with c1:
        download_button(t("Current view (HTML, works offline)"), html, f"{stem}-{where}.html", "text/html",
                        "dl_html", t("All figures of this view with plotly.js embedded once, plus the numbers."))
        download_button(t("Run summary (JSON)"), lambda: export.json_bytes(result.to_dict()), f"{stem}.json",
                        "application/json", "dl_json")
        download_button(t("Mask, layer {layer} head {head} (CSV)", layer=layer, head=head),
                        lambda: export.csv_bytes(result.masks[layer, head], result.tokens),
                        f"{stem}-mask-{where}.csv", "text/csv", "dl_mask_csv")
        download_button(t("Attention, layer {layer} head {head} (CSV)", layer=layer, head=head),
                        lambda: export.csv_bytes(result.attention[layer, head], result.tokens),
                        f"{stem}-attention-{where}.csv", "text/csv", "dl_attn_csv")
    with c2:
        download_button(t("All masks (NPY, L x H x Q x K bool)"), lambda: export.npy_bytes(result.masks),
                        f"{stem}-masks.npy", "application/octet-stream", "dl_masks_npy")
        download_button(t("All attention, masked (NPY, float32)"), lambda: export.npy_bytes(result.attention),
                        f"{stem}-attention.npy", "application/octet-stream", "dl_attn_npy")
        download_button(t("All attention, baseline (NPY, float32)"),
                        lambda: export.npy_bytes(result.baseline_attention),
                        f"{stem}-baseline-attention.npy", "application/octet-stream", "dl_base_npy")
        download_button(t("Tokens (CSV)"), lambda: export.tokens_csv_bytes(result.tokens), f"{stem}-tokens.csv",
                        "text/csv", "dl_tokens")


#: The files of a run past 512 tokens (see :func:`dynmask_core.export.budgeted_run_files`): name -> button label.
_BUDGETED_FILES = {
    "stats.npy": N_("Per-head summaries, masked (NPY, L x H x 4)"),
    "baseline_stats.npy": N_("Per-head summaries, baseline (NPY)"),
    "pooled_attention.npy": N_("Pooled attention, masked (NPY, float32 block means)"),
    "baseline_pooled_attention.npy": N_("Pooled attention, baseline (NPY)"),
    "pooled_masks.npy": N_("Pooled masks, masked run (NPY, fraction allowed)"),
    "baseline_pooled_masks.npy": N_("Pooled masks, baseline (NPY)"),
}


def _budgeted_buttons(result: Any, stem: str, html: Callable[[], bytes], html_name: str) -> None:
    """The downloads of a run that kept summaries and pooled maps (what it has; the full weights were not kept)."""
    c1, c2 = st.columns(2)
    with c1:
        download_button(t("Current view (HTML, works offline)"), html, html_name, "text/html", "dl_html",
                        t("All figures of this view (pooled) with plotly.js embedded once, plus the numbers."))
        download_button(t("Run summary (JSON)"), lambda: export.json_bytes(result.to_dict()), f"{stem}.json",
                        "application/json", "dl_json")
        download_button(t("Tokens (CSV)"), lambda: export.tokens_csv_bytes(result.tokens), f"{stem}-tokens.csv",
                        "text/csv", "dl_tokens")
    with c2:
        for name, label in _BUDGETED_FILES.items():
            download_button(t(label), lambda name=name: export.budgeted_run_files(result)[name], f"{stem}-{name}",
                            "application/octet-stream", f"dl_{name}")
    st.caption(t("Stats order: entropy, distance, sink, allowed. Pooled maps: {b}x{b}-token blocks. A zoom window's "
                 "full-resolution weights: the figure's own data.", b=result.summary.block))
