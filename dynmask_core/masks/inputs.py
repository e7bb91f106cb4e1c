"""Input-masking strategies: they hide parts of the input itself (image patches, spectrogram bands, frame spans), as
pre-training does (MAE, BEiT, SpecAugment, wav2vec 2.0), instead of masking attention.

Each is a registry entry whose ``hide(params, prepared, seed, model)`` returns new model inputs plus which positions
were hidden; the engine gives the masked run the hidden input and the baseline the original, and the run
records the hidden positions so the views can show them. Hidden content is set to 0 in the model's normalised
input (the mean of an ImageNet-style image processor with mean/std normalisation, of AST's normalised filter banks);
a wav2vec2-style model gets its own learned mask embedding through ``mask_time_indices``. Randomness comes from the
run's seed, so a run reproduces.

Attention is not masked by these strategies (their attention mask is all True); compose them with an attention
strategy to do both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from dynmask_core.masks.base import MaskContext, MaskOut, Param, Strategy, register
from dynmask_core.masks.code import CodeContext, CodePiece, lit, num


def _generator(seed: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + salt) % (2**63 - 1))


def _need(prepared: Any, strategy: str, what: str) -> tuple[int, int, int]:
    grid = getattr(prepared.geometry, "grid", None)
    if grid is None:
        raise ValueError(f"{strategy} hides {what}: run it on an input that has them")
    return int(grid[0]), int(grid[1]), int(prepared.geometry.prefix)


def _hide_pixels(prepared: Any, hidden_patches: Tensor) -> dict[str, Tensor]:
    """Pixel values with the hidden patches set to 0 (the normalised mean)."""
    pixels = prepared.inputs["pixel_values"].clone()  # (1, C, H, W)
    rows, cols = hidden_patches.shape
    ph, pw = pixels.shape[-2] // rows, pixels.shape[-1] // cols
    cover = hidden_patches.repeat_interleave(ph, 0).repeat_interleave(pw, 1).to(pixels.device)  # (H', W')
    pixels[..., : rows * ph, : cols * pw] = pixels[..., : rows * ph, : cols * pw].masked_fill(cover, 0.0)
    return {**prepared.inputs, "pixel_values": pixels}


def _positions(prefix: int, hidden: Tensor) -> Tensor:
    """(T,) bool over token positions: the prefix tokens are never hidden."""
    return torch.cat([torch.zeros(prefix, dtype=torch.bool), hidden.reshape(-1).cpu()])


def mae_patches(ratio: float, prepared: Any, seed: int, model: Any = None) -> tuple[dict[str, Tensor], Tensor]:
    """MAE (He et al. 2022): a random ``ratio`` of the image's patches is hidden (drawn from the run's seed)."""
    rows, cols, prefix = _need(prepared, "mae_patches", "image patches")
    n = rows * cols
    k = int(round(ratio * n))
    order = torch.randperm(n, generator=_generator(seed, 31))
    hidden = torch.zeros(n, dtype=torch.bool)
    hidden[order[:k]] = True
    hidden = hidden.view(rows, cols)
    return _hide_pixels(prepared, hidden), _positions(prefix, hidden)


def beit_blocks(ratio: float, prepared: Any, seed: int, model: Any = None) -> tuple[dict[str, Tensor], Tensor]:
    """BEiT (Bao et al. 2022): rectangular blocks of patches (at least 4 patches each, aspect ratio 0.3-3.3) are
    hidden until about ``ratio`` of the patches are."""
    rows, cols, prefix = _need(prepared, "beit_blocks", "image patches")
    gen = _generator(seed, 37)
    hidden = torch.zeros(rows, cols, dtype=torch.bool)
    goal = int(round(ratio * rows * cols))
    for _ in range(100):
        if int(hidden.sum()) >= goal:
            break
        area = float(torch.empty(()).uniform_(min(4, goal), max(4, goal - int(hidden.sum())) + 1e-6, generator=gen))
        aspect = math.exp(float(torch.empty(()).uniform_(math.log(0.3), math.log(1 / 0.3), generator=gen)))
        h = max(1, min(rows, int(round(math.sqrt(area * aspect)))))
        w = max(1, min(cols, int(round(math.sqrt(area / aspect)))))
        top = int(torch.randint(0, rows - h + 1, (), generator=gen))
        left = int(torch.randint(0, cols - w + 1, (), generator=gen))
        hidden[top: top + h, left: left + w] = True
    return _hide_pixels(prepared, hidden), _positions(prefix, hidden)


def _spectrogram(prepared: Any, strategy: str) -> Tensor:
    feats = prepared.inputs.get("input_values")
    if feats is None or feats.dim() != 3:
        raise ValueError(f"{strategy} hides bands of a spectrogram: run it on an audio input of a spectrogram "
                         "model (AST)")
    return feats  # (1, frames, mel)


def _patches_hidden(prepared: Any, cover: Tensor) -> Tensor:
    """(T,) bool: AST patches at least half covered by the hidden (frames, mel) cells."""
    rows, cols, prefix = _need(prepared, "the audio strategy", "spectrogram patches")
    frames, mels = cover.shape
    fr, tc = mels / rows, frames / cols  # approximate extent of one patch (patches overlap in AST)
    hidden = torch.zeros(rows, cols, dtype=torch.bool)
    for r in range(rows):
        for c in range(cols):
            block = cover[int(c * tc): max(int(c * tc) + 1, int((c + 1) * tc)),
                          int(r * fr): max(int(r * fr) + 1, int((r + 1) * fr))]
            hidden[r, c] = bool(block.float().mean() >= 0.5)
    return _positions(prefix, hidden)


def specaugment(time_masks: int, time_width: int, freq_masks: int, freq_width: int, prepared: Any,
                seed: int, model: Any = None) -> tuple[dict[str, Tensor], Tensor]:
    """SpecAugment (Park et al. 2019): ``time_masks`` bands of up to ``time_width`` frames and ``freq_masks`` bands of
    up to ``freq_width`` mel bins are hidden."""
    feats = _spectrogram(prepared, "specaugment")
    frames, mels = feats.shape[-2:]
    gen = _generator(seed, 41)
    cover = torch.zeros(frames, mels, dtype=torch.bool)
    for count, width, axis, size in ((time_masks, time_width, 0, frames), (freq_masks, freq_width, 1, mels)):
        for _ in range(count):
            w = int(torch.randint(0, min(width, size) + 1, (), generator=gen))
            start = int(torch.randint(0, size - w + 1, (), generator=gen))
            if axis == 0:
                cover[start: start + w, :] = True
            else:
                cover[:, start: start + w] = True
    hidden_feats = feats.masked_fill(cover.to(feats.device).unsqueeze(0), 0.0)
    return {**prepared.inputs, "input_values": hidden_feats}, _patches_hidden(prepared, cover)


def w2v2_spans(p: float, span: int, prepared: Any, seed: int, model: Any = None) -> tuple[dict[str, Tensor], Tensor]:
    """wav2vec 2.0 (Baevski et al. 2020): each time step starts a hidden span of ``span`` steps with probability
    ``p``. Frame models get ``mask_time_indices`` (their learned mask embedding); AST gets spectrogram frames
    set to 0."""
    gen = _generator(seed, 43)
    feats = prepared.inputs.get("input_values")
    if feats is not None and feats.dim() == 3:  # AST: spans of spectrogram frames
        frames = feats.shape[-2]
        starts = torch.rand(frames, generator=gen) < p
        cover_t = torch.zeros(frames, dtype=torch.bool)
        for s in torch.nonzero(starts).flatten().tolist():
            cover_t[s: s + span] = True
        cover = cover_t.unsqueeze(1).expand(frames, feats.shape[-1])
        return ({**prepared.inputs, "input_values": feats.masked_fill(cover.to(feats.device).unsqueeze(0), 0.0)},
                _patches_hidden(prepared, cover))
    if prepared.kind != "audio":
        raise ValueError("w2v2_spans hides spans of audio frames: run it on an audio input")
    if model is not None and not _has_mask_embedding(model):
        raise ValueError("w2v2_spans needs a model with a learned mask embedding and spec augment switched on "
                         "(config.apply_spec_augment): this one would ignore the spans")
    frames = len(prepared.labels) - prepared.geometry.prefix
    starts = torch.rand(frames, generator=gen) < p
    hidden = torch.zeros(frames, dtype=torch.bool)
    for s in torch.nonzero(starts).flatten().tolist():
        hidden[s: s + span] = True
    device = next(iter(prepared.inputs.values())).device
    return ({**prepared.inputs, "mask_time_indices": hidden.unsqueeze(0).to(device)},
            _positions(prepared.geometry.prefix, hidden))


def _has_mask_embedding(model: Any) -> bool:
    """Whether a wav2vec2-style model uses ``mask_time_indices`` (spec augment on and a mask embedding present)."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), model)
    return bool(getattr(model.config, "apply_spec_augment", False)) and hasattr(base, "masked_spec_embed")


# ----------------------------------------------------------------------------------------------------------------
# Code templates: what each strategy does to the input, as self-contained PyTorch (see masks/code.py); the generated
# file applies it in a forward pre-hook, so every forward of the model sees the hidden input.
# ----------------------------------------------------------------------------------------------------------------

_FLEX_INPUT = ("Not applicable: it hides the input itself and masks no attention. (Dropping the hidden positions "
               "from the sequence, as MAE's encoder does, saves more than any BlockMask.)")


def _code_grid(c: CodeContext, strategy: str, what: str) -> tuple[int, int]:
    if c.grid is None:
        raise ValueError(f"{strategy} hides {what}: run it on an input that has them")
    return int(c.grid[0]), int(c.grid[1])


def _mae_patches_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    ratio = p["ratio"]
    rows, cols = _code_grid(c, "mae_patches", "image patches")
    name = f"mae_patches_r{num(ratio)}{c.suffix}"
    return CodePiece("input", name, f"""
        def {name}(inputs, model):
            \"\"\"MAE (He et al. 2022): round({ratio!r} x {rows * cols}) random patches of the {rows} x {cols} grid,
            drawn from the run's seed, are hidden: their pixels are set to 0 (the normalised mean).\"\"\"
            rows, cols = {rows}, {cols}
            n = rows * cols
            k = int(round({lit(ratio)} * n))
            order = torch.randperm(n, generator=input_generator(31))
            hidden = torch.zeros(n, dtype=torch.bool)
            hidden[order[:k]] = True
            return hide_pixels(inputs, hidden.view(rows, cols))
    """, helpers=("input_generator", "hide_pixels"), flex=_FLEX_INPUT)


def _beit_blocks_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    ratio = p["ratio"]
    rows, cols = _code_grid(c, "beit_blocks", "image patches")
    name = f"beit_blocks_r{num(ratio)}{c.suffix}"
    return CodePiece("input", name, f"""
        def {name}(inputs, model):
            \"\"\"BEiT (Bao et al. 2022): rectangular blocks of patches (at least 4 patches, aspect 0.3-3.3), drawn
            from the run's seed, are hidden until about {ratio!r} of the {rows} x {cols} patches are; hidden pixels are
            set to 0 (the normalised mean).\"\"\"
            rows, cols = {rows}, {cols}
            gen = input_generator(37)
            hidden = torch.zeros(rows, cols, dtype=torch.bool)
            goal = int(round({lit(ratio)} * rows * cols))
            for _ in range(100):
                if int(hidden.sum()) >= goal:
                    break
                area = float(torch.empty(()).uniform_(min(4, goal), max(4, goal - int(hidden.sum())) + 1e-6,
                                                      generator=gen))
                aspect = math.exp(float(torch.empty(()).uniform_(math.log(0.3), math.log(1 / 0.3), generator=gen)))
                h = max(1, min(rows, int(round(math.sqrt(area * aspect)))))
                w = max(1, min(cols, int(round(math.sqrt(area / aspect)))))
                top = int(torch.randint(0, rows - h + 1, (), generator=gen))
                left = int(torch.randint(0, cols - w + 1, (), generator=gen))
                hidden[top: top + h, left: left + w] = True
            return hide_pixels(inputs, hidden)
    """, helpers=("input_generator", "hide_pixels"), flex=_FLEX_INPUT)


def _specaugment_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    tm, tw, fm, fw = p["time_masks"], p["time_width"], p["freq_masks"], p["freq_width"]
    name = f"specaugment_t{tm}x{tw}_f{fm}x{fw}{c.suffix}"
    return CodePiece("input", name, f"""
        def {name}(inputs, model):
            \"\"\"SpecAugment (Park et al. 2019): {tm} bands of up to {tw} time frames and {fm} bands of up to {fw} mel
            bins of the spectrogram (input_values, (1, frames, mel)), drawn from the run's seed, are set to 0.\"\"\"
            feats = inputs.get("input_values")
            if feats is None or feats.dim() != 3:
                raise ValueError("specaugment hides bands of a spectrogram: give it a spectrogram model (AST)")
            frames, mels = feats.shape[-2:]
            gen = input_generator(41)
            cover = torch.zeros(frames, mels, dtype=torch.bool)
            for count, width, axis, size in (({tm}, {tw}, 0, frames), ({fm}, {fw}, 1, mels)):
                for _ in range(count):
                    w = int(torch.randint(0, min(width, size) + 1, (), generator=gen))
                    start = int(torch.randint(0, size - w + 1, (), generator=gen))
                    if axis == 0:
                        cover[start: start + w, :] = True
                    else:
                        cover[:, start: start + w] = True
            return {{**inputs, "input_values": feats.masked_fill(cover.to(feats.device).unsqueeze(0), 0.0)}}
    """, helpers=("input_generator",), flex=_FLEX_INPUT)


def _w2v2_spans_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    prob, span = p["p"], p["span"]
    name = f"w2v2_spans_p{num(prob)}_s{span}{c.suffix}"
    frames = c.frames if c.frames is not None else 0
    return CodePiece("input", name, f"""
        def {name}(inputs, model):
            \"\"\"wav2vec 2.0 (Baevski et al. 2020): each time step starts a hidden span of {span} steps with
            probability {prob!r}, drawn from the run's seed. A spectrogram model (AST) gets those frames set to 0; a
            frame model (wav2vec2) gets mask_time_indices over this run's {frames} frames (its own learned mask
            embedding).\"\"\"
            gen = input_generator(43)
            feats = inputs.get("input_values")
            if feats is not None and feats.dim() == 3:  # AST: spans of spectrogram frames
                frames = feats.shape[-2]
                starts = torch.rand(frames, generator=gen) < {lit(prob)}
                cover = torch.zeros(frames, dtype=torch.bool)
                for s in torch.nonzero(starts).flatten().tolist():
                    cover[s: s + {span}] = True
                cover = cover.unsqueeze(1).expand(frames, feats.shape[-1])
                return {{**inputs, "input_values": feats.masked_fill(cover.to(feats.device).unsqueeze(0), 0.0)}}
            base = getattr(model, getattr(model, "base_model_prefix", ""), model)
            if not (getattr(model.config, "apply_spec_augment", False) and hasattr(base, "masked_spec_embed")):
                raise ValueError("w2v2_spans needs a model with a learned mask embedding and spec augment switched on "
                                 "(config.apply_spec_augment): this one would ignore the spans")
            starts = torch.rand({frames}, generator=gen) < {lit(prob)}
            hidden = torch.zeros({frames}, dtype=torch.bool)
            for s in torch.nonzero(starts).flatten().tolist():
                hidden[s: s + {span}] = True
            device = next(iter(inputs.values())).device
            return {{**inputs, "mask_time_indices": hidden.unsqueeze(0).to(device)}}
    """, helpers=("input_generator",), flex=_FLEX_INPUT)


# ----------------------------------------------------------------------------------------------------------------
# Registry entries
# ----------------------------------------------------------------------------------------------------------------


def _nothing_blocked(params: Mapping[str, Any], ctx: MaskContext) -> MaskOut:
    return MaskOut(torch.ones(1, 1, ctx.q_len, ctx.k_len, dtype=torch.bool, device=ctx.device))


def _entry(fn, names: tuple[str, ...], **entry: Any) -> Strategy:
    def hide(params: Mapping[str, Any], prepared: Any, seed: int, model: Any = None) -> tuple[dict[str, Tensor],
                                                                                              Tensor]:
        return fn(*(params[n] for n in names), prepared, seed, model)

    return register(Strategy(kind="dynamic", materialize=_nothing_blocked, uses_seed=True, hide=hide, **entry))


_HIDDEN_NOTE = "Hides the input itself (set to the normalised mean), not attention; the seed draws what is hidden."
_entry(
    mae_patches, ("ratio",), code=_mae_patches_code, id="mae_patches", title="MAE: hide random patches (input)",
    summary="A random fraction of the image's patches is hidden from the model (the input itself, not attention).",
    reference="He et al., Masked Autoencoders Are Scalable Vision Learners, CVPR 2022",
    params=(Param("ratio", "float", 0.75, "fraction of the patches hidden", 0.0, 1.0),),
    note=_HIDDEN_NOTE + " MAE drops the hidden patches from the encoder; here they stay, greyed out.",
    inputs=("image",),
)
_entry(
    beit_blocks, ("ratio",), code=_beit_blocks_code, id="beit_blocks", title="BEiT: hide blocks of patches (input)",
    summary="Rectangular blocks of patches are hidden until about `ratio` of the image is.",
    reference="Bao et al., BEiT: BERT Pre-Training of Image Transformers, ICLR 2022",
    params=(Param("ratio", "float", 0.4, "fraction of the patches hidden (about)", 0.0, 1.0),),
    note=_HIDDEN_NOTE, inputs=("image",),
)
_entry(
    specaugment, ("time_masks", "time_width", "freq_masks", "freq_width"), code=_specaugment_code,
    id="specaugment",
    title="SpecAugment: hide time and frequency bands (input)",
    summary="Random bands of time frames and of frequency bins of the spectrogram are hidden.",
    reference="Park et al., SpecAugment, Interspeech 2019",
    params=(Param("time_masks", "int", 2, "number of time bands", 0, 10),
            Param("time_width", "int", 20, "widest time band (spectrogram frames of 10 ms)", 0, 200),
            Param("freq_masks", "int", 2, "number of frequency bands", 0, 10),
            Param("freq_width", "int", 8, "widest frequency band (mel bins)", 0, 64)),
    note=_HIDDEN_NOTE + " Spectrogram models (AST) only.", inputs=("audio",),
)
_entry(
    w2v2_spans, ("p", "span"), code=_w2v2_spans_code, id="w2v2_spans",
    title="wav2vec 2.0: hide spans of frames (input)",
    summary="Each time step starts a hidden span with probability p; spans are `span` steps long.",
    reference="Baevski et al., wav2vec 2.0, NeurIPS 2020",
    params=(Param("p", "float", 0.065, "probability that a step starts a span", 0.0, 1.0),
            Param("span", "int", 10, "span length in steps (frames of 10 ms for AST)", 1, 100)),
    note=_HIDDEN_NOTE + " A wav2vec2-style model uses its own learned mask embedding.", inputs=("audio",),
)
