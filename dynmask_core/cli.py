"""CLI: ``python -m dynmask_core strategies | models | samples | run | attribute | prepare | mlm-mask | mlm-lab``.

``run`` walks the same path as the app (recipe -> resolve -> encode -> run) and writes ``run.json``, ``masks.npy``
(bool (L, H, Q, K)), ``attention.npy`` and ``baseline_attention.npy`` (float32 (L, H, Q, K)), and ``mask_code.py``:
the run's mask as one self-contained Python file (``apply(model)``, ``mask_from_scores(scores, layer)``, ``mask_mod``
/ ``mask_mods`` for index strategies; see ``dynmask_core.mask_code``). Its recipe options
are generated from the recipe's field declarations. ``attribute`` takes the same options plus ``--method``,
``--target`` and ``--steps`` and writes ``attribution.json``, ``attribution.npy`` and ``baseline_attribution.npy``
(one score per position; images add ``attribution_pixels.npy``). ``mlm-mask`` shows BERT's 15% masking of a
text epoch by epoch, ``static`` (one draw reused) or ``dynamic`` (a fresh draw per epoch); ``mlm-lab`` trains a tiny
BERT with each recipe and writes ``metrics.json`` (see ``dynmask_core.lessons.mlm``). Every user error, argparse's
own included, exits with status 2 and ONE line that says what is allowed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from dynmask_core.masks.plan import MAX_SEED
from dynmask_core.messages import shown


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


#: The range of every numeric option (the help text states it, the parser checks it before any work).
MAX_TOKENS_RANGE = (1, 10_000_000)
CAPTURE_MB_RANGE = (1.0, 1_048_576.0)  # 1 MB to 1 TB
STEPS_RANGE = (1, 1_000_000)
EPOCHS_RANGE = (1, 1000)
SEED_RANGE = (0, MAX_SEED)
POSITION_RANGE = (0, 1_000_000)  # a layer or head index of --keep-full (the model's own size is checked later)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as a :class:`CliError` (one line) instead of the usage block."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see: {self.prog} --help)")


def cmd_strategies(args: argparse.Namespace) -> int:
    from dynmask_core.masks import strategies

    rows = strategies()
    if args.json:
        print(json.dumps([
            {"id": s.id, "kind": s.kind, "title": s.title, "summary": s.summary, "reference": s.reference,
             "params": [{"name": p.name, "type": p.type, "default": p.default, "min": p.min, "max": p.max,
                         "choices": list(p.choices), "help": p.help} for p in s.params]}
            for s in rows
        ], indent=2))
        return 0
    width = max(len(s.id) for s in rows)
    for s in rows:
        params = "; ".join(p.describe() for p in s.params) or "no parameters"
        print(f"{s.id:<{width}}  {s.kind:<7}  {params}")
        print(f"{'':<{width}}           {s.summary}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Every bundled model with its modality, task, labels, layers and heads (each is loaded to read them)."""
    from dynmask_core.models import PRESETS, load

    rows = []
    for preset in PRESETS.values():
        try:
            loaded = load(preset.id, device="cpu")
        except ValueError as err:
            raise CliError(f"{preset.id}: {err}") from None
        rows.append({"id": preset.id, "title": preset.title, "modality": loaded.modality, "task": loaded.task,
                     "labels": list(loaded.labels), "layers": loaded.n_layers, "heads": loaded.n_heads,
                     "description": preset.description})
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    for r in rows:
        labels = f", labels: {', '.join(r['labels'])}" if r["labels"] else ""
        print(f"{r['id']:<15} {r['modality']:<6} {r['task']:<10} {r['layers']} layers x {r['heads']} heads{labels}")
    return 0


def cmd_samples(args: argparse.Namespace) -> int:
    """Every bundled sample input, with its id and modality."""
    from dynmask_core.samples import samples

    rows = [{"id": s.id, "modality": s.modality, "title": s.title, "label": s.label, "origin": s.origin}
            for s in samples()]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        print(f"{r['id']:<{width}}  {r['modality']:<6} {r['title']}")
    return 0


def _recipe_run(args: argparse.Namespace, page: str) -> tuple:
    """What ``run`` and ``attribute`` share: the recipe, the output folder, the model, the plan and the input.

    Returns:
        ``(recipe, out, loaded, plan, prepared, input_record)``.
    """
    from dynmask_core.modalities import encode
    from dynmask_core.models import load
    from dynmask_core.recipe import resolve
    from dynmask_core.recipe.cli_args import input_from_args, recipe_from_args

    try:
        recipe = recipe_from_args(args, page=page)
        _, _, source, record = input_from_args(args)
    except ValueError as err:
        raise CliError(str(err)) from None
    out = _out_folder(args.out)  # checked before the model loads: a folder we cannot write fails in a second

    def progress(stage: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {stage}", file=sys.stderr)

    try:
        loaded = load(recipe.model, device=args.device, progress=progress, dtype=getattr(args, "dtype", None))
        resolved = resolve(recipe, loaded, strict=True)
        plan = resolved.plan if recipe.seed is None else replace(resolved.plan, seed=recipe.seed)  # as given
        if args.max_tokens is not None and hasattr(source, "max_tokens"):  # a source that can be cut (text)
            source = replace(source, max_tokens=args.max_tokens)
        prepared = encode(loaded, source)
    except ValueError as err:
        raise CliError(str(err)) from None
    return resolved.recipe, out, loaded, plan.resolved(), prepared, record


def cmd_run(args: argparse.Namespace) -> int:
    from dynmask_core import export
    from dynmask_core.engine import run

    recipe, out, loaded, plan, prepared, record = _recipe_run(args, "playground")
    capture = _capture_of(args.capture_budget_mb, args.keep_full or [], loaded, prepared)
    try:
        result = run(loaded, prepared, plan, capture=capture)
    except ValueError as err:
        raise CliError(str(err)) from None
    code = _mask_code(result, loaded, prepared)
    files = _written(lambda: export.write_run(out, result, input_record=record, code=code), out)
    print(f"{result.plan.mask().label()} on {loaded.id} ({len(result.tokens)} tokens, seed {result.seed}): "
          f"{result.baseline_output.describe(result.metrics)}")
    _note_truncated(prepared)
    print(f"wrote {out}/{', '.join(files)}")
    return 0


def _mask_code(result: Any, loaded: Any, prepared: Any) -> str | None:
    """The run's ``mask_code.py`` (None, with a note, when a strategy cannot be written as code)."""
    from dynmask_core.mask_code import for_run

    try:
        return for_run(result, loaded, prepared)
    except ValueError as err:
        print(f"note: mask_code.py not written: {err}", file=sys.stderr)
        return None


#: Without --capture-budget-mb, a run whose full capture (both runs' weights and masks) would pass this keeps
#: summaries and pooled maps within DEFAULT_CAPTURE_MB instead.
FULL_CAPTURE_LIMIT = 2**30
DEFAULT_CAPTURE_MB = 100.0


def _capture_of(budget: float | None, keep: list[tuple[int, int]], loaded: Any, prepared: Any) -> Any:
    """``True`` (every weight) or a :class:`~dynmask_core.capture.CapturePlan` keeping the ``keep`` (layer, head)
    pairs in full when they fit."""
    from dynmask_core.capture import CapturePlan, full_capture_bytes

    n = len(prepared.labels)
    if budget is None:
        need = full_capture_bytes(loaded.n_layers, loaded.n_heads, n, n)
        if need <= FULL_CAPTURE_LIMIT:
            return True
        budget = DEFAULT_CAPTURE_MB
        print(f"note: {n} tokens: every layer's weights would take {need / 2**30:.1f} GB; keeping summaries and "
              f"pooled maps within {budget:g} MB instead (--capture-budget-mb to choose)", file=sys.stderr)
    for layer, head in keep:
        if not (0 <= layer < max(loaded.n_layers, 1) and 0 <= head < max(loaded.n_heads, 1)):
            raise CliError(f"--keep-full {layer}:{head} is outside the model: layers 0-{loaded.n_layers - 1}, "
                           f"heads 0-{loaded.n_heads - 1}")
    return CapturePlan(budget_bytes=int(budget * 2**20), full=tuple(keep))


def cmd_attribute(args: argparse.Namespace) -> int:
    from dynmask_core import export
    from dynmask_core.attribution import attribute

    recipe, out, loaded, plan, prepared, record = _recipe_run(args, "attribution")

    def progress(fraction: float, what: str) -> None:
        step = int(fraction * 10)
        if step != progress.last:  # type: ignore[attr-defined]
            progress.last = step  # type: ignore[attr-defined]
            print(f"[{fraction:4.0%}] {what}", file=sys.stderr)

    progress.last = -1  # type: ignore[attr-defined]
    try:
        result = attribute(loaded, prepared, plan, recipe.attr_method, recipe.attr_target, recipe.attr_steps,
                           progress=progress)
    except ValueError as err:
        raise CliError(str(err)) from None
    extra = {"model": loaded.id, "input": record, "strategy": plan.to_dict(), "seed": int(plan.seed or 0)}
    files = _written(lambda: export.write_attribution(out, result, extra), out)
    delta = "" if result.masked.delta is None else \
        f", convergence delta {result.masked.delta:+.2e} (masked) / {result.baseline.delta:+.2e} (unmasked)"
    print(f"{result.method} of the {result.target.describe()} on {loaded.id}, {plan.mask().label()} vs unmasked "
          f"({len(result.positions)} positions, {result.seconds:.1f} s{delta})")
    _note_truncated(prepared)
    print(f"wrote {out}/{', '.join(files)}")
    return 0


def _out_folder(path: str) -> Path:
    """The ``--out`` folder, created when missing and proven writable by writing a file into it, before any work
    (a CliError when it is a file, cannot be made, or cannot be written: a run of minutes must not die at its end)."""
    import tempfile

    out = Path(path).expanduser()
    try:
        if out.exists() and not out.is_dir():
            raise CliError(f"--out must be a folder, but {shown(path)} is a file: name a folder")
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise CliError(f"cannot write to the --out folder {shown(path)} ({err.strerror or type(err).__name__}): "
                       "name a folder you can write to") from None
    return out


def _written(write: Any, out: Path) -> Any:
    """``write()``, with an OSError (a full disk, the folder removed meanwhile) as one line."""
    try:
        return write()
    except OSError as err:
        raise CliError(f"could not write the results to {shown(str(out))} ({err.strerror or type(err).__name__}): "
                       "free some space or name another --out folder") from None


def _note_truncated(prepared) -> None:
    if prepared.truncated:
        from dynmask_core.modalities import modality

        print(f"note: the {modality(prepared.kind).noun} was cut to {len(prepared.labels)} positions", file=sys.stderr)


def cmd_prepare(args: argparse.Namespace) -> int:
    """Loads every bundled model once (SmolLM2's GGUF is converted to its safetensors cache)."""
    from dynmask_core.models import PRESETS, load

    for model_id in args.models or list(PRESETS):
        if model_id not in PRESETS:
            raise CliError(f"prepare takes bundled ids ({', '.join(PRESETS)}), got {model_id!r}")
        try:
            load(model_id, progress=lambda s, f, name=model_id: print(f"{name}: [{f:4.0%}] {s}", file=sys.stderr))
        except ValueError as err:
            raise CliError(str(err)) from None
        print(f"{model_id}: ready")
    return 0


def cmd_mlm_mask(args: argparse.Namespace) -> int:
    """BERT's masking of one text, per epoch, under the static or dynamic recipe."""
    from dynmask_core.lessons import mlm

    if not args.text.strip():
        raise CliError("--text must not be empty")
    if not 1 <= args.epochs <= mlm.MAX_EPOCHS:
        raise CliError(f"--epochs must be from 1 to {mlm.MAX_EPOCHS}, got {args.epochs}")
    if not 0 <= args.seed <= MAX_SEED:
        raise CliError(f"--seed must be from 0 to {MAX_SEED}, got {args.seed}")
    try:
        masking = mlm.mask_text(args.text, recipe=args.recipe, seed=args.seed, epochs=args.epochs)
    except ValueError as err:
        raise CliError(str(err)) from None
    if masking.truncated:
        print(f"note: the text was cut to {len(masking.tokens)} tokens", file=sys.stderr)
    if args.json:
        print(json.dumps(masking.to_dict(), indent=2, ensure_ascii=False))
        return 0
    print(f"{args.recipe} masking, seed {args.seed}: [MASK] = masked, {{old->new}} = random token, "
          f"{{=old}} = kept but predicted")
    width = len(str(args.epochs - 1))
    for epoch in range(args.epochs):
        print(f"epoch {epoch:>{width}}: {masking.render(epoch)}")
    return 0


def cmd_mlm_lab(args: argparse.Namespace) -> int:
    """Trains the tiny BERT with static and with dynamic masking; writes ``metrics.json``."""
    from dynmask_core.lessons import mlm

    steps = mlm.LabConfig().steps if args.steps is None else args.steps
    if not 0 <= args.seed <= MAX_SEED:
        raise CliError(f"--seed must be from 0 to {MAX_SEED}, got {args.seed}")
    out = _out_folder(args.out)

    def progress(fraction: float, text: str) -> None:
        if "held-out" in text or fraction == 0:  # the evaluations (every eval_every steps) and the start
            print(f"[{fraction:4.0%}] {text}", file=sys.stderr)

    try:
        config = mlm.LabConfig(steps=steps, seed=args.seed).validate()
        result = mlm.run_lab(config, progress=progress)
    except ValueError as err:
        raise CliError(str(err)) from None
    path = _written(lambda: mlm.save_run(result, out / "metrics.json"), out)
    for recipe in mlm.RECIPES:
        run = getattr(result, recipe)
        print(f"{recipe:<7}: train loss {run.final['train_loss']:.3f}, held-out loss {run.final['heldout_loss']:.3f}, "
              f"masked accuracy {run.final['masked_accuracy']:.1%} ({run.seconds:.1f} s)")
    print(f"{config.steps} steps each on {result.device}, {result.seconds:.1f} s in all; wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from dynmask_core.recipe.cli_args import add_recipe_arguments

    parser = _Parser(prog="python -m dynmask_core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("strategies", help="list strategy ids, kinds and parameters")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_strategies)

    for name, page, func, text in (
            ("run", "playground", cmd_run, "run a model with a mask strategy and write run.json + NPY files + "
                                            "mask_code.py"),
            ("attribute", "attribution", cmd_attribute, "attribute the prediction to the input, masked vs "
                                                          "unmasked; writes attribution.json + NPY files")):
        p = sub.add_parser(name, help=text)
        add_recipe_arguments(p, page=page)
        p.add_argument("--max-tokens", type=_int("--max-tokens", *MAX_TOKENS_RANGE),
                       help=f"cut the input to this many tokens, {_range(MAX_TOKENS_RANGE)} (default: the model's "
                            "limit; a larger number reads up to that limit)")
        p.add_argument("--device", help="cpu or cuda (default: cuda when present)")
        p.add_argument("--out", required=True, help="output folder")
        if name == "run":
            p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                           help="the weights' dtype: float32 (default) or bfloat16 (half the memory; faster on a GPU "
                                "with bf16; numbers differ from float32's in the 3rd digit; weights captured in "
                                "float32)")
            p.add_argument("--capture-budget-mb", type=_float("--capture-budget-mb", *CAPTURE_MB_RANGE),
                           help="keep per-layer/head summaries and pooled maps within this many MB instead of every "
                                f"weight, {_range(CAPTURE_MB_RANGE)} (default: every weight, unless that passes 1 GB: "
                                "then 100 MB)")
            p.add_argument("--keep-full", type=_pair("--keep-full", *POSITION_RANGE), action="append",
                           metavar="LAYER:HEAD",
                           help="with a capture budget, keep this layer's head in full too (repeatable)")
        p.set_defaults(func=func)

    p = sub.add_parser("models", help="list the bundled models (id, modality, task, labels, layers, heads)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("samples", help="list the bundled sample inputs (id, modality)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_samples)

    p = sub.add_parser("mlm-mask", help="BERT's 15%% masking of a text per epoch: static (drawn once) or dynamic")
    p.add_argument("--text", required=True, help="the text to mask (MiniLM WordPiece tokens)")
    p.add_argument("--recipe", choices=("static", "dynamic"), default="dynamic",
                   help="static: one draw reused every epoch (BERT); dynamic: a fresh draw per epoch (RoBERTa)")
    p.add_argument("--epochs", type=_int("--epochs", *EPOCHS_RANGE), default=4,
                   help=f"epochs to show, {_range(EPOCHS_RANGE)} (default 4)")
    p.add_argument("--seed", type=_int("--seed", *SEED_RANGE), default=0, help=f"{_range(SEED_RANGE)} (default 0)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_mlm_mask)

    p = sub.add_parser("mlm-lab", help="train a tiny BERT with static and with dynamic masking; writes metrics.json")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=_int("--steps", *STEPS_RANGE), default=None,
                   help=f"optimizer steps per recipe, {_range(STEPS_RANGE)} (default: the lab's default)")
    p.add_argument("--seed", type=_int("--seed", *SEED_RANGE), default=0, help=f"{_range(SEED_RANGE)} (default 0)")
    p.set_defaults(func=cmd_mlm_lab)

    p = sub.add_parser("prepare", help="load the bundled models once (converts SmolLM2's GGUF to a cache)")
    p.add_argument("models", nargs="*", help="bundled ids (default: all)")
    p.set_defaults(func=cmd_prepare)
    return parser


def _range(bounds: tuple[float, float]) -> str:
    """``"1 to 1,000,000"``: a numeric option's range as its help and its errors state it."""
    def number(x: float) -> str:
        return f"{int(x):,}" if float(x).is_integer() else f"{x:,g}"

    return f"{number(bounds[0])} to {number(bounds[1])}"


def _int(flag: str, low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high``, else one line that states the range."""
    def convert(text: str) -> int:
        try:
            value = int(text) if text.isascii() else int("x")  # int() would read "٣" as 3: digits as typed only
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes a whole number from {_range((low, high))}, "
                                             f"got {shown(text)}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{flag} must be from {_range((low, high))}, got {shown(text)}")
        return value

    return convert


def _pair(flag: str, low: int, high: int):
    def convert(text: str) -> tuple[int, int]:
        try:
            layer, head = (int(part) for part in text.split(":"))
        except ValueError:  # not two parts, or not whole numbers
            raise argparse.ArgumentTypeError(f"{flag} takes LAYER:HEAD, two whole numbers, got {shown(text)}") \
                from None
        if not (low <= layer <= high and low <= head <= high):
            raise argparse.ArgumentTypeError(f"{flag} takes LAYER:HEAD, each from {_range((low, high))}, "
                                             f"got {shown(text)}")
        return layer, head

    return convert


def _float(flag: str, low: float, high: float):
    """An argparse type: a finite number from ``low`` to ``high``, else one line that states the range."""
    def convert(text: str) -> float:
        try:
            value = float(text) if text.isascii() else float("nan")
        except ValueError:
            value = float("nan")
        if not low <= value <= high:  # NaN and the infinities fail here too
            raise argparse.ArgumentTypeError(f"{flag} takes a number from {_range((low, high))}, got {shown(text)}")
        return value

    return convert


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
