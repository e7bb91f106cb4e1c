"""Lists every translatable message of the app (gettext's "extract" step), as a PO template or a check.

Messages: the literal first argument of every ``t(...)``/``_(...)``/``translate(...)``/``N_(...)``/``Message(...)``
call in ``dynmask_app/``; in ``dynmask_core/``,
every text marked for a page (the literal first argument of ``N_(...)``, ``Message(...)`` and a builder's
``tr(...)``: see :mod:`dynmask_core.messages`); the page registry's navigation labels, titles, captions and
empty-state texts; the recipe fields' labels, choice labels and choice help; and the words of the core's registries
a page shows: strategies (title, summary, note, parameter help), attribution methods (title, help), input kinds
(label and nouns), bundled samples (title) and bundled models (title, description).

    .venv/bin/python scripts/extract_messages.py > dynmask_app/locale/dynmask.pot   # the template
    .venv/bin/python scripts/extract_messages.py --missing zh                         # what zh lacks
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


#: Callables whose literal first argument is a message: in the app, and in the core (marked for a page).
APP_CALLS = ("t", "_", "N_", "translate", "Message")
CORE_CALLS = ("N_", "Message", "tr")


def _literal_calls(package: str, names: tuple[str, ...]) -> list[str]:
    """The literal first argument of every call of one of ``names`` in ``package``'s files."""
    out: list[str] = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                out.append(node.args[0].value)
    return out


def _core_registries() -> list[str]:
    """The words of the core's registries that a page shows."""
    from dynmask_core.attribution import ATTRIBUTION_METHODS
    from dynmask_core.masks import strategies
    from dynmask_core.modalities import modalities
    from dynmask_core.models import PRESETS
    from dynmask_core.models.loader import TASKS
    from dynmask_core.samples import samples

    out: list[str] = []
    for entry in strategies():
        out += [entry.title, entry.summary, entry.note]
        out += [p.help for p in entry.params]
    for method in ATTRIBUTION_METHODS.values():
        out += [method.title, method.help]
    for m in modalities():
        out += [m.kind, m.label, m.noun, m.upload_noun]
    out += [s.title for s in samples()]
    for preset in PRESETS.values():
        out += [preset.title, preset.description]
    out += list(TASKS)  # a loaded model's task, as the sidebar names it
    return out


def messages() -> list[str]:
    """Every message, in a stable order, without repeats."""
    from dynmask_app.page_registry import PAGES
    from dynmask_app.state import AppState
    from dynmask_core.masks import strategies

    out: list[str] = _literal_calls("dynmask_app", APP_CALLS) + _literal_calls("dynmask_core", CORE_CALLS)
    for spec in PAGES.values():
        out += [spec.nav, spec.tab, spec.title, spec.caption, spec.empty]
    from dynmask_app.page_registry import OTHER_PAGES

    out += [nav for _, nav, _ in OTHER_PAGES]
    for field in AppState.fields_spec():
        if field.widget is None:
            continue
        out += [field.label, field.help]
        out += [str(v) for v in (field.choice_labels or {}).values()]
        out += [str(v) for v in (field.choice_help or {}).values()]
    out += ["static", "dynamic", "Where and how to apply it", "What to explain (attribution)"]
    out += ["unmasked", "window", "window + sink"]  # shown through a variable
    from dynmask_app.server.serving import ServingPolicy

    out += [name for name, _ in ServingPolicy().rows()]
    for entry in strategies():
        out += [entry.title, entry.summary]
    out += _core_registries()
    seen: dict[str, None] = {}
    for m in out:
        if m and m not in seen:
            seen[m] = None
    return list(seen)


def _po_string(text: str) -> str:
    """A PO string literal (backslashes, quotes and newlines escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missing", metavar="LANG", help="list the messages LANG's catalogue lacks; status 1 if any")
    args = parser.parse_args()
    found = messages()
    if args.missing:
        from dynmask_app.i18n import catalogue

        missing = [m for m in found if m not in catalogue(args.missing)]
        for m in missing:
            print(_po_string(m))
        print(f"{len(missing)} of {len(found)} messages have no {args.missing} translation", file=sys.stderr)
        return 1 if missing else 0
    print("# dynmask messages (generated by scripts/extract_messages.py)")
    for m in found:
        print(f"\nmsgid {_po_string(m)}")
        print('msgstr ""')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
