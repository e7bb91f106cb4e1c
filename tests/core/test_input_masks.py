"""Input-masking strategies: what they hide in the input itself, reproducibly, and what the run records."""

from __future__ import annotations

import pytest
import torch

from dynmask_core import MaskPlan, encode, load, run
from dynmask_core.masks import get_strategy
from dynmask_core.modalities import TextSource
from dynmask_core.samples import get_sample


@pytest.fixture(scope="module")
def shapes():
    loaded = load("shapes_vit", device="cpu")
    return loaded, encode(loaded, get_sample("shapes-star").source())


@pytest.fixture(scope="module")
def keywords():
    loaded = load("keywords_audio", device="cpu")
    return loaded, encode(loaded, get_sample("kw-stop").source())


def _patches(pixels: torch.Tensor) -> torch.Tensor:
    """(64,) bool: the 8 x 8 patches (4 x 4 pixels each) of a 32 x 32 input that are all 0."""
    blocks = pixels[0].abs().sum(0).reshape(8, 4, 8, 4).sum((1, 3))
    return (blocks == 0).reshape(-1)


def test_mae_hides_exactly_its_ratio_of_patches_from_the_seed(shapes) -> None:
    loaded, prepared = shapes
    entry = get_strategy("mae_patches")
    inputs, hidden = entry.hide({"ratio": 0.75}, prepared, 3)
    assert hidden.shape == (65,) and not hidden[0] and int(hidden.sum()) == 48
    assert torch.equal(_patches(inputs["pixel_values"]), hidden[1:])  # exactly the hidden patches are blank
    kept = ~hidden[1:].reshape(8, 8).repeat_interleave(4, 0).repeat_interleave(4, 1)
    assert torch.equal(inputs["pixel_values"][..., kept], prepared.inputs["pixel_values"][..., kept])
    again, same = entry.hide({"ratio": 0.75}, prepared, 3)
    _, other = entry.hide({"ratio": 0.75}, prepared, 4)
    assert torch.equal(again["pixel_values"], inputs["pixel_values"]) and torch.equal(same, hidden)
    assert not torch.equal(other, hidden)
    result = run(loaded, prepared, MaskPlan.of("mae_patches", {"ratio": 0.75}, seed=3))
    assert torch.equal(result.hidden, hidden) and result.metrics["kl"] > 0
    assert bool(result.masks.all()), "hiding the input does not mask attention"
    assert result.to_dict()["hidden_positions"] == torch.nonzero(hidden).flatten().tolist()


def test_beit_hides_rectangular_blocks_up_to_its_ratio(shapes) -> None:
    _, prepared = shapes
    _, hidden = get_strategy("beit_blocks").hide({"ratio": 0.4}, prepared, 7)
    assert 26 <= int(hidden.sum()) <= 64
    _, nothing = get_strategy("beit_blocks").hide({"ratio": 0.0}, prepared, 7)
    assert not nothing.any()


def test_specaugment_blanks_bands_of_the_spectrogram(keywords) -> None:
    loaded, prepared = keywords
    params = {"time_masks": 2, "time_width": 30, "freq_masks": 1, "freq_width": 10}
    inputs, hidden = get_strategy("specaugment").hide(params, prepared, 5)
    feats, before = inputs["input_values"][0], prepared.inputs["input_values"][0]
    blank = (feats == 0) & (before != 0)
    assert blank.any() and torch.equal(feats[~blank], before[~blank])
    assert hidden.shape == (62,) and not hidden[:2].any()
    result = run(loaded, prepared, MaskPlan.of("specaugment", params, seed=5))
    assert torch.equal(result.hidden, hidden)


def test_w2v2_spans_on_spectrogram_frames(keywords) -> None:
    _, prepared = keywords
    inputs, hidden = get_strategy("w2v2_spans").hide({"p": 0.1, "span": 10}, prepared, 2)
    frames_blank = (inputs["input_values"][0] == 0).all(dim=1)
    assert frames_blank.any() and int(frames_blank.sum()) % 1 == 0
    _, none = get_strategy("w2v2_spans").hide({"p": 0.0, "span": 10}, prepared, 2)
    assert not none.any()


def test_input_masks_name_what_they_need(minilm) -> None:
    prepared = encode(minilm, TextSource("Words have no patches."))
    for sid, message in (("mae_patches", "image patches"), ("specaugment", "spectrogram"),
                         ("w2v2_spans", "audio")):
        with pytest.raises(ValueError, match=message):
            get_strategy(sid).hide(get_strategy(sid).resolve({}), prepared, 0)
