"""The result cache's keys: what identifies a run, an attribution, a zoom window and a lesson's layer. Every session
shares the cache, so a key holds everything that changes the numbers: each recipe field that the schema declares to
affect the result (:meth:`~dynmask_core.recipe.Recipe.cache_key`, ``affects=`` in the field's declaration), the side
of the page it feeds, and the resolved plan (the drawn seed, the layers fitted to the model). None is picked here by
hand: a new field that changes a run changes every key it should.
"""

from __future__ import annotations

from dynmask_app.state import AppState
from dynmask_core import MaskPlan
from dynmask_core.capture import CapturePlan


def recipe_key(state: AppState, plan: MaskPlan, side: str = "main") -> str:
    """The key of one run: the recipe's run fields for ``side`` and its resolved plan."""
    return state.cache_key("run", side=side, plan=plan.to_dict())


def attribution_key(state: AppState, plan: MaskPlan, what: str = "attribution") -> str:
    """The key of an attribution (or, ``what="heads"``, the head importance) of a run: its run and attribution fields
    (method, target, steps where the method takes them), its plan and what is computed."""
    return state.cache_key("attribution", side="main", plan=plan.to_dict(), what=what)


def window_key(state: AppState, plan: MaskPlan, layer: int, head: int, rows: tuple[int, int]) -> str:
    """The key of one zoom window of a run: the run's fields and plan, plus where."""
    return state.cache_key("run", side="main", plan=plan.to_dict(),
                           window=[int(layer), int(head), int(rows[0]), int(rows[1])])


def inspect_key(state: AppState, plan: MaskPlan, layer: int) -> str:
    """The key of one layer's Q, K, V (the step-by-step lesson) of a run: the run's fields and plan, plus the layer."""
    return state.cache_key("run", side="main", plan=plan.to_dict(), inspect=int(layer))


def baseline_key(state: AppState, capture: CapturePlan) -> str:
    """The key of a long input's unmasked pass, shared by every strategy tried on it: the model and input fields and
    what the pass keeps."""
    return state.cache_key("input", side="main", baseline=int(capture.budget_bytes))
