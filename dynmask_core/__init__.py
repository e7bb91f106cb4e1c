"""dynmask core: attention-mask strategies run inside real transformers, captured for teaching.

No Streamlit here: the same code serves the app, the CLI (``python -m dynmask_core``), tests and benchmarks.
"""

from dynmask_core.analysis import compare, describe_change, summarize
from dynmask_core.engine import Capture, MaskPlan, RunResult, forward, run
from dynmask_core.masks import MODES, OPS, ApplyOptions, MaskSpec, get_strategy, strategies
from dynmask_core.modalities import TextInput, encode_text
from dynmask_core.models import DEFAULT_MODEL, PRESETS, LoadedModel, load

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL", "MODES", "OPS", "PRESETS", "ApplyOptions", "Capture", "LoadedModel", "MaskPlan", "MaskSpec",
    "RunResult", "TextInput", "compare", "describe_change", "encode_text", "forward", "get_strategy", "load", "run",
    "strategies", "summarize",
]
