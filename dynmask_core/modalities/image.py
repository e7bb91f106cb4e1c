"""Image input: the model's own image processor, one label per position (prefix tokens, then patches row by row);
picture files, the bundled pictures, and the attribution space of a picture (its pixels).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dynmask_core.modalities.base import (
    ASSETS,
    FileReader,
    Geometry,
    Modality,
    Prepared,
    Sample,
    folder_samples,
    register_modality,
)
from dynmask_core.modalities.files import IMAGE_SUFFIXES, MAX_IMAGE_BYTES, read_image
from dynmask_core.modalities.space import Space

_PREFIX_TOKENS = ("cls_token", "class_embedding", "distillation_token", "register_tokens")


@dataclass(frozen=True)
class ImageSource:
    """An image: a PIL image or an ``(H, W, C)`` uint8 array (RGB)."""

    image: Any
    kind: str = field(default="image", init=False)


def prepare_image(loaded: Any, source: ImageSource) -> Prepared:
    """Turns an image into ``pixel_values`` with the patch grid the views need.

    Raises:
        ValueError: no image processor, or an image that is not a picture (wrong shape, empty).
    """
    processor = loaded.processor
    if processor is None:
        raise ValueError(f"{loaded.id} has no image processor: it does not take image input.")
    image = _rgb(source.image)
    pixels = processor(images=image, return_tensors="pt", input_data_format="channels_last")["pixel_values"]
    pixels = pixels.to(loaded.device)
    rows, cols = patch_grid(loaded.model, pixels.shape[-2:])
    labels = prefix_labels(loaded.model)
    prefix = len(labels)
    labels += [f"r{r}c{c}" for r in range(rows) for c in range(cols)]
    return Prepared("image", {"pixel_values": pixels}, labels, None, Geometry(grid=(rows, cols), prefix=prefix),
                    n_before=len(labels))


def as_seen(loaded: Any, image: Any) -> np.ndarray:
    """The picture as the model sees it (resized and cropped by its processor), ``(H, W, 3)`` uint8, for drawing
    patch overlays that line up with the patches."""
    out = loaded.processor(images=_rgb(image), return_tensors="np", input_data_format="channels_last")
    pixels = np.asarray(out["pixel_values"][0], dtype=np.float64)  # (C, H, W), normalised
    mean = np.asarray(getattr(loaded.processor, "image_mean", None) or [0.0] * 3, dtype=np.float64)[:, None, None]
    std = np.asarray(getattr(loaded.processor, "image_std", None) or [1.0] * 3, dtype=np.float64)[:, None, None]
    if getattr(loaded.processor, "do_normalize", True):
        pixels = pixels * std + mean
    scale = 255.0 if pixels.max() <= 1.5 else 1.0
    return np.clip(pixels.transpose(1, 2, 0) * scale, 0, 255).astype(np.uint8)


def _rgb(image: Any) -> Any:
    """A PIL image or ``(H, W[, C])`` array as an RGB array ``(H, W, 3)`` uint8."""
    if hasattr(image, "convert"):  # PIL
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4) or min(arr.shape[:2]) < 1:
        raise ValueError(f"an image must be (height, width, channels) with 1, 3 or 4 channels, got {arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr[..., :3]


def patch_grid(model: Any, size: Any) -> tuple[int, int]:
    """``(rows, cols)`` of patches for an input of ``size`` = (H, W) pixels."""
    cfg = getattr(model, "config", None)
    patch = getattr(cfg, "patch_size", 16)
    ph, pw = (patch, patch) if isinstance(patch, int) else tuple(patch)
    return int(size[0]) // ph, int(size[1]) // pw


def prefix_labels(model: Any) -> list[str]:
    """One label per prefix token, in the embeddings' order: CLS, DIST (DeiT), REG0.. (registers)."""
    emb = getattr(getattr(model, getattr(model, "base_model_prefix", ""), model), "embeddings", None)
    out: list[str] = []
    for name, label in (("cls_token", "CLS"), ("class_embedding", "CLS"), ("distillation_token", "DIST"),
                        ("register_tokens", "REG")):
        value = getattr(emb, name, None)
        if value is None:
            continue
        count = int(value.shape[1]) if value.dim() == 3 else 1
        out += [label] if label != "REG" else [f"REG{i}" for i in range(count)]
    return out


def read_image_file(data: bytes, name: str) -> ImageSource:
    """An image file's bytes as a source (see :func:`~dynmask_core.modalities.files.read_image`)."""
    return ImageSource(read_image(data, name))


_PHOTOS = {  # scikit-image's bundled photos: id -> (loader name, title)
    "chelsea": ("chelsea", "Chelsea the cat (photo, scikit-image)"),
    "coffee": ("coffee", "A cup of coffee (photo, scikit-image)"),
    "astronaut": ("astronaut", "Astronaut Eileen Collins (photo, scikit-image)"),
    "rocket": ("rocket", "A rocket on its launch pad (photo, scikit-image)"),
    "camera": ("camera", "The cameraman (greyscale photo, scikit-image)"),
}


def _photo(name: str) -> ImageSource:
    import skimage.data

    return ImageSource(getattr(skimage.data, name)())


#: The bundled shape models (preset ids): the first knows its own bright-on-dark shapes, the second shapes drawn any
#: way (its own pictures and the first model's). Neither knows photos, so neither is offered them.
SHAPES_V1, SHAPES_V2 = "shapes_vit", "shapes_vit2"


def bundled_images() -> list[Sample]:
    """Real photos that ship with scikit-image (for any model), and pictures from the bundled shape models' own
    domain: the first model's (made for both shape models), then the second's (drawn by its held-out generator)."""
    photos = [Sample(sid, "image", title, "scikit-image", lambda name=name: _photo(name))
              for sid, (name, title) in _PHOTOS.items()]
    return (photos
            + folder_samples(ASSETS / "samples" / "shapes", "image", "drawn by scripts/train_shapes_vit.py",
                             read_image_file, made_for=(SHAPES_V1, SHAPES_V2))
            + folder_samples(ASSETS / "samples" / "shapes-v2", "image", "drawn by scripts/shapes_heldout.py",
                             read_image_file, made_for=(SHAPES_V2,)))


def image_space(loaded: Any, prepared: Prepared, inputs: Mapping[str, Tensor]) -> Space:
    """``pixel_values`` ``(1, C, H, W)``; baseline all 0 (the processor's mean colour). A position (patch) gets the
    sum over its pixels; a per-pixel map (channels summed) is kept for the overlay."""

    pixels = inputs["pixel_values"]
    _, c, h, w = pixels.shape
    rows, cols = prepared.geometry.grid
    prefix = int(prepared.geometry.prefix)
    ph, pw = h // rows, w // cols
    r = torch.clamp(torch.arange(h) // ph, max=rows - 1).view(-1, 1)
    col = torch.clamp(torch.arange(w) // pw, max=cols - 1).view(1, -1)
    owner = prefix + r * cols + col  # (H, W)
    owner = torch.where((torch.arange(h).view(-1, 1) < rows * ph) & (torch.arange(w).view(1, -1) < cols * pw),
                        owner, torch.full_like(owner, -1))
    rest = {k: v for k, v in inputs.items() if k != "pixel_values"}
    return Space("pixel_values", pixels.detach(), torch.zeros_like(pixels), rest, owner, len(prepared.labels),
                 (c, ph, pw), "image", cell_axes=(0,), map_axes=(0,))


register_modality(Modality(
    "image", prepare_image, ("pixel_values",), "AutoImageProcessor", ImageSource,
    label="Image", noun="picture", plural="pictures", upload_noun="a picture",
    cli_flag="--image", cli_help="an image file (PNG, JPEG, WebP, BMP, GIF)",
    reader=FileReader(IMAGE_SUFFIXES, MAX_IMAGE_BYTES, read_image_file),
    samples=bundled_images, space=image_space, overlay_name="pixels", order=1))
