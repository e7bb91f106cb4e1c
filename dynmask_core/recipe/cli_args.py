"""The recipe on the command line: one argparse option per declared field, and the recipe read back.

Flags come from the declarations (``--model``, ``--strategy``, ``--param``, ``--op``, ``--strategy2``, ``--param2``,
``--layers``, ``--heads``, ``--mode``, ``--beta``, ``--no-renormalize``, ``--seed``, ``--see-future``), plus two
groups that set several fields at once: the input (exactly one of ``--sample ID`` and each registered modality's
flag: ``--text TEXT``, ``--image PATH``, ``--audio PATH``: ``input_kind`` and ``input_ref``) and
``--compose OP:ID[:NAME=VALUE,...]`` (``--op``, ``--strategy2`` and ``--param2``).
Values are parsed by the same :class:`~dynmask_core.recipe.Field` as a link's, so they mean the same.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from typing import Any

from dynmask_core.modalities import Modality, modalities, modality
from dynmask_core.recipe.recipe import COMPOSE_OPS, Recipe
from dynmask_core.recipe.url import spec_value
from dynmask_core.samples import UPLOAD_PREFIX

COMPOSE_FLAG = "--compose"


def add_recipe_arguments(parser: argparse.ArgumentParser, cls: type[Recipe] = Recipe,
                         page: str = "playground") -> None:
    """Adds one option per field that declares a CLI flag and that ``page`` uses (values are parsed later, by the
    field): ``run`` stands for the Playground, ``attribute`` for the Attribution page (``--method``...)."""
    for spec in cls.fields_spec():
        if spec.cli is None or not spec.used_on(page):
            continue
        flags = (spec.cli, *spec.cli_aliases)
        if spec.type == "bool" and spec.cli_value is not None:
            parser.add_argument(*flags, dest=spec.name, action="store_const", const=spec.cli_value, default=None,
                                help=spec.help)
        elif spec.type == "params":
            parser.add_argument(*flags, dest=spec.name, action="append", metavar="NAME=VALUE", help=spec.help)
        else:
            metavar = "|".join(spec.choices) if spec.choices else None
            default = spec.default_on_cli
            shown_default = "" if default in (None, (), "") or spec.cli_required else f" (default {default})"
            parser.add_argument(*flags, dest=spec.name, default=None, metavar=metavar,
                                required=spec.cli_required, help=spec.help + shown_default)
    given = parser.add_mutually_exclusive_group(required=True)
    for m in _given_on_cli():  # --text TEXT, --image PATH, --audio PATH
        given.add_argument(m.cli_flag, dest=m.kind, metavar=None if m.inline else "PATH", help=m.cli_help)
    given.add_argument("--sample", dest="sample", metavar="ID", help="a bundled sample (see `samples`)")
    parser.add_argument(COMPOSE_FLAG, metavar="OP:ID[:NAME=VALUE,...]",
                        help="shorthand for --op, --strategy2 and --param2, e.g. and:causal or or:prefix_lm:prefix=3")


def recipe_from_args(args: argparse.Namespace, cls: type[Recipe] = Recipe, page: str = "playground") -> Recipe:
    """The recipe the parsed options describe; options not given take the field's command-line default.

    Raises:
        ValueError: a one-line message naming the flag and what it allows.
    """
    values: dict[str, Any] = {"page": page}
    for spec in cls.fields_spec():
        if spec.cli is None or not spec.used_on(page):
            continue
        raw = getattr(args, spec.name, None)
        if spec.type == "params":
            values[spec.name] = parse_params(raw, spec.cli)
        elif raw is None:
            values[spec.name] = spec.default_on_cli
        elif spec.type == "bool" and spec.cli_value is not None:
            values[spec.name] = raw
        else:
            values[spec.name] = spec.parse(raw, spec.cli)
    kind, ref, _, _ = input_from_args(args, load=False)
    values.update(input_kind=kind, input_ref=ref)
    if getattr(args, "model", None) is None:  # the bundled model for that kind of input
        from dynmask_core.models import default_model

        values["model"] = default_model(kind)
    compose = getattr(args, "compose", None)
    if compose:
        if getattr(args, "op", None) or getattr(args, "strategy2", None) or getattr(args, "params2", None):
            raise ValueError(f"{COMPOSE_FLAG} is a shorthand for --op/--strategy2/--param2: give one or the other")
        values["op"], values["strategy2"], values["params2"] = parse_compose(compose)
    return cls(**values)


def _given_on_cli() -> tuple[Modality, ...]:
    """The modalities a flag can give: the inline ones (the flag takes the input) and those read from files."""
    return tuple(m for m in modalities() if m.inline or m.reader is not None)


def input_from_args(args: argparse.Namespace, load: bool = True) -> tuple[str, str, Any, dict[str, Any]]:
    """The input the options name: ``(input_kind, input_ref, source, record)``.

    A file's ``input_ref`` is ``upload:<first 16 hex digits of its SHA-256>`` (like an upload in the app); its source
    is the decoded file (None when ``load`` is False). ``record`` is what ``run.json`` says about the input.

    Raises:
        ValueError: an unknown sample, an empty text, or a file that cannot be read (one line).
    """
    from dynmask_core.modalities.files import load_file, read_bytes
    from dynmask_core.samples import get_sample

    if getattr(args, "sample", None):
        sample = get_sample(args.sample)
        record = {"kind": sample.modality, "sample": sample.id}
        return sample.modality, sample.ref, sample.source() if load else None, record
    for m in _given_on_cli():
        value = getattr(args, m.kind, None)
        if value is None:
            continue
        if m.inline:
            if not value.strip():
                raise ValueError(f"{m.cli_flag} is empty: give {m.cli_help}")
            return m.kind, value, m.source(value), {"kind": m.kind}
        data = read_bytes(value, m.reader.max_bytes)
        source = load_file(value, m.kind, data) if load else None
        digest = hashlib.sha256(data).hexdigest()[:16]
        return m.kind, UPLOAD_PREFIX + digest, source, {"kind": m.kind, "file": str(value)}
    flags = [m.cli_flag for m in _given_on_cli()] + ["--sample"]
    raise ValueError(f"give the input with one of {', '.join(flags)}")


def parse_params(items: Sequence[str] | None, flag: str = "--param") -> dict[str, str]:
    """``["radius=2", "causal=true"]`` (or ``"radius=2,causal=true"``) -> {"radius": "2", "causal": "true"}."""
    params: dict[str, str] = {}
    for item in items or ():
        for piece in item.split(","):
            name, sep, value = piece.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"{flag} takes name=value (e.g. radius=2), got {piece!r}")
            params[name.strip()] = value.strip()
    return params


def parse_compose(text: str) -> tuple[str, str, dict[str, str]]:
    """``"or:prefix_lm:prefix=3"`` -> ("or", "prefix_lm", {"prefix": "3"})."""
    op, _, rest = text.partition(":")
    sid, _, ptext = rest.partition(":")
    if op not in COMPOSE_OPS[1:] or not sid:
        raise ValueError(f"{COMPOSE_FLAG} takes and:ID or or:ID[:name=value,...] (e.g. and:causal), got {text!r}")
    return op, sid, parse_params([ptext], COMPOSE_FLAG) if ptext else {}


def command_for(page: str) -> str:
    """The command that stands for a page on the command line: ``attribute`` for the Attribution page, else ``run``."""
    return "attribute" if page == "attribution" else "run"


def recipe_to_args(recipe: Recipe) -> list[str]:
    """The command line that gives back ``recipe`` (the fields the CLI knows), for the app's "as a command" box."""
    flag = modality(recipe.input_kind).cli_flag if modality(recipe.input_kind).inline else "--sample"
    out: list[str] = [flag, recipe.input_ref]
    for spec in type(recipe).fields_spec():
        if spec.cli is None or not spec.used_on(recipe.page):
            continue
        value = getattr(recipe, spec.name)
        if spec.type == "params":
            out += [x for k, v in value for x in (spec.cli, f"{k}={spec_value(v)}")]
        elif spec.type == "bool" and spec.cli_value is not None:
            if value == spec.cli_value:
                out.append(spec.cli)
        elif value in ((), None) or (spec.name == "strategy2" and recipe.op == "none"):
            continue  # all layers/heads, no seed, no second strategy: the defaults say it
        else:
            out += [spec.cli, spec.encode(value)]
    return out
