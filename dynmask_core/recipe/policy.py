"""The one owner of run policy: a recipe and a loaded model in, runnable plans and warnings (as data) out.

Here, and only here: the seed is drawn (once, when a strategy of the recipe uses it), layer and head indices are
checked against the model (dropped with a warning, or an error when ``strict``), and options that mean nothing for
the model are reset (letting a non-causal model "see the future"). The app and the CLI both call :func:`resolve`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from dynmask_core.masks import MaskPlan, draw_seed
from dynmask_core.messages import N_, Message


@dataclass(frozen=True)
class Resolved:
    """What :func:`resolve` gives back.

    Attributes:
        recipe: The recipe fitted to the model, with its seed filled in (write this one to the link).
        plans: One resolved :class:`MaskPlan` per side of the recipe's page (``main``, or ``a`` and ``b``).
        warnings: What was changed and why, in plain words.
    """

    recipe: Any
    plans: dict[str, MaskPlan]
    warnings: tuple[str, ...] = ()

    @property
    def plan(self) -> MaskPlan:
        """The plan of a one-run page."""
        return self.plans.get("main") or next(iter(self.plans.values()))


def fit_to_model(recipe: Any, n_layers: int, n_heads: int, causal: bool, model_name: str = "this model",
                 strict: bool = False) -> tuple[Any, list[str]]:
    """Drops layer/head indices the model lacks and resets ``model_causal`` for a model that is not causal.

    Raises:
        ValueError: in ``strict`` mode (the CLI), for an index the model lacks.
    """
    warnings: list[str] = []
    changes: dict[str, Any] = {}
    missing = {"layers": N_("Layers {listed} do not exist in {model} (0-{last}); {instead}."),
               "heads": N_("Heads {listed} do not exist in {model} (0-{last}); {instead}."),
               "layer": N_("Layer {value} does not exist in {model} (0-{last}); showing layer 0."),
               "head": N_("Head {value} does not exist in {model} (0-{last}); showing head 0.")}
    for name, values, count in (("layers", recipe.layers, n_layers), ("heads", recipe.heads, n_heads)):
        bad = [v for v in values if count and v >= count]
        if bad and strict:
            raise ValueError(f"{name} must be between 0 and {count - 1} for this model, got {list(values)}")
        if bad:
            keep = tuple(v for v in values if v < count)
            listed = ", ".join(map(str, bad[:8])) + (" …" if len(bad) > 8 else "")
            instead = Message("using {keep}", keep=list(keep)) if keep else Message("applying to all")
            warnings.append(Message(missing[name], listed=listed, model=model_name, last=count - 1,
                                    instead=instead))
            changes[name] = keep
    for name, value, count in (("layer", recipe.layer, n_layers), ("head", recipe.head, n_heads)):
        if count and value >= count:
            warnings.append(Message(missing[name], value=value, model=model_name, last=count - 1))
            changes[name] = 0
    if not causal and not recipe.model_causal:
        changes["model_causal"] = True
    return (replace(recipe, **changes) if changes else recipe), warnings


def with_seed(recipe: Any) -> Any:
    """The recipe with a fresh seed when a strategy uses one and none is set; else unchanged."""
    if recipe.seed is None and recipe.uses_seed():
        return replace(recipe, seed=draw_seed())
    return recipe


def resolve(recipe: Any, loaded: Any, strict: bool = False) -> Resolved:
    """Fits ``recipe`` to ``loaded`` and builds the resolved plan of each side.

    Args:
        recipe: A :class:`~dynmask_core.recipe.Recipe` (or the app's subclass).
        loaded: A :class:`~dynmask_core.models.LoadedModel` (``n_layers``, ``n_heads``, ``causal``, ``id``).
        strict: Raise instead of warning about indices the model lacks (the command line).

    Raises:
        ValueError: bad strategy parameters, or (``strict``) indices outside the model.
    """
    fitted, warnings = fit_to_model(recipe, int(loaded.n_layers), int(loaded.n_heads), bool(loaded.causal),
                                    str(loaded.id), strict)
    fitted = with_seed(fitted)
    plans = {side: fitted.plan(side).resolved() for side in fitted.sides()}
    return Resolved(fitted, plans, tuple(warnings))
