"""The 2-D strategies on image patches: literal grids, FlexAttention's create_mask, and inside a real ViT."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers as tf
from torch.nn.attention.flex_attention import create_mask

from dynmask_core import MaskPlan, encode, load, run
from dynmask_core.masks import dense, get_strategy
from dynmask_core.masks.static import axial, neighborhood2d
from dynmask_core.modalities import ImageSource, TextSource
from tests.core.grids import assert_grid, grid

# CLS, then a 3 x 3 grid of patches numbered row by row:  p0 p1 p2 / p3 p4 p5 / p6 p7 p8
NEIGHBOURS_R1 = grid(*"""
    ■■■■■■■■■■
    ■■■□■■□□□□
    ■■■■■■■□□□
    ■□■■□■■□□□
    ■■■□■■□■■□
    ■■■■■■■■■■
    ■□■■□■■□■■
    ■□□□■■□■■□
    ■□□□■■■■■■
    ■□□□□■■□■■
""".split())
AXIAL = grid(*"""
    ■■■■■■■■■■
    ■■■■■□□■□□
    ■■■■□■□□■□
    ■■■■□□■□□■
    ■■□□■■■■□□
    ■□■□■■■□■□
    ■□□■■■■□□■
    ■■□□■□□■■■
    ■□■□□■□■■■
    ■□□■□□■■■■
""".split())


def test_neighbourhood_and_axial_against_literal_grids() -> None:
    assert_grid(dense(neighborhood2d(1, 3, 3, 1), 10, 10)[0], NEIGHBOURS_R1)
    assert_grid(dense(axial(3, 3, 1), 10, 10)[0], AXIAL)
    assert bool(dense(neighborhood2d(2, 3, 3, 1), 10, 10).all())  # radius 2 covers a 3 x 3 grid
    diag = dense(neighborhood2d(0, 3, 3, 1), 10, 10)[0]
    assert torch.equal(diag[1:, 1:], torch.eye(9, dtype=torch.bool)) and diag[0].all() and diag[:, 0].all()


@pytest.mark.parametrize(("rows", "cols", "prefix"), [(1, 1, 1), (2, 3, 1), (8, 8, 1), (4, 5, 2), (3, 3, 0)])
def test_spatial_masks_equal_flex_attention_create_mask(rows: int, cols: int, prefix: int) -> None:
    n = prefix + rows * cols
    for fn in (neighborhood2d(1, rows, cols, prefix), axial(rows, cols, prefix)):
        assert torch.equal(create_mask(fn, 1, 1, n, n, device="cpu")[0, 0], dense(fn, n, n)[0]), fn.__name__


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vit2d")
    torch.manual_seed(0)
    cfg = tf.ViTConfig(image_size=24, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=37, id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1},
                       architectures=["ViTForImageClassification"])
    tf.ViTForImageClassification(cfg).save_pretrained(folder)
    tf.ViTImageProcessor(size={"height": 24, "width": 24}).save_pretrained(folder)
    return load(str(folder), device="cpu")


def test_spatial_strategies_run_inside_a_vit_with_the_patch_grid(tiny_vit) -> None:
    picture = (np.arange(30 * 30 * 3) % 255).astype(np.uint8).reshape(30, 30, 3)
    prepared = encode(tiny_vit, ImageSource(picture))
    assert prepared.geometry.grid == (3, 3)
    r = run(tiny_vit, prepared, MaskPlan.of("neighborhood2d", {"radius": 1}))
    assert_grid(r.masks[0, 0], NEIGHBOURS_R1)
    assert torch.all(r.attention[~r.masks] == 0)
    r = run(tiny_vit, prepared, MaskPlan.of("axial"))
    assert_grid(r.masks[1, 3], AXIAL)


def test_spatial_strategies_say_they_need_an_image(minilm) -> None:
    assert not get_strategy("axial").takes("text") and get_strategy("axial").takes("image")
    with pytest.raises(ValueError, match="needs|2-D grid of image patches"):
        run(minilm, encode(minilm, TextSource("No grid here.")), MaskPlan.of("neighborhood2d"))
