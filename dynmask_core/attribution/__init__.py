"""Attribution: what a prediction depended on, for the masked model against the unmasked one (Captum + the engine).

:func:`attribute` runs one method (of the registry :data:`ATTRIBUTION_METHODS`) on both sides;
:func:`head_importance` ranks heads by the gradient of their gates (Michel et al., NeurIPS 2019). Targets and the
per-modality attribution spaces are in :mod:`.targets` and :mod:`.spaces`.
"""

from dynmask_core.attribution.heads import head_importance, least_important
from dynmask_core.attribution.methods import (
    ATTENTION_METHODS,
    ATTRIBUTION_METHODS,
    DEFAULT_STEPS,
    DELTA_WARN,
    MAX_STEPS,
    METHODS,
    STEPPED,
    AttributionMethod,
    AttributionResult,
    Cancelled,
    Side,
    SideRunner,
    attribute,
    check_method,
    get_method,
    readout_rows,
    register_method,
)
from dynmask_core.attribution.targets import PREDICTED, SIMILAR, Target, resolve_target

__all__ = [
    "ATTENTION_METHODS", "ATTRIBUTION_METHODS", "DEFAULT_STEPS", "DELTA_WARN", "MAX_STEPS", "METHODS", "PREDICTED",
    "SIMILAR", "STEPPED", "AttributionMethod", "AttributionResult", "Cancelled", "Side", "SideRunner", "Target",
    "attribute", "check_method", "get_method", "head_importance", "least_important", "readout_rows", "register_method",
    "resolve_target",
]
