"""Pure figure builders: arrays in, Plotly/Altair figures out (no Streamlit, no torch import).

The app places these figures; the CLI or a notebook can save them (``fig.write_html``) the same way.
"""

from dynmask_core.viz._common import (
    MAX_SIDE,
    MODEL_VIEW_SIDE,
    PNG_CONFIG,
    inert,
    inert_template,
    pool2d,
    pool_factor,
    pooled_axis,
    pooling_note,
    token_axis,
)
from dynmask_core.viz.heatmaps import attention_figure, diff_figure, mask_figure
from dynmask_core.viz.layers import layer_chart
from dynmask_core.viz.model_view import model_view_cell, model_view_figure, model_view_note
from dynmask_core.viz.outputs import (
    class_bars_html,
    next_token_bars_html,
    next_token_figure,
    output_bars_html,
    output_figure,
    sentiment_figure,
)
from dynmask_core.viz.summaries import STAT_TEXT, head_stats_figure

__all__ = [
    "MAX_SIDE", "MODEL_VIEW_SIDE", "PNG_CONFIG", "STAT_TEXT", "attention_figure", "class_bars_html", "diff_figure",
    "head_stats_figure", "inert", "inert_template",
    "layer_chart", "mask_figure", "model_view_cell", "model_view_figure", "model_view_note",
    "next_token_bars_html", "next_token_figure", "output_bars_html", "output_figure", "pool2d", "pool_factor",
    "pooled_axis", "pooling_note",
    "sentiment_figure", "token_axis",
]
