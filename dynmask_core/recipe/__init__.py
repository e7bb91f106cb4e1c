"""The recipe: one declaration per field, from which the link codec, the CLI arguments and the widgets are made;
and the one policy owner that turns a recipe and a loaded model into runnable plans."""

from dynmask_core.recipe.fields import AFFECTS, MAX_INDEX, Field, declare, parse_indices, scope_affects, specs
from dynmask_core.recipe.policy import Resolved, fit_to_model, resolve, with_seed
from dynmask_core.recipe.recipe import COMPOSE_OPS, MAX_URL_TEXT, Params, Recipe
from dynmask_core.recipe.url import VERSION, decode_query, encode_query
from dynmask_core.samples import UPLOAD_PREFIX

__all__ = [
    "AFFECTS", "COMPOSE_OPS", "MAX_INDEX", "MAX_URL_TEXT", "UPLOAD_PREFIX", "VERSION", "Field", "Params", "Recipe",
    "Resolved", "declare", "decode_query", "encode_query", "fit_to_model", "parse_indices", "resolve", "scope_affects",
    "specs", "with_seed",
]
