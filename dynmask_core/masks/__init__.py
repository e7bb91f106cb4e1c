"""Attention-mask strategies: one registry, keyed by short stable ids (see MASKS.md for the conventions)."""

from dynmask_core.masks import custom as _custom  # noqa: F401  (registers custom; it imports static first)
from dynmask_core.masks import dynamic as _dynamic  # noqa: F401  (registers the dynamic strategies; after static)
from dynmask_core.masks import inputs as _inputs  # noqa: F401  (registers the input-masking strategies; last)
from dynmask_core.masks import static as _static  # noqa: F401  (registers the static strategies)
from dynmask_core.masks.apply import MODES, ApplyOptions, masked_softmax
from dynmask_core.masks.base import (
    REGISTRY,
    MaskContext,
    MaskOut,
    Param,
    Strategy,
    dense,
    draw,
    get_strategy,
    register,
    strategies,
)
from dynmask_core.masks.compose import OPS, ComposedMask, MaskSpec, compose
from dynmask_core.masks.dynamic import random_dynamic
from dynmask_core.masks.plan import MaskPlan, draw_seed
from dynmask_core.masks.static import (
    alibi_slopes,
    bigbird,
    causal,
    dilated,
    document,
    full,
    prefix_lm,
    random_static,
    sliding_window,
    strided,
)

__all__ = [
    "MODES", "OPS", "REGISTRY", "ApplyOptions", "ComposedMask", "MaskContext", "MaskOut", "MaskPlan", "MaskSpec",
    "Param", "Strategy", "alibi_slopes", "bigbird", "causal", "compose", "dense", "dilated", "document", "draw",
    "draw_seed", "full", "get_strategy", "masked_softmax", "prefix_lm", "random_dynamic", "random_static", "register",
    "sliding_window", "strategies", "strided",
]
