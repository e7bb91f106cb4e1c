"""Attribution: what a prediction depended on, for the masked model against the unmasked one (Captum + the engine).

:func:`attribute` runs one method on both sides; :func:`head_importance` ranks heads by the gradient of their gates
(Michel et al., NeurIPS 2019). Targets and the per-modality attribution spaces are in :mod:`.targets` and
:mod:`.spaces`.
"""

from dynmask_core.attribution.heads import head_importance, least_important
from dynmask_core.attribution.methods import (
    ATTENTION_METHODS,
    DEFAULT_STEPS,
    MAX_STEPS,
    METHODS,
    STEPPED,
    AttributionResult,
    Cancelled,
    Side,
    attribute,
    check_method,
    readout_rows,
)
from dynmask_core.attribution.targets import PREDICTED, SIMILAR, Target, resolve_target

__all__ = [
    "ATTENTION_METHODS", "DEFAULT_STEPS", "MAX_STEPS", "METHODS", "PREDICTED", "SIMILAR", "STEPPED",
    "AttributionResult", "Cancelled", "Side", "Target", "attribute", "check_method", "head_importance",
    "least_important", "readout_rows", "resolve_target",
]
