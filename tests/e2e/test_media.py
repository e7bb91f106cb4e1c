"""Images and sounds in a real browser: upload a picture and a recording, Run, and see the overlays."""

from __future__ import annotations

from contextlib import suppress

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from dynmask_app.server.serving import load_policy
from tests.e2e.harness import click_run, open_app, runs_started, wait_charts, wait_idle
from tests.e2e.test_browser import no_exception


def _choose(page, label: str) -> None:
    """Clicks the radio option shown as ``label`` in the sidebar and waits for the sidebar rerun."""
    since = runs_started(page)
    page.get_by_test_id("stSidebar").get_by_text(label, exact=True).click()
    wait_idle(page, since=since)


def _upload(page, path) -> None:
    since = runs_started(page)
    page.get_by_test_id("stSidebar").locator("input[type=file]").set_input_files(str(path))
    wait_idle(page, since=since)


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def test_upload_a_picture_and_see_attention_over_it(app_url, page, screenshot, tmp_path):
    picture = tmp_path / "drawing.png"
    canvas = np.full((96, 96, 3), 235, np.uint8)
    canvas[30:66, 30:66] = (200, 30, 30)  # a red square in the middle
    Image.fromarray(canvas).save(picture)
    open_app(page, app_url)
    _choose(page, "Image")
    _choose(page, "Upload a picture")
    _upload(page, picture)
    no_exception(page)
    click_run(page)
    assert wait_charts(page, 2) >= 2  # on the image: masked + baseline overlays (+ mask)
    assert "Class probabilities" in page.locator(".dm-output-bars").inner_text()  # the output: HTML bars
    no_exception(page)
    overlays = page.get_by_test_id("stPlotlyChart").locator("svg image")
    assert overlays.count() >= 2, "the picture should be drawn under the attention overlays"
    assert page.get_by_text("Masked run: CLS attends to", exact=False).count() >= 1
    screenshot(page, "image-upload-overlay")
    _open_tab(page, "Rollout")
    assert page.get_by_text("Rollout, masked run", exact=False).count() >= 1


def test_upload_a_recording_and_see_attention_along_time(app_url, page, screenshot, tmp_path):
    clip = tmp_path / "tone.wav"
    t = np.arange(16000) / 16000
    sf.write(clip, (0.3 * np.sin(2 * np.pi * 330 * t) * np.hanning(t.size)).astype(np.float32), 16000)
    open_app(page, app_url)
    _choose(page, "Audio")
    _choose(page, "Upload a recording")
    _upload(page, clip)
    no_exception(page)
    click_run(page)
    assert wait_charts(page, 1) >= 1
    assert "Class probabilities" in page.locator(".dm-output-bars").inner_text()  # the output: HTML bars
    no_exception(page)
    assert page.locator("audio").count() >= 1, "a player for the recording"
    assert page.get_by_text("attends along time", exact=False).count() >= 1
    screenshot(page, "audio-upload-overlay")


def test_a_bad_upload_is_a_message_not_a_crash(app_url, page, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is a text file with a .png name")
    open_app(page, app_url)
    _choose(page, "Image")
    _choose(page, "Upload a picture")
    _upload(page, fake)
    no_exception(page)
    assert page.get_by_test_id("stAlert").filter(has_text="not a picture").count() >= 1
    click_run(page)  # nothing valid to run: a message, the app keeps going
    no_exception(page)


def _picture(path) -> None:
    canvas = np.full((96, 96, 3), 235, np.uint8)
    canvas[30:66, 30:66] = (200, 30, 30)
    Image.fromarray(canvas).save(path)


def _recording(path) -> None:
    t = np.arange(16000) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 330 * t) * np.hanning(t.size)).astype(np.float32), 16000)


def _no_result_drawn(page) -> None:
    """The main area holds no chart, output or player of a result, and says the last result is hidden."""
    main = page.get_by_test_id("stMain")
    with suppress(Exception):  # a result is hidden by a rerun of the whole page: give it the time it takes
        page.wait_for_function("() => !document.querySelector('[data-testid=stMain] [data-testid=stPlotlyChart]')",
                               timeout=30_000)
    wait_idle(page)
    assert main.get_by_test_id("stPlotlyChart").count() == 0, "a chart of the old input is still drawn"
    assert main.get_by_text("No result shown", exact=False).count() == 1
    assert main.locator(".dm-output-bars").count() == 0, "the old input's output is still drawn"
    assert main.get_by_test_id("stMetric").count() == 0 and main.locator("audio").count() == 0
    assert main.get_by_role("tab").count() == 0


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_a_bad_upload_after_a_good_run_hides_the_old_result(app_url, page, screenshot, tmp_path, kind):
    """Issue 22, item 4: after a good run, a corrupt file and Run say "Upload ... first", and the old result is not
    left under the message. The uploader states the server's limit, in its label and in Streamlit's own words."""
    word, suffix, make = {"image": ("picture", "png", _picture), "audio": ("recording", "wav", _recording)}[kind]
    good, bad = tmp_path / f"good.{suffix}", tmp_path / f"x.{suffix}"
    make(good)
    bad.write_text("this is a text file with a media name")
    open_app(page, app_url)
    _choose(page, kind.capitalize())
    _choose(page, f"Upload a {word}")
    limit = load_policy().max_upload_mb(kind)
    uploader = page.get_by_test_id("stSidebar").get_by_test_id("stFileUploader")
    assert f"(up to {limit} MB)" in uploader.inner_text()
    stated = uploader.get_by_test_id("stFileUploaderDropzoneInstructions").inner_text()
    assert f"{limit}MB per file" in stated.replace(" MB", "MB"), stated  # not Streamlit's default 200MB
    _upload(page, good)
    click_run(page)
    assert wait_charts(page, 1) >= 1
    assert "Class probabilities" in page.locator(".dm-output-bars").inner_text()
    _upload(page, bad)
    no_exception(page)
    assert page.get_by_test_id("stSidebar").get_by_test_id("stAlert").filter(has_text="corrupt").count() >= 1
    _no_result_drawn(page)  # hidden as soon as the sidebar has no usable input
    click_run(page)
    no_exception(page)
    assert page.get_by_test_id("stMain").get_by_test_id("stAlert").filter(
        has_text=f"Upload a {word} first").count() == 1
    _no_result_drawn(page)
    screenshot(page, f"{kind}-bad-upload-after-a-run")
