"""Image runs through AppTest: a link naming a bundled photo and an image model shows the overlays and the numbers."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import soundfile as sf
import torch
import transformers as tf
from PIL import Image
from streamlit.testing.v1 import AppTest

from dynmask_app.session import PageSession
from dynmask_app.state import AppState
from dynmask_core import MaskPlan, encode, load, run
from tests import ROOT


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
    shown = next(iter(PageSession("playground", at.session_state).shown.values())).resolve()
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
    result = next(iter(PageSession("playground", at.session_state).shown.values())).resolve()
    assert result.hidden is not None and bool(result.hidden.any()) and result.seed == state.seed


# ---------------------------------------------------------------------------------------------------------------------
# A result is shown only for the input it belongs to (issue 22, item 4): after a good run, a bad upload, a removed
# upload or a switch of input kind leaves the sidebar without a usable input; Run then says so, and the old result
# must not stay under the message (a note says it is hidden).

GOOD = {"image": ("red-square.png", "image/png"), "audio": ("tone.wav", "audio/wav")}
WORD = {"image": "picture", "audio": "recording"}
#: What the main area may hold while no result is shown: the page's heading, the Run button, messages, layout.
NO_RESULT = {"main", "title", "caption", "flex_container", "button", "error", "info", "empty"}


def good_file(kind: str) -> bytes:
    buf = io.BytesIO()
    if kind == "image":
        canvas = np.full((64, 64, 3), 235, np.uint8)
        canvas[20:44, 20:44] = (200, 30, 30)
        Image.fromarray(canvas).save(buf, format="PNG")
    else:
        t = np.arange(16000) / 16000
        sf.write(buf, (0.3 * np.sin(2 * np.pi * 330 * t) * np.hanning(t.size)).astype(np.float32), 16000,
                 format="WAV")
    return buf.getvalue()


def drawn(at: AppTest) -> set[str]:
    """The kinds of element in the main area (the sidebar left out; style sheets are not content)."""
    return {node.type for node in at.main
            if not (node.type == "markdown" and str(node.value).lstrip().startswith("<style"))}


def errors(at: AppTest) -> str:
    return " | ".join(re.sub(r"\\(.)", r"\1", e.value) for e in at.error)  # messages.plain escapes markdown


def assert_no_result(at: AppTest, ns: str) -> None:
    """Nothing of a result is drawn, only a note that says the last one is hidden; none is kept as shown."""
    assert not at.exception, [e.value for e in at.exception]
    assert drawn(at) <= NO_RESULT, drawn(at) - NO_RESULT
    assert not at.get("plotly_chart") and not at.get("vega_lite_chart") and not at.metric
    assert any("No result shown" in i.value for i in at.info), [i.value for i in at.info]
    assert f"{ns}.shown" not in at.session_state


def assert_result(at: AppTest, ns: str) -> None:
    assert not at.exception and not at.error, errors(at)
    assert at.get("plotly_chart") and not any("No result shown" in i.value for i in at.info)
    assert f"{ns}.shown" in at.session_state


def upload_and_run(at: AppTest, ns: str, kind: str, name: str, data: bytes, mime: str) -> AppTest:
    at.file_uploader(key=f"{ns}.{kind}_upload").set_value((name, data, mime)).run()
    return at.button(key=f"{ns}.run").click().run()


def open_upload(path: str, ns: str, kind: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=300).run()
    at.radio(key=f"{ns}.kind").set_value(kind).run()
    return at.radio(key=f"{ns}.{kind}_origin").set_value(f"Upload a {WORD[kind]}").run()


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_a_bad_or_removed_upload_after_a_good_run_hides_the_old_result(kind: str) -> None:
    name, mime = GOOD[kind]
    at = upload_and_run(open_upload("app.py", "pg", kind), "pg", kind, name, good_file(kind), mime)
    assert_result(at, "pg")
    bad = f"x.{name.rsplit('.', 1)[1]}"
    at.file_uploader(key=f"pg.{kind}_upload").set_value((bad, b"this is a text file", mime)).run()
    assert "x." in errors(at) and "corrupt" in errors(at)  # the upload's own message, in the sidebar
    assert_no_result(at, "pg")  # already hidden: the sidebar has no usable input any more
    at.button(key="pg.run").click().run()
    assert f"Upload a {WORD[kind]} first" in errors(at)
    assert_no_result(at, "pg")
    at.run()  # still hidden when the whole page is drawn again (e.g. another language)
    assert_no_result(at, "pg")

    at = upload_and_run(at, "pg", kind, name, good_file(kind), mime)  # a good file and Run: shown again
    assert_result(at, "pg")
    at.file_uploader(key=f"pg.{kind}_upload").clear().run()  # removed
    at.button(key="pg.run").click().run()
    assert f"Upload a {WORD[kind]} first" in errors(at)
    assert_no_result(at, "pg")


def test_another_input_kind_with_nothing_picked_hides_the_texts_result() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at.button(key="pg.run").click().run()
    assert_result(at, "pg")
    at.radio(key="pg.kind").set_value("image").run()
    at.radio(key="pg.image_origin").set_value("Upload a picture").run()
    at.button(key="pg.run").click().run()
    assert "Upload a picture first" in errors(at)
    assert_no_result(at, "pg")
    at.radio(key="pg.image_origin").set_value("Bundled sample").run()  # a usable input again: Run shows its result
    at.button(key="pg.run").click().run()
    assert_result(at, "pg")
    assert PageSession("playground", at.session_state).active.input_kind == "image"


@pytest.mark.parametrize(("path", "ns"), [("pages/1_Compare.py", "cmp"), ("pages/2_Attribution.py", "attr")],
                         ids=["compare", "attribution"])
def test_compare_and_attribution_hide_the_old_result_after_a_bad_upload(path: str, ns: str) -> None:
    at = upload_and_run(open_upload(path, ns, "image"), ns, "image", "red-square.png", good_file("image"),
                        "image/png")
    assert_result(at, ns)
    at = upload_and_run(at, ns, "image", "x.png", b"this is a text file", "image/png")
    assert "Upload a picture first" in errors(at)
    assert_no_result(at, ns)


@pytest.mark.parametrize(("model", "kind", "ref", "lang"), [
    ("shapes_vit", "image", "chelsea", "en"),  # a photo of a cat, to a model that knows six shapes
    ("keywords_audio", "audio", "kw-stop", "zh"),
])
def test_a_closed_set_classifier_says_what_it_can_answer(model: str, kind: str, ref: str, lang: str) -> None:
    """Issue 22, item 6: the bundled classifiers pick one of their classes whatever they are given (the cat photo was
    'ring 100.0%'); the result says which answers the model has, and that 'none of these' is not one of them."""
    from dynmask_app.i18n import translate
    from dynmask_core.models import load as load_model

    link = AppState(page="playground", model=model, input_kind=kind, input_ref=ref, strategy="none", lang=lang)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(link.to_query_params())
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    labels = load_model(model).labels
    notes = [c.value for c in at.caption if all(label in c.value for label in labels)]
    assert len(notes) == 1, [c.value for c in at.caption]
    head = translate("**This model knows only these {n} answers:**", lang).format(n=len(labels))
    assert notes[0].startswith(head), notes[0]


def test_the_sentiment_model_gets_no_closed_set_note() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(AppState(page="playground").to_query_params())
    at.run()
    assert not at.exception
    assert not [c.value for c in at.caption if "knows only these" in c.value]
