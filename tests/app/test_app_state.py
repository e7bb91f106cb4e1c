"""The shareable state: lossless URL round trip, forgiving parsing, model checks."""

from __future__ import annotations

import pytest

from dynmask_app.state import MAX_URL_TEXT, AppState

STATES = [
    AppState(),
    AppState.default("compare"),
    AppState(strategy="topk", params={"k": 3}, op="and", strategy2="causal", layers=(3, 0, 1), heads=(2,),
             mode="bias", beta=2.5, seed=7, model_causal=False, layer=2, head=5),
    AppState(strategy="random_dynamic", params={"p": 0.123456789, "per_head": False}, op="or",
             strategy2="prefix_lm", params2={"prefix": 3}, mode="gate", renormalize=False, seed=2**31 - 1),
    AppState(page="compare", model="org/some-model", input_ref="Ünïcödé & symbols ?=#% \n new line", strategy="lsh",
             params={"buckets": 8}, strategy2="kmeans", params2={"clusters": 5}, seed=0, mode="naive_multiply"),
    AppState(strategy="dynamic_weight", params={"apply": "threshold", "strength": 0.1, "keep": 0.3}),
]


@pytest.mark.parametrize("state", STATES, ids=range(len(STATES)))
def test_round_trip_is_lossless(state: AppState) -> None:
    qp = state.to_query_params()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in qp.items())
    back, warnings = AppState.from_query_params(qp)
    assert warnings == []
    assert back == state
    assert back.to_query_params() == qp


def test_params_are_completed_and_typed() -> None:
    state = AppState(strategy="sliding_window", params={"radius": "3"})
    assert dict(state.params) == {"radius": 3, "causal": False, "sinks": 0}
    assert AppState().params == AppState(params={"radius": 2}).params


def test_second_strategy_dropped_without_op() -> None:
    state = AppState(op="none", strategy2="causal")
    assert state.strategy2 == "none" and "s2" not in state.to_query_params()


def test_long_text_is_left_out_of_the_url() -> None:
    state = AppState(input_ref="word " * 300)
    assert len(state.text) > MAX_URL_TEXT and not state.input_in_url
    assert "text" not in state.to_query_params()
    back, warnings = AppState.from_query_params(state.to_query_params())
    assert warnings == [] and back.text == AppState().text


def test_empty_link_gives_page_defaults() -> None:
    assert AppState.from_query_params({}) == (AppState(), [])
    compare, warnings = AppState.from_query_params({}, page="compare")
    assert (compare.strategy, compare.strategy2, warnings) == ("sliding_window", "random_dynamic", [])


def test_bad_values_become_warnings_and_defaults() -> None:
    qp = {"s": "bogus", "p.radius": "-5", "seed": "abc", "mode": "sideways", "beta": "nan", "layer": "-1",
          "layers": "1,x", "renorm": "maybe", "op": "xor", "page": "nowhere", "v": "9", "zzz": "1"}
    state, warnings = AppState.from_query_params(qp)
    assert state == AppState()
    text = " ".join(warnings)
    for word in ("bogus", "seed", "sideways", "nan", "Layer", "Layers", "maybe", "xor", "nowhere", "v=", "zzz"):
        assert word.lower() in text.lower(), word


def test_out_of_range_param_keeps_the_strategy() -> None:
    state, warnings = AppState.from_query_params({"s": "sliding_window", "p.radius": "-5", "p.causal": "true"})
    assert dict(state.params) == {"radius": 2, "causal": True, "sinks": 0}
    assert len(warnings) == 1 and "radius" in warnings[0] and "-5" in warnings[0]


def test_unknown_param_name_is_named() -> None:
    state, warnings = AppState.from_query_params({"s": "causal", "p.k": "3"})
    assert state.strategy == "causal" and "'k'" in warnings[0]


def test_list_values_take_the_last() -> None:
    state, _ = AppState.from_query_params({"seed": ["1", "5"]})
    assert state.seed == 5


def test_check_model_drops_missing_indices() -> None:
    state = AppState(layers=(1, 99), heads=(50,), layer=99, head=3, model_causal=False)
    checked, warnings = state.check_model(6, 12, causal=False, model_name="minilm")
    assert checked.layers == (1,) and checked.heads == () and checked.layer == 0 and checked.head == 3
    assert checked.model_causal is True
    assert any("99" in w for w in warnings) and any("50" in w for w in warnings)


def test_invalid_construction_raises() -> None:
    with pytest.raises(ValueError, match="radius"):
        AppState(params={"radius": -1})
    with pytest.raises(ValueError, match="unknown strategy"):
        AppState(strategy="nope")
    with pytest.raises(ValueError, match="seed"):
        AppState(seed=-3)


def test_plan_seed_only_where_it_matters() -> None:
    assert AppState(seed=None).plan().seed == 0  # static: no randomness, one cache entry
    assert AppState(strategy="random_dynamic", seed=11).plan().seed == 11
    compare = AppState.default("compare")
    assert compare.uses_seed() and not compare.uses_seed("a") and compare.uses_seed("b")


def test_non_finite_numbers_in_a_link_are_warnings_not_crashes() -> None:
    from dynmask_app.state import AppState

    for value in ("inf", "-inf", "1e400", "nan", "9" * 400):
        state, warnings = AppState.from_query_params({"s": "sliding_window", "p.radius": value})
        assert len(warnings) == 1 and "radius" in warnings[0], value
        assert dict(state.params)["radius"] == 2


# ------------------------------------------------------------------------------------- links opened in the app


def _open(query: dict[str, str], file: str = "app.py"):
    from tests.app.pages import open_page

    return open_page(file, query)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_link_with_an_unknown_model_says_so_once(lang) -> None:
    from dynmask_app.i18n import translate

    at = _open({"model": "no-such-org/no-such-model", "lang": lang})
    assert not at.exception
    said = [e.value for e in at.error if "no-such-model" in e.value]
    assert len(said) == 1, said  # under the model picker, not again in the results area
    assert [e.value for e in at.sidebar.error] == said
    (note,) = at.info  # in place of the results: where the message is
    assert note.value == translate("**No result.** The model in the sidebar could not be loaded; the message under "
                                   "the model picker says why. Pick another model there, then press **Run**.", lang)


def _page_box(at, lang: str) -> str:
    from dynmask_app.i18n import translate

    boxes = [w.value for w in at.warning]
    assert len(boxes) == 1, boxes  # one message about it: not also the recipe's own "Unknown page"
    head = translate("There is no page {name} in this app, so this is the page {here}. The pages are: {pages}.", lang)
    assert boxes[0].startswith(head.split("{name}")[0]), boxes[0]
    for nav in ("Playground", "Compare two strategies", "Attribution", "Lesson: static vs dynamic MLM masking"):
        assert translate(nav, lang).replace(":", "\\:") in boxes[0]
    return boxes[0]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_unknown_page_in_a_link_is_said_with_the_pages_there_are(lang) -> None:
    from dynmask_app.i18n import translate

    at = _open({"page": "atribution", "lang": lang})
    assert not at.exception and not at.error
    box = _page_box(at, lang)
    assert "page='atribution'" in box and "page=attribution\\)" in box and "page=mlm\\)" in box
    assert at.title[0].value == translate("Attention masks, inside a real model", lang)  # the Playground
    at.button(key="pg.run").click().run()  # said until the next Run, like the link's other warnings
    assert not at.warning


def test_an_unknown_page_is_shown_literally() -> None:
    at = _open({"page": "**x**[y](https://e.com)<b>"})
    box = _page_box(at, "en")
    assert "\\*\\*x\\*\\*\\[y\\]\\(https" in box and "\\<b\\>" in box


def test_the_mlm_labs_own_link_opens_the_mlm_lab() -> None:
    at = _open({"page": "mlm", "seed": "3", "steps": "50"})
    assert not at.exception and not at.warning
    assert at.title[0].value == "Static vs dynamic masking in BERT-style pre-training"
    assert at.number_input(key="mlm.seed").value == 3


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_mistyped_address_says_the_page_does_not_exist(lang, monkeypatch) -> None:
    from streamlit.runtime.pages_manager import PagesManager

    intent = PagesManager.set_script_intent

    def asked(self, page_script_hash, page_name):  # the browser asked for http://host/Atribution
        intent(self, page_script_hash, page_name or "Atribution")

    monkeypatch.setattr(PagesManager, "set_script_intent", asked)
    at = _open({"lang": lang} if lang != "en" else {})
    assert not at.exception and not at.error
    box = _page_box(at, lang)
    assert "'/Atribution'" in box and "\\(/Attribution\\)" in box and "\\(/MLM\\_lab\\)" in box and "\\(/\\)" in box
