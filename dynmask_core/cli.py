"""Command line: ``python -m dynmask_core strategies | run | prepare``.

``run`` walks the same path as the app and writes ``run.json``, ``masks.npy`` (bool (L, H, Q, K)),
``attention.npy`` and ``baseline_attention.npy`` (float32 (L, H, Q, K)). Bad arguments exit with status 2 and a
one-line message that says what is allowed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


MAX_INDEX = 4095  # no model here has more layers or heads


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def parse_indices(text: str | None, what: str) -> tuple[int, ...] | None:
    """``"0,2,4-6"`` -> (0, 2, 4, 5, 6); None or "all" -> None (every layer/head)."""
    if text is None or text.strip().lower() in {"", "all"}:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo or hi > MAX_INDEX:
                    raise CliError(f"--{what} ranges go from low to high, at most {MAX_INDEX}, got {part!r}")
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise CliError(f"--{what} takes indices like 0,2 or 0-3 (or 'all'), got {text!r}") from None
    if any(i < 0 or i > MAX_INDEX for i in out):
        raise CliError(f"--{what} indices must be between 0 and {MAX_INDEX}, got {text!r}")
    return tuple(sorted(set(out)))


def parse_params(items: Sequence[str] | None, flag: str = "--param") -> dict[str, str]:
    """``["radius=2", "causal=true"]`` -> {"radius": "2", "causal": "true"} (typed later by the strategy)."""
    params: dict[str, str] = {}
    for item in items or ():
        for piece in item.split(","):
            name, sep, value = piece.partition("=")
            if not sep or not name.strip():
                raise CliError(f"{flag} takes name=value (e.g. radius=2), got {piece!r}")
            params[name.strip()] = value.strip()
    return params


def parse_compose(items: Sequence[str] | None) -> list[tuple[str, str, dict[str, str]]]:
    """``["and:causal", "or:prefix_lm:prefix=3"]`` -> [(op, id, params), ...]."""
    out = []
    for item in items or ():
        op, _, rest = item.partition(":")
        sid, _, ptext = rest.partition(":")
        if op not in ("and", "or") or not sid:
            raise CliError(f"--compose takes and:ID or or:ID[:name=value,...] (e.g. and:causal), got {item!r}")
        out.append((op, sid, parse_params([ptext], "--compose") if ptext else {}))
    return out


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


def cmd_run(args: argparse.Namespace) -> int:
    from dynmask_core.engine import MaskPlan, run
    from dynmask_core.masks import MODES, get_strategy
    from dynmask_core.modalities import encode_text
    from dynmask_core.models import load

    if args.mode not in MODES:
        raise CliError(f"--mode must be one of {', '.join(MODES)}, got {args.mode!r}")
    if args.text is None or not args.text.strip():
        raise CliError("--text is empty: give a sentence, e.g. --text \"The film was wonderful.\"")
    try:
        get_strategy(args.strategy)
        plan = MaskPlan.of(
            args.strategy, parse_params(args.param), compose=parse_compose(args.compose),
            layers=parse_indices(args.layers, "layers"), heads=parse_indices(args.heads, "heads"),
            mode=args.mode, beta=args.beta, renormalize=not args.no_renormalize, seed=args.seed,
            model_causal=not args.see_future,
        ).resolved()
    except ValueError as err:
        raise CliError(str(err)) from None
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out must be a folder, but {out} is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CliError(f"cannot create --out folder {out}: {err.strerror or err}") from None
    if args.max_tokens is not None and args.max_tokens < 1:
        raise CliError(f"--max-tokens must be at least 1, got {args.max_tokens}")

    def progress(stage: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {stage}", file=sys.stderr)

    try:
        loaded = load(args.model, device=args.device, progress=progress)
        text_input = encode_text(loaded, args.text, args.max_tokens)
        result = run(loaded, text_input, plan)
    except ValueError as err:
        raise CliError(str(err)) from None
    np.save(out / "masks.npy", result.masks.numpy().astype(bool))
    np.save(out / "attention.npy", result.attention.numpy().astype(np.float32))
    np.save(out / "baseline_attention.npy", result.baseline_attention.numpy().astype(np.float32))
    record: dict[str, Any] = result.to_dict()
    record["mode"] = result.plan.apply.mode
    record["layers"] = record["strategy"]["layers"]
    record["heads"] = record["strategy"]["heads"]
    (out / "run.json").write_text(json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8")
    from dynmask_core.analysis import describe_change

    print(f"{result.plan.mask().label()} on {loaded.id} ({len(result.tokens)} tokens, seed {result.seed}): "
          f"{describe_change(result.metrics)}")
    if result.truncated:
        print(f"note: the text was cut to {len(result.tokens)} tokens", file=sys.stderr)
    print(f"wrote {out}/run.json, masks.npy, attention.npy, baseline_attention.npy")
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dynmask_core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("strategies", help="list strategy ids, kinds and parameters")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_strategies)

    p = sub.add_parser("run", help="run a model with a mask strategy and write run.json + NPY files")
    p.add_argument("--model", default="minilm", help="bundled id (minilm, smollm2), Hugging Face id or folder")
    p.add_argument("--text", required=True, help="the input sentence(s)")
    p.add_argument("--strategy", default="none", help="strategy id (see `strategies`)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="strategy parameter (repeatable)")
    p.add_argument("--compose", action="append", metavar="OP:ID[:NAME=VALUE,...]",
                   help="compose another strategy, e.g. and:causal (repeatable)")
    p.add_argument("--layers", help="layers to mask, e.g. 0,2 or 0-3 (default all)")
    p.add_argument("--heads", help="heads to mask, e.g. 0-3 (default all)")
    p.add_argument("--mode", default="hard", help="hard | bias | gate | naive_multiply")
    p.add_argument("--beta", type=float, default=8.0, help="penalty for blocked keys in bias mode")
    p.add_argument("--no-renormalize", action="store_true", help="gate mode: do not rescale rows to sum to 1")
    p.add_argument("--seed", type=int, help="seed for dynamic strategies (default: a fresh one, recorded)")
    p.add_argument("--see-future", action="store_true",
                   help="turn a causal LM's own causal mask off (it may then attend to later tokens)")
    p.add_argument("--max-tokens", type=int, help="cut the input to this many tokens (default: model limit)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("prepare", help="load the bundled models once (converts SmolLM2's GGUF to a cache)")
    p.add_argument("models", nargs="*", help="bundled ids (default: all)")
    p.set_defaults(func=cmd_prepare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args))
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
