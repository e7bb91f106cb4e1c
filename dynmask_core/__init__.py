"""dynmask core: attention-mask strategies run inside real transformers, captured for teaching.

No Streamlit here: the same code serves the app, the CLI (``python -m dynmask_core``), tests and benchmarks.
Data path: recipe -> ``resolve(recipe, loaded)`` -> plan; source -> ``encode(loaded, source)`` -> prepared input;
``run(loaded, prepared, plan)`` -> result with typed task outputs; figures from ``dynmask_core.viz``.
"""

from dynmask_core.analysis.outputs import Classification, Embedding, NextToken, TaskOutput
from dynmask_core.attention import applied
from dynmask_core.engine import Capture, RunResult, forward, run
from dynmask_core.masks import MODES, OPS, ApplyOptions, MaskPlan, MaskSpec, draw_seed, get_strategy, strategies
from dynmask_core.modalities import AudioSource, ImageSource, Prepared, TextSource, encode, encode_text
from dynmask_core.models import DEFAULT_MODEL, PRESETS, LoadedModel, load

__version__ = "0.2.0"

__all__ = [
    "DEFAULT_MODEL", "MODES", "OPS", "PRESETS", "ApplyOptions", "AudioSource", "Capture", "Classification",
    "Embedding", "ImageSource", "LoadedModel", "MaskPlan", "MaskSpec", "NextToken", "Prepared", "RunResult",
    "TaskOutput", "TextSource", "applied", "draw_seed", "encode", "encode_text", "forward",
    "get_strategy", "load", "run", "strategies",
]
