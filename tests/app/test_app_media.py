"""Image runs through AppTest: a link naming a bundled photo and an image model shows the overlays and the numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers as tf
from streamlit.testing.v1 import AppTest

from dynmask_app.state import AppState
from dynmask_core import MaskPlan, encode, load, run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("vit_app")
    torch.manual_seed(0)
    cfg = tf.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=37, id2label={0: "cat", 1: "coffee", 2: "rocket"},
                       label2id={"cat": 0, "coffee": 1, "rocket": 2}, architectures=["ViTForImageClassification"])
    tf.ViTForImageClassification(cfg).save_pretrained(folder)
    tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


def _charts(at: AppTest) -> str:
    """The plotly charts' specs and the output's HTML bars, as one text to search for titles."""
    return " ".join([c.proto.spec for c in at.get("plotly_chart")] + [h.proto.body for h in at.get("html")])


def _open_clean(state: AppState) -> AppTest:
    """The Playground opened on ``state``'s link, checked for no exception, error or warning."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(state.to_query_params())
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error and not at.warning
    return at


def test_image_link_shows_overlays_and_the_numbers_of_the_core(vit_folder) -> None:
    state = AppState(input_kind="image", input_ref="chelsea", model=vit_folder, strategy="neighborhood2d",
                     params={"radius": 1}, layer=1, head=2)
    at = _open_clean(state)
    titles = _charts(at)
    for text in ("Masked run: CLS attends to (L1 H2)", "Baseline: CLS attends to", "Mask applied for CLS",
                 "Rollout, masked run", "Class probabilities"):
        assert text in titles, text
    shown = next(iter(at.session_state["pg.shown"].values())).resolve()
    loaded = load(vit_folder, device="cpu")
    direct = run(loaded, encode(loaded, state.source()), MaskPlan.of("neighborhood2d", {"radius": 1}))
    assert shown.metrics == direct.metrics and torch.equal(shown.masks, direct.masks)
    assert shown.geometry.grid == (4, 4) and shown.tokens[:2] == ["CLS", "r0c0"]
    assert at.selectbox(key="pg.s1").value == "neighborhood2d"


def test_a_2d_strategy_on_text_is_a_message_not_a_crash() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(AppState(strategy="axial").to_query_params())
    at.run()
    assert not at.exception
    assert any("2-D grid of image patches" in e.value for e in at.error)


@pytest.mark.parametrize(("state", "titles"), [
    (AppState(input_kind="image", input_ref="shapes-star", model="shapes_vit", strategy="mae_patches", seed=3),
     ("What the masked run saw (input mask)", "Masked run: CLS attends to", "Rollout, masked run")),
    (AppState(input_kind="audio", input_ref="kw-stop", model="keywords_audio", strategy="specaugment", seed=2),
     ("The recording (1.29 s at 16000 Hz)", "attends along time", "What the masked run could not hear",
      "Rollout from the first token")),
], ids=["image-mae", "audio-specaugment"])
def test_bundled_media_links_with_input_masks(state: AppState, titles: tuple[str, ...]) -> None:
    at = _open_clean(state)
    shown = _charts(at)
    for text in titles:
        assert text in shown, text
    result = next(iter(at.session_state["pg.shown"].values())).resolve()
    assert result.hidden is not None and bool(result.hidden.any()) and result.seed == state.seed
