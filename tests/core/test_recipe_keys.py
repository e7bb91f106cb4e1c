"""Cache keys from the recipe schema: each field declares what it affects, and the keys follow the declarations."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import pytest

from dynmask_core.attribution import METHODS, STEPPED, check_method
from dynmask_core.recipe import AFFECTS, Recipe, declare


class TwoSided(Recipe):
    """A recipe class whose ``compare`` page shows two runs (as the app's page registry says)."""

    def sides(self) -> tuple[str, ...]:
        return ("a", "b") if self.page == "compare" else ("main",)


# (field, the recipe it changes in, its other value): a valid recipe where the field counts (its page, its `when`).
TWO = {"op": "and", "strategy2": "prefix_lm"}  # a second strategy joined to the first
RUN_CHANGES = [
    ("model", {}, "org/other-model"),
    ("input_kind", {"input_ref": "shapes-star"}, "image"),
    ("input_ref", {}, "Another text."),
    ("max_tokens", {}, 4096),
    ("strategy", {}, "causal"),
    ("params", {}, {"radius": 5}),
    ("op", TWO, "or"),
    ("strategy2", TWO, "causal"),
    ("params2", TWO, {"prefix": 2}),
    ("layers", {}, (1,)),
    ("heads", {}, (0, 2)),
    ("mode", {}, "bias"),
    ("beta", {"mode": "bias"}, 2.5),
    ("renormalize", {"mode": "gate"}, False),
    ("seed", {"strategy": "random_dynamic", "seed": 1}, 2),
    ("model_causal", {}, False),
]
ATTRIBUTION_CHANGES = [
    ("attr_method", {"page": "attribution"}, "saliency"),
    ("attr_target", {"page": "attribution"}, "positive"),
    ("attr_steps", {"page": "attribution", "attr_method": "ig"}, 7),
    ("attr_steps", {"page": "attribution", "attr_method": "attention_attribution"}, 7),
]
VIEW_CHANGES = [
    ("page", {}, "sinks"),
    ("page", {}, "attribution"),
    ("page", {"page": "attribution", "strategy": "causal"}, "steps"),
    ("layer", {}, 2),
    ("head", {}, 3),
    ("lang", {}, "zh"),
    ("present", {}, True),
    *((name, {"page": "attribution", "attr_method": "attention_attribution", "attr_steps": 9, "attr_target": "x"},
       value) for name, value in (("layer", 1), ("head", 1), ("lang", "zh"), ("present", True))),
]
# Changes that do not count: the field's `when` unmet, another page's field, a seed no strategy draws from.
IDLE_CHANGES = [
    ("beta", {}, 2.5),  # hard mode
    ("renormalize", {"mode": "bias"}, False),
    ("seed", {}, 7),  # sliding_window is static
    ("attr_steps", {"page": "attribution", "attr_method": "saliency"}, 7),
    ("attr_method", {}, "saliency"),  # the Playground explains nothing
    ("attr_target", {}, "positive"),
]


def _pair(cls: type, name: str, base: dict, value) -> tuple[Recipe, Recipe]:
    """The recipe ``base`` and the same with ``name`` set to ``value`` (checked to really differ); a new strategy
    starts from its default parameters."""
    before = cls(**base)
    params = {s.name: () for s in cls.fields_spec() if s.type == "params" and s.of == name}
    after = replace(before, **{name: value, **params})
    assert getattr(after, name) != getattr(before, name), f"{name}: the recipe normalised the change away"
    return before, after


def test_every_field_declares_what_it_affects() -> None:
    by_scope = {scope: {s.name for s in Recipe.fields_spec() if s.affects == scope} for scope in AFFECTS}
    assert sum(map(len, by_scope.values())) == len(Recipe.fields_spec())
    assert by_scope["attribution"] == {"attr_method", "attr_target", "attr_steps"}
    assert by_scope["view"] == {"page", "layer", "head", "lang", "present"}
    assert by_scope["input"] == {"input_kind", "input_ref", "model", "max_tokens"}
    assert by_scope["input"] | by_scope["run"] == {name for name, _, _ in RUN_CHANGES}  # a new one is tested below
    assert {name for name, _, _ in ATTRIBUTION_CHANGES} == by_scope["attribution"]
    assert {name for name, _, _ in VIEW_CHANGES} == by_scope["view"]


def test_a_field_without_a_valid_affects_is_refused_when_declared() -> None:
    with pytest.raises(ValueError, match="temperature must declare affects=.*input, run, attribution, view"):
        declare(1.0, type="float", min=0.0, max=2.0, label="temperature", help="forgot")
    with pytest.raises(ValueError, match="got 'everything'"):

        @dataclass(frozen=True)
        class Forgot(Recipe):
            temperature: float = declare(1.0, type="float", min=0.0, max=2.0, label="temperature", help="x",
                                         affects="everything")


@pytest.mark.parametrize(("name", "base", "value"), RUN_CHANGES, ids=[c[0] for c in RUN_CHANGES])
def test_each_run_field_changes_the_run_key(name, base, value) -> None:
    before, after = _pair(Recipe, name, base, value)
    assert before.counts(Recipe.spec(name))
    assert after.key_values("run") != before.key_values("run")
    assert after.cache_key("run") != before.cache_key("run")
    assert after.cache_key("attribution") != before.cache_key("attribution")


@pytest.mark.parametrize(("name", "base", "value"), ATTRIBUTION_CHANGES, ids=[c[0] for c in ATTRIBUTION_CHANGES])
def test_each_attribution_field_changes_the_attribution_key_only(name, base, value) -> None:
    before, after = _pair(Recipe, name, base, value)
    assert after.cache_key("attribution") != before.cache_key("attribution")
    assert after.cache_key("run") == before.cache_key("run")


@pytest.mark.parametrize(("name", "base", "value"), VIEW_CHANGES, ids=[c[0] for c in VIEW_CHANGES])
def test_a_view_field_changes_neither_key(name, base, value) -> None:
    before, after = _pair(Recipe, name, base, value)
    assert after.cache_key("run") == before.cache_key("run")
    assert after.cache_key("attribution") == before.cache_key("attribution")
    assert after.cache_key("view") != before.cache_key("view")


@pytest.mark.parametrize(("name", "base", "value"), IDLE_CHANGES, ids=[c[0] for c in IDLE_CHANGES])
def test_a_field_that_does_not_count_changes_no_key(name, base, value) -> None:
    before, after = _pair(Recipe, name, base, value)
    assert not after.counts(Recipe.spec(name))
    assert after.cache_key("attribution") == before.cache_key("attribution")


def test_the_steps_count_exactly_for_the_methods_whose_numbers_they_change() -> None:
    for method in METHODS:
        before, after = _pair(Recipe, "attr_steps", {"page": "attribution", "attr_method": method}, 7)
        changes_key = after.cache_key("attribution") != before.cache_key("attribution")
        assert changes_key == (method in STEPPED) == (check_method(method, 7) is not None), method


def test_max_tokens_zero_is_the_same_run_on_every_page() -> None:
    playground = Recipe(max_tokens=0)
    assert playground.counts(Recipe.spec("max_tokens"))
    assert Recipe(page="sinks").cache_key("run") == playground.cache_key("run")
    assert Recipe(max_tokens=512).cache_key("run") != playground.cache_key("run")
    assert Recipe(page="sinks", max_tokens=512).cache_key("run") == playground.cache_key("run")  # reset there


def test_the_sides_of_a_two_run_page_have_keys_of_their_own() -> None:
    compare = TwoSided(page="compare", strategy="random_dynamic", strategy2="prefix_lm", seed=1)
    for name, value in (("strategy", "causal"), ("params", {"p": 0.5})):
        other = replace(compare, **{name: value, "params": () if name == "strategy" else value})
        assert other.cache_key("run", side="a") != compare.cache_key("run", side="a")
        assert other.cache_key("run", side="b") == compare.cache_key("run", side="b")
    other = replace(compare, strategy2="causal", params2=())
    assert other.cache_key("run", side="a") == compare.cache_key("run", side="a")
    assert other.cache_key("run", side="b") != compare.cache_key("run", side="b")
    redrawn = replace(compare, seed=2)  # only side a draws from the seed
    assert redrawn.cache_key("run", side="a") != compare.cache_key("run", side="a")
    assert redrawn.cache_key("run", side="b") == compare.cache_key("run", side="b")
    assert redrawn.cache_key("run") != compare.cache_key("run")  # the whole recipe: both sides
    assert compare.cache_key("run", side="a") != compare.cache_key("run", side="b")
    assert replace(compare, op="and").cache_key("run") == compare.cache_key("run")  # no joined run here


def test_keys_are_canonical_json() -> None:
    recipe = Recipe(strategy="dynamic_weight", params={"strength": 0.1, "keep": 0.3, "apply": "threshold"},
                    layers=(3, 0, 1), heads=(2,))
    values = recipe.key_values("run")
    assert values["params"] == [[name, value] for name, value in recipe.params]
    assert [name for name, _ in values["params"]] == sorted(name for name, _ in recipe.params)
    assert values["layers"] == [0, 1, 3] and values["heads"] == [2] and values["seed"] is None
    key = recipe.cache_key("run", plan={"seed": 5, "layers": (0, 1)}, what="run")
    data = json.loads(key)
    assert key == json.dumps(data, sort_keys=True, ensure_ascii=False)
    assert data["recipe"] == values and data["extra"] == {"plan": {"layers": [0, 1], "seed": 5}, "what": "run"}
    assert recipe.cache_key("run", plan={"seed": 6, "layers": (0, 1)}, what="run") != key  # the extra counts
    assert recipe.cache_key("run", what="run", plan={"layers": [0, 1], "seed": 5}) == key  # in any order
    assert set(recipe.key_values("attribution")) - set(values) == {"attr_method", "attr_target", "attr_steps"}
    assert Recipe.spec("params").key_value({"b": 1, "a": (2, 3)}) == [["a", [2, 3]], ["b", 1]]
    assert [json.loads(recipe.cache_key("run", side=side))["side"] for side in (None, "main")] == [None, "main"]
    with pytest.raises(ValueError, match="scope must be one of input, run, attribution, view, got 'runs'"):
        recipe.cache_key("runs")


@dataclass(frozen=True)
class WithMore(Recipe):
    """A recipe with two fields more: one that changes the run, one that changes only the view."""

    temperature: float = declare(1.0, type="float", min=0.0, max=10.0, affects="run", label="Temperature",
                                 help="a new field that changes the run")
    zoom: float = declare(1.0, type="float", min=0.5, max=4.0, affects="view", label="Zoom",
                          help="a new field that changes only what is shown")


def test_a_new_field_is_in_the_keys_its_declaration_says() -> None:
    base = WithMore()
    hotter, zoomed = replace(base, temperature=2.0), replace(base, zoom=2.0)
    for scope in ("run", "attribution"):
        assert hotter.cache_key(scope) != base.cache_key(scope)
        assert zoomed.cache_key(scope) == base.cache_key(scope)
    assert zoomed.cache_key("view") != base.cache_key("view")
    assert base.key_values("run")["temperature"] == 1.0 and "zoom" not in base.key_values("attribution")


@pytest.mark.parametrize(("name", "base", "value"), RUN_CHANGES, ids=[c[0] for c in RUN_CHANGES])
def test_the_input_key_changes_with_the_input_only(name, base, value) -> None:
    """The unmasked pass of a long input is cached by its ``input`` key: the model and the input change it, a mask
    field does not (every strategy tried on one text shares that pass)."""
    before, after = _pair(Recipe, name, base, value)
    changed = after.cache_key("input") != before.cache_key("input")
    spec = next(s for s in Recipe.fields_spec() if s.name == name)
    assert changed == (spec.affects == "input"), name
