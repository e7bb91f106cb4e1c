"""The recipe schema: one declaration per field, and the URL codec, the CLI and the policy generated from it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dynmask_core.cli import build_parser
from dynmask_core.masks import MaskPlan
from dynmask_core.recipe import MAX_INDEX, Recipe, fit_to_model, parse_indices, resolve
from dynmask_core.recipe.cli_args import command_for, recipe_from_args, recipe_to_args


class TwoSided(Recipe):
    """A recipe class whose ``compare`` page shows two runs (as the app's page registry says)."""

    def sides(self) -> tuple[str, ...]:
        return ("a", "b") if self.page == "compare" else ("main",)


# Every field away from its default at least once (the second and third recipes cover the rest).
RECIPES = [
    Recipe(),
    Recipe(page="compare", model="org/some-model", input_ref="Ünïcödé & symbols ?=#% \n new line", strategy="lsh",
           params={"buckets": 8}, op="and", strategy2="kmeans", params2={"clusters": 5}, layers=(3, 0, 1),
           heads=(2,), mode="bias", beta=2.5, seed=0, model_causal=False, layer=2, head=5),
    Recipe(strategy="random_dynamic", params={"p": 0.123456789, "per_head": False}, op="or", strategy2="prefix_lm",
           params2={"prefix": 3}, mode="gate", renormalize=False, seed=2**31 - 1, input_kind="text", max_tokens=4096),
    Recipe(strategy="dynamic_weight", params={"apply": "threshold", "strength": 0.1, "keep": 0.3},
           mode="naive_multiply", layers=tuple(range(30)), heads=(MAX_INDEX,)),
    Recipe(page="attribution", strategy="head_gate", params={"off": "0.3 2.5"}, attr_method="attention_attribution",
           attr_target="similar:A film, & more = 100%?", attr_steps=7, lang="zh", present=True),
]


def test_every_field_is_declared_once_with_what_the_generators_need() -> None:
    specs = Recipe.fields_spec()
    assert [s.name for s in specs] == [f.name for f in dataclasses.fields(Recipe)]
    for attr in ("url", "cli", "key"):
        values = [getattr(s, attr) for s in specs if getattr(s, attr)]
        assert len(values) == len(set(values)), f"duplicate {attr}"
    for s in specs:
        assert s.label and s.help, s.name
        if s.type in ("int", "float", "seed"):
            assert s.min is not None and s.max is not None, s.name
        if s.type == "choice":
            assert s.default in s.choices, s.name
        if s.widget in ("select", "radio"):
            assert s.choices, s.name
    moved = {s.name for s in specs if any(getattr(r, s.name) != s.default for r in RECIPES[1:])}
    assert moved >= {s.name for s in specs if s.url} - {"input_kind"}  # the tests below exercise every field


@pytest.mark.parametrize("recipe", RECIPES, ids=range(len(RECIPES)))
def test_url_round_trip_is_lossless(recipe: Recipe) -> None:
    qp = recipe.to_query_params()
    assert qp["v"] == "2" and all(isinstance(k, str) and isinstance(v, str) for k, v in qp.items())
    back, warnings = Recipe.from_query_params(qp)
    assert warnings == [] and back == recipe
    assert back.to_query_params() == qp


@pytest.mark.parametrize("recipe", RECIPES, ids=range(len(RECIPES)))
def test_cli_round_trip_gives_the_same_recipe(recipe: Recipe) -> None:
    page = "attribution" if recipe.page == "attribution" else "playground"
    argv = [command_for(recipe.page), *recipe_to_args(recipe), "--out", "unused"]
    args = build_parser().parse_args(argv)
    back = recipe_from_args(args, page=page)
    on_cli = {s.name for s in Recipe.fields_spec() if s.cli and s.used_on(page)}
    assert {k: v for k, v in back.values().items() if k in on_cli} == \
        {k: v for k, v in recipe.values().items() if k in on_cli}


def test_each_field_parses_what_it_encodes() -> None:
    for recipe in RECIPES:
        for spec in Recipe.fields_spec():
            if spec.url and spec.type != "params" and getattr(recipe, spec.name) is not None:
                value = getattr(recipe, spec.name)
                assert spec.parse(spec.encode(value)) == value, spec.name


def test_cli_defaults_and_the_compose_shorthand() -> None:
    args = build_parser().parse_args(["run", "--text", "hi", "--out", "o"])
    r = recipe_from_args(args)
    assert (r.strategy, r.op, r.model, r.mode, r.seed, r.model_causal) == ("none", "none", "minilm", "hard", None, True)
    args = build_parser().parse_args(["run", "--text", "hi", "--out", "o", "--compose", "or:prefix_lm:prefix=3",
                                      "--see-future", "--no-renormalize", "--layers", "0-2,5"])
    r = recipe_from_args(args)
    assert (r.op, r.strategy2, dict(r.params2)) == ("or", "prefix_lm", {"prefix": 3})
    assert (r.model_causal, r.renormalize, r.layers) == (False, False, (0, 1, 2, 5))
    args = build_parser().parse_args(["run", "--text", "hi", "--out", "o", "--compose", "and:causal", "--op", "or"])
    with pytest.raises(ValueError, match="shorthand"):
        recipe_from_args(args)


V1_LINKS = [  # links as the first version of the app wrote them (v=1, the input as text=)
    {"v": "1", "page": "playground", "model": "minilm", "text": "The cat sat on the mat. Then the dog chased it.",
     "s": "random_dynamic", "p.p": "0.5", "p.per_head": "true", "op": "or", "s2": "document", "mode": "gate",
     "beta": "8.0", "renorm": "false", "seed": "42", "causal": "true", "layer": "2", "head": "3"},
    {"v": "1", "page": "compare", "model": "minilm", "text": "The service was slow.", "s": "causal", "op": "none",
     "s2": "kmeans", "p2.clusters": "4", "seed": "99", "mode": "hard"},
    {"v": "1", "s": "strided", "op": "none"},
]


@pytest.mark.parametrize("qp", V1_LINKS, ids=range(len(V1_LINKS)))
def test_v1_links_read_as_text_inputs_and_are_rewritten_as_v2(qp: dict[str, str]) -> None:
    recipe, warnings = TwoSided.from_query_params(qp)
    assert warnings == []
    assert recipe.input_kind == "text" and recipe.text == qp.get("text", Recipe().text)
    v2 = recipe.to_query_params()
    assert v2["v"] == "2" and "text" not in v2 and v2.get("ref") == recipe.text
    assert TwoSided.from_query_params(v2) == (recipe, [])


def test_v1_link_gives_the_numbers_of_the_plan_it_names(minilm) -> None:
    """A v=1 link, read and resolved as the app does, runs exactly the plan written out by hand."""
    from dynmask_core import encode, run
    from dynmask_core.modalities import encode_text

    recipe, _ = Recipe.from_query_params(V1_LINKS[0])
    resolved = resolve(recipe, minilm)
    by_link = run(minilm, encode(minilm, resolved.recipe.source()), resolved.plan)
    plan = MaskPlan.of("random_dynamic", {"p": 0.5, "per_head": True}, compose=[("or", "document", None)],
                       mode="gate", renormalize=False, seed=42)
    by_hand = run(minilm, encode_text(minilm, V1_LINKS[0]["text"]), plan)
    assert by_link.metrics == by_hand.metrics
    assert torch.equal(by_link.masks, by_hand.masks) and torch.equal(by_link.attention, by_hand.attention)


def test_hostile_link_values_are_cut_and_summarised() -> None:
    qp = {"layers": ",".join(map(str, range(5000))), "s": "x" * 5000, **{f"p.k{i}": "1" for i in range(900)},
          **{f"junk{i}": "1" for i in range(50)}}
    recipe, warnings = Recipe.from_query_params(qp)
    assert recipe == Recipe()
    assert len(warnings) <= 4 and all(len(w) < 800 for w in warnings), [len(w) for w in warnings]
    assert any("50 unknown" in w for w in warnings)


def test_image_links_name_bundled_samples_and_uploads_say_so() -> None:
    recipe, warnings = Recipe.from_query_params({"v": "2", "input": "image", "ref": "chelsea"})
    assert (recipe.input_kind, recipe.input_ref, warnings) == ("image", "chelsea", [])
    assert recipe.source().image.shape == (300, 451, 3)  # scikit-image's photo of Chelsea the cat
    assert Recipe.from_query_params(recipe.to_query_params()) == (recipe, [])
    # in their place: the first sample the link's model can know (the image default is a shapes model: not a photo)
    recipe, warnings = Recipe.from_query_params({"v": "2", "input": "image", "ref": "/etc/passwd"})
    assert recipe.input_ref == "shapes-circle" and any("Unknown image sample" in w for w in warnings)
    recipe, warnings = Recipe.from_query_params({"v": "2", "input": "image", "ref": "upload:ab12"})
    assert recipe.input_ref == "shapes-circle" and any("upload it again" in w for w in warnings)
    recipe, warnings = Recipe.from_query_params({"v": "1", "text": "upload: my notes"})  # only text, as before
    assert (recipe.text, warnings) == ("upload: my notes", []) and recipe.input_in_url
    with pytest.raises(ValueError, match="unknown audio sample"):
        Recipe(input_kind="audio", input_ref="x").source()
    with pytest.raises(ValueError, match="upload it again"):
        Recipe(input_kind="image", input_ref="upload:0f").source()
    assert not Recipe(input_kind="image", input_ref="upload:0f").input_in_url


def test_parse_indices() -> None:
    assert parse_indices("0,2,4-6") == (0, 2, 4, 5, 6) and parse_indices("all") == () == parse_indices(" ")
    for bad, message in (("a-b", "takes indices like"), ("5-2", "low to high"), ("0-30000000", "at most 4095"),
                         ("9999", "between 0 and 4095")):
        with pytest.raises(ValueError, match=message):
            parse_indices(bad, "--layers")


class _Model:
    """What the policy reads of a loaded model."""

    def __init__(self, n_layers: int = 6, n_heads: int = 12, causal: bool = False, id: str = "m") -> None:
        self.n_layers, self.n_heads, self.causal, self.id = n_layers, n_heads, causal, id


def test_policy_draws_the_seed_once_and_only_when_used() -> None:
    static = resolve(Recipe(strategy="causal"), _Model())
    assert static.recipe.seed is None and static.plan.seed == 0
    dynamic = resolve(TwoSided(page="compare", strategy="causal", strategy2="lsh"), _Model())
    seed = dynamic.recipe.seed
    assert seed is not None and dynamic.plans["b"].seed == seed  # drawn once for the recipe
    assert dynamic.plans["a"].seed == 0  # the static side: 0, so a re-drawn seed does not rerun it
    again = resolve(dynamic.recipe, _Model())
    assert again.recipe == dynamic.recipe and again.plans["b"].seed == seed  # a recipe with a seed keeps it
    assert resolve(Recipe(strategy="causal", seed=7), _Model()).plan.seed == 0  # unused: one cache entry


def test_policy_fits_indices_to_the_model_as_warnings_or_errors() -> None:
    recipe = Recipe(layers=(1, 99), heads=(50,), layer=99, head=3, model_causal=False)
    fitted, warnings = fit_to_model(recipe, 6, 12, causal=False, model_name="minilm")
    assert fitted.layers == (1,) and fitted.heads == () and fitted.layer == 0 and fitted.head == 3
    assert fitted.model_causal is True and any("99" in w for w in warnings) and any("50" in w for w in warnings)
    with pytest.raises(ValueError, match="layers must be between 0 and 5"):
        resolve(recipe, _Model(), strict=True)
    resolved = resolve(recipe, _Model())
    assert resolved.plan.layers == (1,) and resolved.warnings


def test_only_the_playground_reads_past_the_usual_token_limit() -> None:
    assert Recipe(max_tokens=4000).max_tokens == 4000
    assert Recipe(page="compare", max_tokens=4000).max_tokens == 0  # its views need every weight
    assert Recipe(input_kind="image", input_ref="shapes_circle", max_tokens=4000).max_tokens == 0
    linked, warnings = Recipe.from_query_params({"v": "2", "page": "compare", "tokens": "4000"})
    assert linked.max_tokens == 0 and linked.source().max_tokens is None and not warnings
    assert Recipe(max_tokens=4000).source().max_tokens == 4000


def test_a_link_without_steps_keeps_the_old_default_and_a_fresh_page_gets_the_new_one() -> None:
    """The default went from 64 to 128 integration steps; a link written without ``steps=`` (by hand: the app always
    writes it) still opens at 64, with the numbers it had."""
    from dynmask_core.attribution import DEFAULT_STEPS

    assert DEFAULT_STEPS == 128 and Recipe.default("attribution").attr_steps == 128
    for query in ({"v": "2", "page": "attribution"}, {"v": "1", "page": "attribution", "text": "Hi there."},
                  {"v": "2", "page": "attribution", "input": "image", "ref": "shapes-cross", "model": "shapes_vit"}):
        recipe, warnings = Recipe.from_query_params(query)
        assert recipe.attr_steps == 64 and not warnings, query
    recipe, _ = Recipe.from_query_params({"v": "2", "page": "attribution", "steps": "128"})
    assert recipe.attr_steps == 128
    assert Recipe.from_query_params({"page": "attribution"})[0].attr_steps == 128  # no v=: not a shared link


def test_an_image_link_without_a_sample_opens_one_its_model_can_know() -> None:
    recipe, _ = Recipe.from_query_params({"v": "2", "page": "playground", "input": "image"})
    assert recipe.model == "shapes_vit2" and recipe.input_ref.startswith(("shapes-", "drawn-"))
    recipe, _ = Recipe.from_query_params({"v": "2", "input": "image", "ref": "chelsea", "model": "shapes_vit"})
    assert (recipe.model, recipe.input_ref) == ("shapes_vit", "chelsea")  # a link made before still opens as it was
