"""The message catalogue: every message of the app has a Simplified Chinese translation with the same fields."""

from __future__ import annotations

import string
import subprocess
import sys

from dynmask_app.i18n import _CATALOGUES, catalogue, read_po, translate
from tests import ROOT


def _fields(text: str) -> set[tuple[str, str, str]]:
    return {(name, spec or "", conv or "") for _, name, spec, conv in string.Formatter().parse(text) if name}


def test_every_message_has_a_chinese_translation_with_the_same_fields() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from extract_messages import messages

    zh = catalogue("zh")
    found = messages()
    missing = [m for m in found if m not in zh]
    assert not missing, f"{len(missing)} messages lack a zh translation, e.g. {missing[:3]}"
    for msgid, msgstr in read_po(_CATALOGUES["zh"]).items():
        assert _fields(msgid) == _fields(msgstr), msgid
        assert msgid.count("**") == msgstr.count("**"), msgid


def test_the_extract_script_agrees() -> None:
    done = subprocess.run([sys.executable, "scripts/extract_messages.py", "--missing", "zh"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-500:] + done.stderr[-500:]


def test_english_is_the_source_and_unknown_messages_fall_back() -> None:
    assert translate("Run", "en") == "Run" and translate("Run", "zh") != "Run"
    assert translate("a message nobody wrote", "zh") == "a message nobody wrote"


def test_a_bad_po_line_is_named(tmp_path) -> None:
    bad = tmp_path / "x.po"
    bad.write_text('msgid "a"\nmsgstr "b"\nnonsense\n', encoding="utf-8")
    try:
        read_po(bad)
    except ValueError as err:
        assert "x.po:3" in str(err)
    else:
        raise AssertionError("a bad line must be refused")
