"""The image example picker offers a bundled shapes model only its shapes, never photos it cannot know; any other
image model gets the photos too; a link that gives a photo to a shapes model still opens as before (issue 22,
item 6)."""

from __future__ import annotations

import pytest
import torch
import transformers as tf
from streamlit.testing.v1 import AppTest

from dynmask_app.session import PageSession
from dynmask_app.state import AppState
from dynmask_core.samples import samples
from tests import ROOT
from tests.app.pages import no_exception, ok

PHOTO_TITLES = {s.title for s in samples("image") if not s.made_for}
V1_TITLES = {s.title for s in samples("image") if s.id.startswith("shapes-")}
V2_TITLES = {s.title for s in samples("image") if s.id.startswith("drawn-")}


@pytest.fixture(scope="module")
def vit_folder(tmp_path_factory) -> str:
    """A tiny untrained image classifier in a folder: an image model that is not a bundled shapes model."""
    folder = tmp_path_factory.mktemp("vit_offer")
    torch.manual_seed(0)
    cfg = tf.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=37, id2label={0: "cat", 1: "coffee"}, label2id={"cat": 0, "coffee": 1},
                       architectures=["ViTForImageClassification"])
    tf.ViTForImageClassification(cfg).save_pretrained(folder)
    tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


def _open(model: str, ref: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params.update(AppState(page="playground", model=model, input_kind="image", input_ref=ref,
                                    strategy="none").to_query_params())
    return at.run()


def _offered(at: AppTest) -> set[str]:
    return set(at.selectbox(key="pg.image_sample").options)


@pytest.mark.parametrize(("model", "own"), [("shapes_vit", V1_TITLES), ("shapes_vit2", V1_TITLES | V2_TITLES)])
def test_a_shapes_model_is_offered_its_shapes_and_no_photo(model: str, own: set[str]) -> None:
    at = _open(model, "shapes-star")
    ok(at)
    assert _offered(at) == own
    assert not _offered(at) & PHOTO_TITLES
    assert not [c.value for c in at.caption if "not one this model was made for" in c.value]


def test_another_image_model_is_offered_the_photos(vit_folder) -> None:
    at = _open(vit_folder, "chelsea")
    no_exception(at)
    assert _offered(at) >= PHOTO_TITLES
    assert at.selectbox(key="pg.image_sample").value == "chelsea"


def test_switching_to_a_shapes_model_drops_the_photos_but_keeps_the_chosen_one(vit_folder) -> None:
    at = _open(vit_folder, "coffee")
    no_exception(at)
    at.text_input(key="pg.model_custom").set_value("")
    at.selectbox(key="pg.model").set_value("shapes_vit2")
    at.run()
    no_exception(at)
    offered = _offered(at)
    assert at.selectbox(key="pg.image_sample").value == "coffee"  # not swapped behind the user's back
    assert offered & PHOTO_TITLES == {next(s.title for s in samples("image") if s.id == "coffee")}
    at.selectbox(key="pg.image_sample").set_value("drawn-circle-hand").run()
    no_exception(at)
    assert not _offered(at) & PHOTO_TITLES


def test_an_old_link_with_a_photo_and_the_first_shapes_model_opens_as_before() -> None:
    """``?page=playground&input=image&ref=chelsea&model=shapes_vit``: the cat, the first model, 'ring' at 99.99%."""
    at = _open("shapes_vit", "chelsea")
    no_exception(at)
    assert at.selectbox(key="pg.image_sample").value == "chelsea"
    assert at.selectbox(key="pg.model").value == "shapes_vit"
    assert [c.value for c in at.caption if "not one this model was made for" in c.value]
    result = next(iter(PageSession("playground", at.session_state).shown.values())).resolve()
    assert result.outputs["top1"] == "ring"
    assert result.outputs["probs"]["ring"] == pytest.approx(0.9998743534088135, abs=1e-6)
    html = " ".join(h.proto.body for h in at.get("html"))
    assert "ring" in html and "100.0%" in html
