"""From the lab to your model: a run's mask as ONE self-contained Python file (``mask_code.py``).

:func:`generate` takes a resolved :class:`~dynmask_core.masks.plan.MaskPlan` and what the run saw (:class:`RunInfo`:
the model id, its layers and heads, the input) and writes a file that imports only ``torch``, ``transformers``,
``numpy`` and the standard library (the lines that load a *bundled* model import dynmask's loader, and say so). Each
strategy's code comes from its registry entry's ``code`` template (:mod:`dynmask_core.masks.code`), parameters baked
in; the apply mode comes from :func:`~dynmask_core.masks.apply.weights_code`. No code is written per run by hand.

The file's contract (``python -m dynmask_core run ... --out DIR`` writes it as ``DIR/mask_code.py``; other checks rely
on these names):

- ``apply(model)``: makes every later forward of a loaded transformers model (a bundled one too:
  ``dynmask_core.models.load(id).model``) apply the run's mask, seed and apply mode: it registers the file's
  ``attention`` function with transformers' ``AttentionInterface`` (and ``eager_mask`` with
  ``AttentionMaskInterface``, so padding and causal masks still arrive) under a name of its own, switches the model to
  it and, for strategies that hide the input, adds a forward pre-hook. ``apply(model, record=True)`` also keeps, per
  layer, the last forward's scores, queries, keys and mask (batch item 0) in ``RECORDED``.
- ``mask_from_scores(scores, layer)``: scores ``(heads, queries, keys)`` (the layer's ``q k^T * scale``, before any
  mask) -> the ``(heads, queries, keys)`` bool mask the run used in that layer, the model's own mask folded in, the same
  seed derivation and tie-breaking as the engine (every plan has it; ``lsh``/``kmeans`` also need ``query=``/``key=``,
  or a recorded forward).
- index plans (every strategy an index function) also define ``mask_mods = {layer: mask_mod}`` for every layer of the
  model, each a FlexAttention ``mask_mod(b, h, q_idx, kv_idx)`` whose values over the run's positions equal
  ``masks.npy[layer]``; and ``mask_mod`` itself when every layer the plan covers has the same one (not for
  ``random_dynamic`` per head or ``head_gate``, whose mask differs by layer); ``block_mask()`` makes a ``BlockMask``.
- run as a script, it loads the model id, runs the run's input (baked in) and prints the output numbers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dynmask_core.masks.apply import weights_code
from dynmask_core.masks.base import Strategy
from dynmask_core.masks.code import CodeContext, CodePiece, helper_source, helpers_for, lit, wrapped_list
from dynmask_core.masks.compose import MaskSpec
from dynmask_core.masks.plan import MaskPlan

FILE_NAME = "mask_code.py"
__all__ = ["FILE_NAME", "RunInfo", "flex_notes", "for_run", "generate", "pieces", "snippet"]


@dataclass(frozen=True)
class RunInfo:
    """What the generated file needs to know about the run besides its plan.

    Attributes:
        model_id: The id the run loaded (a bundled id, a Hugging Face id or a folder).
        task: ``sentiment``, ``classifier``, ``encoder`` or ``causal_lm``.
        model_class: The transformers class of the model (``LlamaForCausalLM``), for the loading lines.
        n_layers: Attention layers of the model.
        n_heads: Query heads per layer.
        causal: Whether the model masks the future itself.
        bundled: Whether ``model_id`` is one of dynmask's bundled models (loaded with dynmask's loader).
        bundled_folder: For a bundled transformers checkpoint, its folder in the dynmask repository (a comment tells
            how to load it without dynmask), else None.
        dtype: ``float32`` or ``bfloat16``.
        kind: The input kind (``text``, ``image``, ``audio``).
        labels: One label per position.
        inputs: The model's keyword tensors, batch of 1 (baked into the file).
        grid: ``(rows, cols)`` of image patches, or None.
        prefix: Positions before the first patch or frame.
        segment_ids: Segment of each position, or None.
    """

    model_id: str
    task: str
    model_class: str
    n_layers: int
    n_heads: int
    causal: bool = False
    bundled: bool = False
    bundled_folder: str | None = None
    dtype: str = "float32"
    kind: str = "text"
    labels: tuple[str, ...] = ()
    inputs: Mapping[str, Tensor] = field(default_factory=dict)
    grid: tuple[int, int] | None = None
    prefix: int = 0
    segment_ids: tuple[int, ...] | None = None

    @classmethod
    def of(cls, loaded: Any, prepared: Any) -> RunInfo:
        """From a :class:`~dynmask_core.models.LoadedModel` and the :class:`~dynmask_core.modalities.Prepared`
        input the run used."""
        from dynmask_core.models import PRESETS

        preset = PRESETS.get(str(loaded.id))
        geometry = getattr(prepared, "geometry", None)
        segments = getattr(prepared, "segment_ids", None)
        return cls(
            model_id=str(loaded.id), task=str(loaded.task), model_class=type(loaded.model).__name__,
            n_layers=int(loaded.n_layers or 0), n_heads=int(loaded.n_heads or 0), causal=bool(loaded.causal),
            bundled=preset is not None, bundled_folder=getattr(preset, "folder", None),
            dtype=str(getattr(loaded, "dtype", torch.float32)).removeprefix("torch."), kind=str(prepared.kind),
            labels=tuple(str(t) for t in prepared.labels),
            inputs={k: v.detach().cpu() for k, v in prepared.inputs.items() if torch.is_tensor(v)},
            grid=None if geometry is None or geometry.grid is None else tuple(int(x) for x in geometry.grid),
            prefix=int(getattr(geometry, "prefix", 0) or 0),
            segment_ids=None if segments is None else tuple(int(x) for x in segments.tolist()),
        )

    @property
    def length(self) -> int:
        """Positions of the run (queries = keys)."""
        if self.labels:
            return len(self.labels)
        first = next(iter(self.inputs.values()), None)
        return int(first.shape[-1]) if first is not None else 0

    @property
    def key_padding(self) -> tuple[bool, ...] | None:
        """Per key, True = a real token, when the input had padding; None when it had none."""
        mask = self.inputs.get("attention_mask")
        if mask is None or bool(mask.bool().all()):
            return None
        return tuple(bool(v) for v in mask[0].bool().tolist())


def for_run(result: Any, loaded: Any, prepared: Any) -> str:
    """The ``mask_code.py`` of an engine run (:class:`~dynmask_core.engine.RunResult`), with the input it used."""
    return generate(result.plan, RunInfo.of(loaded, prepared))


# ----------------------------------------------------------------------------------------------------------------
# Pieces
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Term:
    spec: MaskSpec
    entry: Strategy
    piece: CodePiece
    label: str


def pieces(plan: MaskPlan, info: RunInfo) -> list[tuple[MaskSpec, CodePiece]]:
    """Each term of ``plan`` (resolved) with its code piece, in the plan's order.

    Raises:
        ValueError: a strategy whose registry entry has no ``code`` template, or one that cannot run on this input.
    """
    return [(t.spec, t.piece) for t in _terms(plan, info)]


def _terms(plan: MaskPlan, info: RunInfo) -> list[_Term]:
    plan = plan.resolved()
    ids = [t.strategy for t in plan.terms]
    seen: dict[str, int] = {}
    out = []
    for spec in plan.terms:
        entry = spec.entry()
        if entry.code is None:
            raise ValueError(f"{entry.id} has no code template in its registry entry, so it cannot be written as code "
                             "(add a `code` function to the entry; see dynmask_core/masks/code.py)")
        seen[spec.strategy] = seen.get(spec.strategy, 0) + 1
        suffix = f"_{seen[spec.strategy]}" if ids.count(spec.strategy) > 1 and seen[spec.strategy] > 1 else ""
        ctx = CodeContext(n_heads=info.n_heads, q_len=info.length, k_len=info.length, seed=int(plan.seed or 0),
                          grid=info.grid, prefix=info.prefix, segment_ids=info.segment_ids,
                          key_padding=info.key_padding,
                          frames=max(info.length - info.prefix, 0) if info.kind == "audio" else None, suffix=suffix)
        out.append(_Term(spec, entry, entry.code(spec.params, ctx), _full_label(spec)))
    return out


def _full_label(spec: MaskSpec) -> str:
    """``sliding_window(radius=2, causal=false, sinks=0)``: every parameter shown (a custom matrix by its size)."""
    shown = []
    for name, value in spec.params.items():
        if name == "matrix" and value:  # a custom matrix: its size (the cells are in the code)
            value = str(value).partition(":")[0]
        shown.append(f"{name}={str(value).lower() if isinstance(value, bool) else value}")
    return f"{spec.strategy}({', '.join(shown)})" if shown else spec.strategy


def flex_notes() -> dict[str, str]:
    """Per registered strategy, whether FlexAttention can run it block-sparse (from its code template)."""
    from dynmask_core.masks import strategies

    notes = {}
    ctx = CodeContext(n_heads=4, q_len=16, k_len=16, seed=0, grid=(3, 5), prefix=1, frames=15)
    for entry in strategies():
        notes[entry.id] = entry.code(entry.resolve({}), ctx).flex if entry.code is not None else "no code template"
    return notes


# ----------------------------------------------------------------------------------------------------------------
# The file
# ----------------------------------------------------------------------------------------------------------------


def generate(plan: MaskPlan, info: RunInfo) -> str:
    """The source of ``mask_code.py`` for ``plan`` (resolved: its seed drawn) as run on ``info``'s model and input.

    Raises:
        ValueError: a term without a code template, or a plan that cannot run on this input (no patch grid...).
    """
    plan = plan.resolved()
    terms = _terms(plan, info)
    mask = plan.mask()
    identity = mask.is_identity
    label = terms[0].label + "".join((" & " if t.spec.op == "and" else " | ") + t.label for t in terms[1:])
    index_plan = all(t.piece.kind != "scores" for t in terms)
    per_layer = any(t.piece.per_layer for t in terms)
    hides = [t for t in terms if t.piece.kind == "input"]
    needs_qk = any(t.piece.needs_qk for t in terms)
    constants = [c for t in terms for c in t.piece.constants]
    if info.key_padding is not None and "KEY_PADDING" not in constants:
        constants.append("KEY_PADDING")
    if index_plan and plan.heads is not None and not identity:
        constants.append("SELECTED_HEADS")
    constants = list(dict.fromkeys(constants))
    float_inputs = {k: v for k, v in info.inputs.items() if v.is_floating_point()}
    digest = hashlib.sha1(json.dumps([plan.to_dict(), info.model_id, info.length], sort_keys=True,
                                     default=str).encode()).hexdigest()[:12]

    parts = [
        _docstring(plan, info, terms, label, index_plan, per_layer, identity),
        _imports(bool(float_inputs), any("math." in t.piece.source for t in terms),
                 any("index_hash" in t.piece.helpers for t in terms)),
        _constants(plan, info, label, digest, constants),
    ]
    helper_names = helpers_for([h for t in terms for h in t.piece.helpers])
    if helper_names:
        parts.append(_section("Helpers the strategies share"))
        parts += [helper_source(name) for name in helper_names]
    parts.append(_section("The strategies, parameters baked in"))
    for n, t in enumerate(terms, 1):
        parts.append(_term_comment(n, t) + t.piece.source)
    parts.append(_section("The model's own mask in this run, and the run's mask as FlexAttention functions"))
    parts.append(_own_mask(plan, info))
    if index_plan:
        parts.append(_mask_mods(plan, info, terms, per_layer, identity))
    parts.append(_section("The run's mask inside every layer"))
    parts.append(_strategy_mask(plan, terms, identity))
    parts.append(_mask_from_scores(needs_qk, [t.entry.id for t in terms if t.piece.needs_qk]))
    parts.append(weights_code(plan.apply))
    parts.append(_RUNTIME)
    if hides:
        parts.append(_hide(hides))
    parts.append(_apply(bool(hides)))
    parts.append(_section("Run as a script: the run's model and input, the output numbers"))
    parts.append(_inputs(info, float_inputs))
    parts.append(_loading(info))
    parts.append(_MAIN)
    return "\n\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n"


def snippet(plan: MaskPlan, info: RunInfo) -> str:
    """A short excerpt of :func:`generate`'s file for reading and pasting (the README, a page's code view): the
    strategies with their parameters baked in (and the helpers they call), then, for an index plan, the run's
    ``mask_mod`` and the two lines that make a FlexAttention ``BlockMask``; for a score-based one, how the whole file
    applies it. Same pieces, same text as the file.

    Raises:
        ValueError: as :func:`generate`.
    """
    plan = plan.resolved()
    terms = _terms(plan, info)
    label = terms[0].label + "".join((" & " if t.spec.op == "and" else " | ") + t.label for t in terms[1:])
    index_plan = all(t.piece.kind != "scores" for t in terms)
    per_layer = any(t.piece.per_layer for t in terms)
    mode = plan.apply.mode + (f", beta={plan.apply.beta!r}" if plan.apply.mode == "bias" else "")
    parts = [f"# {label} on {info.model_id}: seed {int(plan.seed or 0)}, apply mode {mode} "
             f"(generated by dynmask)\nimport torch"]
    helper_names = helpers_for([h for t in terms for h in t.piece.helpers])
    if "index_hash" in helper_names:
        parts[0] += "\nfrom torch import Tensor"
    if any("SEED" in t.piece.source for t in terms) or any(h in ("generator", "input_generator")
                                                          for h in helper_names):
        parts.append(f"SEED = {int(plan.seed or 0)}  # the run's seed")
    parts += [helper_source(name) for name in helper_names]
    parts += [t.piece.source for t in terms]
    if index_plan and not per_layer:
        parts.append(_own_mask(plan, info))
        parts.append(_mask_mods(plan, info, terms, per_layer, plan.mask().is_identity).split("\n\n\nmask_mods")[0])
        head = "N_HEADS" if _uses_heads(plan, terms) else "None"
        parts.append(f"""# FlexAttention (PyTorch 2.5+; block-sparse on a GPU):
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

block_mask = create_block_mask(mask_mod, B=None, H={head if head == "None" else info.n_heads}, Q_LEN=q_len, \
KV_LEN=k_len, device="cuda")
out = flex_attention(query, key, value, block_mask=block_mask)  # query, key, value: (B, H, L, D)""")
    else:
        parts.append(f"""# Inside every layer of a Hugging Face model: mask_code.py (which `python -m dynmask_core
# run ... --out DIR` writes) registers its attention function with transformers' AttentionInterface.
import mask_code

mask_code.apply(model)  # every later forward applies {label}, seed {int(plan.seed or 0)}, {plan.apply.mode}
mask = mask_code.mask_from_scores(scores, layer)  # (heads, queries, keys) scores -> (heads, queries, keys) bool""")
    return "\n\n\n".join(p.strip("\n") for p in parts) + "\n"


def _section(title: str) -> str:
    return f"# {'-' * 114}\n# {title}\n# {'-' * 114}"


def _wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(text, width=116, initial_indent=indent, subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False)


def _docstring(plan: MaskPlan, info: RunInfo, terms: list[_Term], label: str, index_plan: bool, per_layer: bool,
               identity: bool) -> str:
    mode = plan.apply.mode + (f" (beta={plan.apply.beta!r})" if plan.apply.mode == "bias" else "") + (
        f" (renormalize={plan.apply.renormalize})" if plan.apply.mode == "gate" else "")
    where = (f"layers {', '.join(map(str, plan.layers))}" if plan.layers is not None else "every layer") + ", " + (
        f"heads {', '.join(map(str, plan.heads))}" if plan.heads is not None else "every head")
    lines = [
        '"""The attention mask of a dynmask run, as code you can paste.',
        "",
        _wrap(f"Mask: {label}"),
        "",
        _wrap(f"Generated by dynmask from the run: model {info.model_id} ({info.model_class}, {info.n_layers} layers "
              f"x {info.n_heads} heads), {info.kind} input of {info.length} positions, seed {int(plan.seed or 0)}, "
              f"apply mode {mode}, {where}"
              + ("" if plan.model_causal or not info.causal else ", the model's own causal mask switched off")
              + ". Needs only torch, transformers (5.x) and numpy."),
        "",
        "Use it in your own code:",
        "",
        "    import mask_code",
        "    mask_code.apply(model)   # any transformers model whose attention goes through AttentionInterface",
        "    model(**inputs)          # every later forward applies the run's mask, seed and apply mode",
        "",
        "Run it (`python mask_code.py`): it loads the run's model, runs the run's input and prints the output numbers.",
        "",
        "What it defines:",
        "    apply(model, record=False)  the run's mask inside every attention layer of `model` (returns the model)",
        "    mask_from_scores(scores, layer)  (heads, queries, keys) scores -> the (heads, queries, keys) bool mask of",
        "                                     that layer, the model's own mask folded in",
    ]
    if index_plan:
        if not per_layer:
            lines.append("    mask_mod(b, h, q_idx, kv_idx)  the run's mask (the model's own mask folded in), a "
                         "FlexAttention mask_mod")
        lines += ["    mask_mods                   {layer: mask_mod} for every layer (a layer the plan leaves alone: "
                  "the model's own mask)",
                  "    block_mask(layer=None)      FlexAttention's BlockMask of it (create_block_mask)"]
    if any(t.piece.kind == "soft" for t in terms):
        lines.append("    score_mod(score, b, h, q_idx, kv_idx)  the soft bias, a FlexAttention score_mod")
    lines += ["", "The strategies and whether FlexAttention can run them block-sparse:"]
    for n, t in enumerate(terms, 1):
        op = "" if n == 1 else ("and " if t.spec.op == "and" else "or ")
        lines.append(_wrap(f"{n}. {op}{t.label} [{_KIND_WORDS[t.piece.kind]}]: {t.piece.flex}", "    "))
    if identity:
        lines += ["", _wrap("The plan adds no attention mask (only the model's own mask applies).")]
    if plan.apply.mode != "hard" and index_plan and not identity:
        lines += ["", _wrap(f"FlexAttention's BlockMask blocks hard; this run used the {plan.apply.mode} apply mode, "
                            "which apply() reproduces (a BlockMask alone would not).")]
    lines.append('"""')
    return "\n".join(lines)


_KIND_WORDS = {"index": "index function", "soft": "soft bias (score_mod)", "scores": "from the layer's scores",
               "input": "hides the input"}


def _imports(floats: bool, math: bool, tensor: bool) -> str:
    lines = ["from __future__ import annotations", ""]
    std = ["json"] + (["base64", "zlib"] if floats else []) + (["math"] if math else [])
    lines += [f"import {m}" for m in sorted(std)]
    lines.append("")
    if floats:
        lines.append("import numpy as np")
    lines.append("import torch")
    if tensor:
        lines.append("from torch import Tensor")
    lines += ["from transformers import AttentionInterface",
              "from transformers.masking_utils import AttentionMaskInterface, eager_mask"]
    return "\n".join(lines)


def _constants(plan: MaskPlan, info: RunInfo, label: str, digest: str, constants: list[str]) -> str:
    lines = [
        f"MODEL_ID = {_q(info.model_id)}",
        f"LABEL = {_long_str(label)}",
        f"SEED = {int(plan.seed or 0)}  # the run's seed: dynamic strategies draw from it, and only from it",
        f"MODE = {_q(plan.apply.mode)}  # how the mask meets the scores: hard, bias, gate or naive_multiply",
        f"BETA = {plan.apply.beta!r}  # bias mode: the penalty a blocked key gets",
        f"RENORMALIZE = {plan.apply.renormalize!r}  # gate mode: rows sum to 1 again",
        f"LAYERS = {lit(tuple(plan.layers)) if plan.layers is not None else None}  # layers (call order) the mask "
        "applies to; None = all",
        f"HEADS = {lit(tuple(plan.heads)) if plan.heads is not None else None}  # query heads it applies to; "
        "None = all",
        f"N_LAYERS, N_HEADS = {info.n_layers}, {info.n_heads}",
        f"Q_LEN = K_LEN = {info.length}  # the run's positions",
        f"MODEL_IS_CAUSAL = {info.causal!r}  # the model masks the future itself",
        f"MODEL_CAUSAL = {plan.model_causal!r}  # the run kept the model's own causal mask",
        f"ATTN_NAME = {_q('mask_code_' + digest)}  # the name apply() registers with transformers",
    ]
    pad = info.key_padding
    if pad is None:
        lines.append("KEY_PADDING = None  # the run's input had no padding")
    else:
        lines += ["# The run's input had padding: True = a real token.",
                  f"KEY_PADDING = torch.tensor({wrapped_list(list(pad))}, dtype=torch.bool)"]
    if "SELECTED_HEADS" in constants:
        sel = [i in set(plan.heads or ()) for i in range(info.n_heads)]
        lines += ["# The heads the mask applies to (HEADS), one flag per head.",
                  f"SELECTED_HEADS = torch.tensor({wrapped_list(sel)}, dtype=torch.bool)"]
    lines.append(f"_CONSTANTS = {lit(tuple(constants))}  # tensors the mask functions index (see to_device)")
    return "\n".join(lines)


def _long_str(text: str) -> str:
    """A string literal, split over lines in parentheses when it is long."""
    if len(text) < 100:
        return _q(text)
    pieces = textwrap.wrap(text, width=100, drop_whitespace=False, break_on_hyphens=False)
    return "(\n" + "".join(f"    {_q(p)}\n" for p in pieces) + ")"


def _q(text: str) -> str:
    """A string literal in double quotes."""
    return json.dumps(str(text), ensure_ascii=False)


def _term_comment(n: int, t: _Term) -> str:
    op = "" if n == 1 else f"{t.spec.op} "
    return f"# {n}. {op}{t.label}: {_KIND_WORDS[t.piece.kind]}\n"


def _own_mask(plan: MaskPlan, info: RunInfo) -> str:
    parts, what = [], []
    if info.causal and plan.model_causal:
        parts.append("(kv_idx <= q_idx)")
        what.append("causal (j <= i)")
    if info.key_padding is not None:
        parts.append("KEY_PADDING[kv_idx]")
        what.append("the input's padding keys blocked")
    body = (" & ".join(parts) if len(parts) > 1 else parts[0].strip("()")) if parts else \
        "(q_idx - kv_idx) == (q_idx - kv_idx)"
    words = " and ".join(what) if what else "it allows everything (no padding, not causal)"
    return f'''def own_mask(b, h, q_idx, kv_idx):
    """The model's own mask as it was in this run: {words}.
    (Inside apply(), the mask transformers builds for each input is used.)"""
    return {body}'''


def _call(t: _Term, args: str = "b, h, q_idx, kv_idx") -> str:
    fn = f"{t.piece.name}(layer)" if t.piece.per_layer else t.piece.name
    if t.piece.kind in ("soft", "input"):
        return "(q_idx - kv_idx) == (q_idx - kv_idx)"
    return f"{fn}({args})"


def _mask_mods(plan: MaskPlan, info: RunInfo, terms: list[_Term], per_layer: bool, identity: bool) -> str:
    soft = [t for t in terms if t.piece.kind == "soft"]
    lines: list[str] = []
    if identity:
        body = ["    return own_mask(b, h, q_idx, kv_idx)"]
    else:
        body = []
        for n, t in enumerate(terms):
            expr = _call(t)
            if n == 0:
                body.append(f"    allowed = {expr}")
            else:
                body.append(f"    allowed = allowed {'&' if t.spec.op == 'and' else '|'} {expr}")
        if plan.heads is not None:
            body.append("    allowed = allowed | ~SELECTED_HEADS[h]  # heads outside the plan: the model's own mask")
        body.append("    return allowed & own_mask(b, h, q_idx, kv_idx)")
    doc = ("The run's mask in one FlexAttention mask_mod: the strategies folded left to right, AND the model's own "
           "mask" + (" (for the layers the plan covers: see mask_mods)" if plan.layers is not None else "") + ".")
    if per_layer and not identity:
        layer_fns = [t for t in terms if t.piece.per_layer]
        lines.append("def mask_mod_of(layer):")
        lines.append('    """The mask_mod of one layer (the run\'s mask differs from layer to layer): the strategies '
                     'folded left to right,\n    AND the model\'s own mask."""')
        if plan.layers is not None:
            lines += ["    if layer not in LAYERS:", "        return own_mask"]
        for t in layer_fns:
            lines.append(f"    {t.piece.name}_l = {t.piece.name}(layer)")
        lines += ["", "    def mask_mod(b, h, q_idx, kv_idx):"]
        for line in body:
            for t in layer_fns:
                line = line.replace(f"{t.piece.name}(layer)(", f"{t.piece.name}_l(")
            lines.append("    " + line)
        lines += ["", "    return mask_mod", "", "",
                  "mask_mods = {layer: mask_mod_of(layer) for layer in range(N_LAYERS)}"]
    else:
        lines.append("def mask_mod(b, h, q_idx, kv_idx):")
        lines.append(f'    """{doc}"""' if len(doc) < 110 else '    """' + _wrap(doc, "    ").strip() + '"""')
        lines += body
        cover = "mask_mod" if plan.layers is None else "(mask_mod if layer in LAYERS else own_mask)"
        lines += ["", "", f"mask_mods = {{layer: {cover} for layer in range(N_LAYERS)}}"]
    if soft:
        calls = " + ".join(f"{t.piece.name}(zero, b, h, q_idx, kv_idx)" for t in soft)
        lines += ["", "", "def score_mod(score, b, h, q_idx, kv_idx):",
                  '    """The soft bias of the run as one FlexAttention score_mod (added to the scaled score), in the '
                  'layers\n    the plan covers."""',
                  "    zero = torch.zeros_like(score)",
                  f"    bias = {calls}"]
        if plan.heads is not None:
            lines.append("    bias = bias * SELECTED_HEADS[h]")
        lines.append("    return score + bias")
    head = "N_HEADS" if _uses_heads(plan, terms) else "None"
    lines += ["", "", f'''def block_mask(layer=None, q_len=Q_LEN, k_len=K_LEN, device="cpu"):
    """FlexAttention's BlockMask of the run's mask in `layer` ({"None: mask_mod" if not per_layer else
                                                                 "None: layer 0's"}). On a GPU, flex_attention
    skips every 128 x 128 tile the mask leaves empty:

        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        block_mask = create_block_mask(mask_mod, B=None, H={head}, Q_LEN=q_len, KV_LEN=k_len, device="cuda")
        out = flex_attention(query, key, value, block_mask=block_mask)  # query, key, value: (B, H, L, D)
    """
    from torch.nn.attention.flex_attention import create_block_mask

    to_device(device)
    fn = mask_mods[layer] if layer is not None else {"mask_mod" if not per_layer else "mask_mods[0]"}
    return create_block_mask(fn, B=None, H={head}, Q_LEN=q_len, KV_LEN=k_len, device=device)''']
    return "\n".join(lines)


def _uses_heads(plan: MaskPlan, terms: list[_Term]) -> bool:
    return plan.heads is not None or any(t.piece.per_layer for t in terms)


def _strategy_mask(plan: MaskPlan, terms: list[_Term], identity: bool) -> str:
    head = '''def strategy_mask(scores, model_allowed, query, key, layer, state):
    """What the run's strategy adds in one layer: (allowed, bias, gate), or None where it adds nothing.

    scores: (B, H, Q, K) float, the layer's q k^T * scale before any mask. model_allowed: (B|1, 1|H, Q, K) bool, the
    model's own mask. query, key: (B, H, Q|K, D) (keys repeated to every query head). layer: the attention layer in
    call order. state: a dict that lives for one forward pass. allowed: bool, broadcastable to (B, H, Q, K); bias: an
    additive float or None; gate: (1, H, 1, 1) multiplying each head's weights after the softmax, or None.
    """'''
    if identity:
        return head + "\n    return None  # the plan adds no mask: only the model's own mask applies"
    lines = []
    if plan.layers is not None:
        lines += ["if layer not in LAYERS:", "    return None"]
    lines += ["q_len, k_len = scores.shape[-2:]", "bias, gate = None, None"]
    order = list(range(len(terms)))
    all_and = all(t.spec.op == "and" for t in terms[1:])
    if all_and and any(t.entry.uses_scores for t in terms):
        order.sort(key=lambda i: terms[i].entry.uses_scores)
        lines.append("# every operator is `and`: the terms that read the scores come last and choose among the keys "
                     "the others allow")
    first = True
    for i in order:
        t = terms[i]
        p = t.piece
        fn = f"{p.name}(layer)" if p.per_layer else p.name
        seen = "model_allowed" if first or t.spec.op == "or" else "model_allowed & allowed"
        lines.append(f"# {i + 1}. {'' if i == 0 else t.spec.op + ' '}{t.label}")
        new_bias = None
        if p.kind == "index":
            part = f"on_grid({fn}, scores)"
        elif p.kind == "soft":
            part = "torch.ones(1, 1, q_len, k_len, dtype=torch.bool, device=scores.device)"
            new_bias = f"bias_on_grid({fn}, scores)"
        elif p.kind == "input":
            part = "torch.ones(1, 1, q_len, k_len, dtype=torch.bool, device=scores.device)  # hides the input only"
        else:
            lines.append(f"part, part_bias = {fn}(scores, {seen}, query, key, layer, state)")
            part = "part"
            new_bias = "part_bias"
        if first:
            lines.append(f"allowed = {part}")
        else:
            lines.append(f"allowed = allowed {'&' if t.spec.op == 'and' else '|'} {part}")
        if new_bias is not None:
            lines.append(f"bias = plus(bias, {new_bias})")
        if p.gate is not None:
            lines.append(f"gate = times(gate, {p.gate}(layer, scores.shape[1]))")
        first = False
    if plan.heads is not None:
        lines += ["# heads outside the plan keep only the model's own mask",
                  "h = scores.shape[1]",
                  "selected = torch.zeros(h, dtype=torch.bool, device=scores.device)",
                  "selected[[i for i in HEADS if i < h]] = True",
                  "selected = selected.view(1, h, 1, 1)",
                  "bias = None if bias is None else bias * selected",
                  "gate = None if gate is None else torch.where(selected, gate, torch.ones_like(gate))",
                  "allowed = allowed | ~selected"]
    lines.append("return allowed, bias, gate")
    return head + "\n" + "\n".join("    " + line if line else "" for line in lines)


def _mask_from_scores(needs_qk: bool, qk_ids: Sequence[str]) -> str:
    qk = ""
    if needs_qk:
        names = ", ".join(dict.fromkeys(qk_ids))
        qk = f'''
    if query is None or key is None:  # {names} hash the layer's queries and keys, which scores alone do not give
        recorded = RECORDED.get(layer)
        if recorded is None:
            raise ValueError("{names} needs the layer's queries and keys: pass query= and key= (heads, positions, "
                             "head_dim), or run a forward after apply(model, record=True)")
        query, key = recorded["query"], recorded["key"]
    query, key = (query.unsqueeze(0) if query.dim() == 3 else query), (key.unsqueeze(0) if key.dim() == 3 else key)'''
    return f'''def mask_from_scores(scores, layer, query=None, key=None, state=None):
    """The (heads, queries, keys) bool mask the run used in `layer` (True = may attend), the model's own mask in this
    run (own_mask) folded in: what masks.npy[layer] holds.

    scores: (heads, queries, keys), the layer's q k^T * scale before any mask (a batch dimension in front is taken
    too: batch item 0 is returned). query, key: (heads, positions, head_dim), for strategies that hash them. state:
    what carries over between the layers of one forward pass (token pruning); by default a dict of this module,
    started afresh whenever `layer` does not increase, so call the layers in order.
    """
    scores = torch.as_tensor(scores)
    scores = scores.unsqueeze(0) if scores.dim() == 3 else scores
    to_device(scores.device){qk}
    if state is None:
        state = _STANDALONE
        if layer <= state.get("last_layer", -1):
            state.clear()
        state["last_layer"] = layer
    model_allowed = on_grid(own_mask, scores)
    out = strategy_mask(scores, model_allowed, query, key, layer, state)
    allowed = model_allowed if out is None else model_allowed & out[0]
    return allowed.expand(allowed.shape[0], *scores.shape[1:])[0]'''


_RUNTIME = '''RECORDED = {}  # apply(model, record=True): per layer, the last forward's scores, query, key, mask
_STANDALONE = {}  # mask_from_scores' state when none is given


def plus(bias, more):
    """Soft biases of the terms add up."""
    return more if bias is None else (bias if more is None else bias + more)


def times(gate, more):
    """Head gates multiply."""
    return more if gate is None else gate * more


def grid_indices(scores):
    """The (batch, head, query, key) indices of `scores` (H, Q, K), shaped to broadcast; queries are the last Q of
    the K positions (a cache holds the earlier ones)."""
    n_heads, q_len, k_len = scores.shape[-3:]
    device = scores.device
    b = torch.zeros((), dtype=torch.long, device=device)
    h = torch.arange(n_heads, device=device).view(-1, 1, 1)
    q = torch.arange(q_len, device=device).view(1, -1, 1) + (k_len - q_len)
    k = torch.arange(k_len, device=device).view(1, 1, -1)
    return b, h, q, k


def on_grid(mask_mod, scores):
    """A mask_mod evaluated on every (head, query, key) of `scores` at once, by broadcasting: (1, H|1, Q, K) bool.
    The queries are the last Q of the K positions (a cache holds the earlier ones)."""
    b, h, q, k = grid_indices(scores)
    q_len, k_len = scores.shape[-2:]
    out = mask_mod(b, h, q, k)
    return out.expand(out.shape[0], q_len, k_len).unsqueeze(0)


def bias_on_grid(score_mod, scores):
    """A score_mod's bias (what it adds to a score of 0) on every (head, query, key): (1, H|1, Q, K) float."""
    b, h, q, k = grid_indices(scores)
    q_len, k_len = scores.shape[-2:]
    out = score_mod(torch.zeros((), device=scores.device), b, h, q, k)
    return out.expand(out.shape[0], q_len, k_len).unsqueeze(0)


def to_device(device):
    """Moves the tensors the mask functions index (custom matrix, segments, padding...) to `device`."""
    device = torch.device(device)
    for name in _CONSTANTS:
        value = globals()[name]
        if value is not None and value.device != device:
            globals()[name] = value.to(device)


def model_allowed_of(module, attention_mask, q_len, k_len, device):
    """The model's own mask as bool (B, 1, Q, K) (padding, causality, from transformers' mask builder), or None
    when it allows everything."""
    is_causal = bool(getattr(module, "is_causal", False))
    allowed = attention_mask
    if allowed is not None and allowed.dtype != torch.bool:
        allowed = allowed > torch.finfo(allowed.dtype).min / 2
    if is_causal and not MODEL_CAUSAL:  # the run let the causal model see the future: only its padding stays
        return None if allowed is None else allowed.any(dim=-2, keepdim=True)
    if allowed is not None:
        return allowed
    if is_causal and q_len > 1:
        q = torch.arange(q_len, device=device).view(-1, 1) + (k_len - q_len)
        return (torch.arange(k_len, device=device).view(1, -1) <= q).view(1, 1, q_len, k_len)
    return None


class _Run:
    """What one apply(model) keeps: the model's attention layers, numbered in call order, and the per-pass state."""

    def __init__(self, record=False):
        self.record = record
        self.layers = {}
        self.state = {}

    def layer_of(self, module):
        return self.layers.setdefault(id(module), len(self.layers))


_DEFAULT_RUN = _Run()


def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """The run's attention, for transformers' AttentionInterface: query (B, H, Q, D), key and value (B, Hkv, K, D),
    attention_mask the additive (B, 1, Q, K) mask of the model (or None). Returns the output (B, Q, H, D) and the
    weights (B, H, Q, K)."""
    run = module.__dict__.get("_mask_code_run", _DEFAULT_RUN)
    b, h, q_len, d = query.shape
    if key.shape[1] != h:  # grouped-query attention: repeat the key/value heads
        key = key.repeat_interleave(h // key.shape[1], dim=1)
        value = value.repeat_interleave(h // value.shape[1], dim=1)
    k_len = key.shape[-2]
    if attention_mask is not None:
        attention_mask = attention_mask[:, :, :, :k_len]
    scale = d**-0.5 if scaling is None else scaling
    to_device(query.device)
    allowed = model_allowed_of(module, attention_mask, q_len, k_len, query.device)
    scores = torch.matmul(query, key.transpose(2, 3)) * scale  # (B, H, Q, K)
    see_future = bool(getattr(module, "is_causal", False)) and not MODEL_CAUSAL
    if attention_mask is not None and attention_mask.dtype != torch.bool and not see_future:
        scores_in = scores + attention_mask
    else:
        scores_in = scores
    layer = run.layer_of(module)
    if layer == 0:  # a new forward pass begins
        run.state.clear()
    model_allowed = allowed if allowed is not None else torch.ones(
        1, 1, q_len, k_len, dtype=torch.bool, device=query.device)
    strategy = strategy_mask(scores, model_allowed, query, key, layer, run.state)
    if strategy is None and allowed is None:
        probs = torch.softmax(scores_in, dim=-1, dtype=torch.float32)
    else:
        probs = weights(scores_in.float(), model_allowed, None if strategy is None else strategy[:2])
    if strategy is not None and strategy[2] is not None:
        probs = probs * strategy[2].to(probs.dtype)
    if run.record:
        mask = model_allowed if strategy is None else model_allowed & strategy[0]
        RECORDED[layer] = {"scores": scores[0].detach(), "query": query[0].detach(), "key": key[0].detach(),
                           "mask": mask[0].expand(h, q_len, k_len).clone(), "weights": probs[0].detach()}
    probs = probs.to(value.dtype)
    if dropout and module.training:
        probs = torch.nn.functional.dropout(probs, p=dropout)
    out = torch.matmul(probs, value).transpose(1, 2).contiguous()
    return out, probs'''


def _hide(hides: list[_Term]) -> str:
    calls = "\n".join(f"    inputs = {t.piece.name}(inputs, model)" for t in hides)
    return f'''def hide_input(inputs, model):
    """The input as the run's masked pass saw it: the input-hiding strategies applied in turn."""
    inputs = dict(inputs)
{calls}
    return inputs


def hide_hook(module, args, kwargs):
    """A forward pre-hook: every forward of the model gets the hidden input."""
    if args:  # the main input given by position
        kwargs = {{**kwargs, module.main_input_name: args[0]}}
        args = args[1:]
    return args, hide_input(kwargs, module)'''


def _apply(hides: bool) -> str:
    hook = ("\n    model.__dict__[\"_mask_code_hook\"] = model.register_forward_pre_hook(hide_hook, with_kwargs=True)"
            if hides else "")
    return f'''def apply(model, record=False):
    """Makes every later forward of `model` (a loaded transformers model) apply the run's mask, seed and apply mode.

    It registers `attention` with transformers' AttentionInterface (and eager_mask with AttentionMaskInterface, so
    the model's padding and causal masks still arrive) as ATTN_NAME and switches the model to it.{
        chr(10) + "    A forward pre-hook hides the input as the run did." if hides else ""}
    Layers are numbered in the order the forward calls them, as dynmask does. record=True keeps, per layer, the last
    forward's scores, queries, keys and mask (batch item 0) in RECORDED. Returns the model.
    """
    run = _Run(record)
    for module in model.modules():
        module.__dict__["_mask_code_run"] = run
    AttentionInterface.register(ATTN_NAME, attention)
    AttentionMaskInterface.register(ATTN_NAME, eager_mask)
    model.set_attn_implementation(ATTN_NAME)
    old = model.__dict__.pop("_mask_code_hook", None)  # an earlier mask_code file's hook
    if old is not None:
        old.remove(){hook}
    RECORDED.clear()
    return model'''


def _inputs(info: RunInfo, floats: Mapping[str, Tensor]) -> str:
    head = f"# The run's input ({info.kind}, {info.length} positions):"
    shown = ""
    for label in info.labels:
        if len(head) + len(shown) + len(label) + 6 > 116:
            shown += " ..."
            break
        shown += " " + label
    lines = [head + shown]
    ints = {k: v for k, v in info.inputs.items() if not v.is_floating_point()}
    lines.append("INPUTS = {" if ints else "INPUTS = {}  # (dtype, values) of each integer input")
    for name, value in ints.items():
        rows = value.tolist()
        body = ", ".join(wrapped_list(row, indent=8).replace("\n]", "\n    ]") for row in rows)
        lines.append(f"    {_q(name)}: ({_q(str(value.dtype).removeprefix('torch.'))}, [{body}]),")
    if ints:
        lines.append("}")
    if floats:
        lines.append("# Float inputs: (shape, dtype, zlib-compressed base64 of the raw bytes), exactly as the run had "
                     "them.")
        lines.append("FLOAT_INPUTS = {")
        for name, value in floats.items():
            array = value.detach().cpu().numpy()
            data = base64.b64encode(zlib.compress(np.ascontiguousarray(array).tobytes(), 9)).decode("ascii")
            chunks = "\n".join(f"        {_q(data[i:i + 100])}" for i in range(0, len(data), 100))
            lines.append(f"    {_q(name)}: ({tuple(array.shape)!r}, {_q(str(array.dtype))}, (\n{chunks}\n    )),")
        lines.append("}")
    decode = '''
    for name, (shape, dtype, data) in FLOAT_INPUTS.items():
        array = np.frombuffer(zlib.decompress(base64.b64decode(data)), dtype=dtype).reshape(shape).copy()
        out[name] = torch.from_numpy(array).to(device)''' if floats else ""
    lines.append(f'''

def model_input(device="cpu"):
    """The run's input, batch of 1, as the model's keyword tensors."""
    out = {{name: torch.tensor(value, dtype=getattr(torch, dtype), device=device)
           for name, (dtype, value) in INPUTS.items()}}{decode}
    return out''')
    return "\n".join(lines)


def _loading(info: RunInfo) -> str:
    if info.bundled:
        alt = ""
        if info.bundled_folder:
            alt = (f"\n    # Without dynmask: transformers.{info.model_class}.from_pretrained(\"<dynmask>/assets/"
                   f"models/{info.bundled_folder}\")\n    # (then print model(**inputs).logits).")
        return f'''def load_model(device="cpu"):
    """The run's model, `{info.model_id}`: bundled with dynmask, not on the Hugging Face Hub. Run this file where
    dynmask is installed (in its repository: `pip install -r requirements.txt`), or load your own model and call
    apply(model).

    Returns (model, task): task(inputs) gives the output numbers dynmask shows.
    """
    try:
        from dynmask_core.models import load  # the bundled model's own loader (and its task head){alt}
    except ImportError:
        raise SystemExit(f"{{MODEL_ID}} is bundled with dynmask: run this file where dynmask can be imported, e.g. "
                         "PYTHONPATH=/path/to/dynmask python mask_code.py") from None

    loaded = load(MODEL_ID, device=device, dtype={_q(info.dtype)})
    return loaded.model, lambda inputs: loaded(inputs).summary()'''
    task = {
        "causal_lm": '''    logits = model(**inputs).logits[0, -1].float()
    values, ids = torch.softmax(logits, dim=-1).topk(5)
    try:
        from transformers import AutoTokenizer

        decode = AutoTokenizer.from_pretrained(MODEL_ID).decode
    except Exception:  # noqa: BLE001 (no tokenizer: show the ids)
        decode = None
    top5 = [{"id": int(i), "token": decode([int(i)]) if decode else str(int(i)), "prob": float(v)}
            for v, i in zip(values, ids, strict=True)]
    return {"top5": top5, "top1": top5[0]["token"]}''',
        "classifier": '''    probs = torch.softmax(model(**inputs).logits[0].float(), dim=-1)
    id2label = getattr(model.config, "id2label", None) or {}
    names = [str(id2label.get(i, i)) for i in range(probs.numel())]
    values, ids = probs.topk(min(5, probs.numel()))
    return {"probs": dict(zip(names, probs.tolist(), strict=True)), "top1": names[int(probs.argmax())],
            "top5": [{"label": names[int(i)], "prob": float(v)} for v, i in zip(values, ids, strict=True)]}''',
    }.get(info.task, '''    hidden = model(**inputs).last_hidden_state.float()
    mask = inputs.get("attention_mask")
    weight = torch.ones(hidden.shape[:2]) if mask is None else mask.float()
    pooled = (hidden * weight.unsqueeze(-1)).sum(dim=1) / weight.sum(dim=1, keepdim=True).clamp(min=1e-9)
    vector = torch.nn.functional.normalize(pooled, dim=-1)[0]
    return {"embedding_dim": int(vector.numel()), "embedding_first_8": vector[:8].tolist()}''')
    dtype = "" if info.dtype == "float32" else f", dtype=torch.{info.dtype}"
    return f'''def load_model(device="cpu"):
    """The run's model, from the Hugging Face Hub (or the folder the run named). Returns (model, task): task(inputs)
    gives the output numbers dynmask shows."""
    import transformers

    model = transformers.{info.model_class}.from_pretrained(MODEL_ID{dtype}).to(device).eval()
    return model, lambda inputs: task_output(model, inputs)


def task_output(model, inputs):
    """The output numbers: {"next-token probabilities" if info.task == "causal_lm" else
                            "class probabilities" if info.task == "classifier" else "the mean-pooled embedding"}."""
    inputs = {{k: v.to(model.dtype) if v.is_floating_point() else v for k, v in inputs.items()}}
{task}'''


_MAIN = '''def main():
    torch.set_grad_enabled(False)
    model, task = load_model()
    apply(model)
    outputs = task(model_input(model.device))
    print(json.dumps({"model": MODEL_ID, "mask": LABEL, "seed": SEED, "mode": MODE, "outputs": outputs}, indent=2))


if __name__ == "__main__":
    main()'''
