"""Hostile inputs, round three: the command line's --out folder and numeric options (one `error:` line, exit 2, before
any work), and values from a link or a file drawn inert in every figure (no live link, no markup in a title, a tick,
a legend or a hover label)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from dynmask_core import cli, viz
from dynmask_core.viz import attribution as viz_attr
from dynmask_core.viz import audio as viz_audio
from dynmask_core.viz import image as viz_image
from dynmask_core.viz import lessons as viz_lessons


def _main(argv: list[str], capsys) -> tuple[int, list[str]]:
    code = cli.main(argv)
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip() and not line.startswith("[")]


@pytest.fixture
def no_work(monkeypatch):
    """Loading a model or training fails the test: a refused option must be refused before any work."""
    def refuse(*args, **kwargs):
        raise AssertionError("the command started its work before refusing the option")

    monkeypatch.setattr("dynmask_core.models.load", refuse)
    monkeypatch.setattr("dynmask_core.lessons.mlm.run_lab", refuse)


def _one_error_line(code: int, lines: list[str]) -> str:
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in lines[0]
    return lines[0]


# ------------------------------------------------------------------------------------------- 8. unwritable --out

def _unwritable(tmp_path) -> list[str]:
    a_file = tmp_path / "results.txt"
    a_file.write_text("x")
    out = [str(a_file), str(a_file / "sub"), "/proc/self/no-such-folder", "/dev/null", "/proc/self"]
    if os.geteuid() == 0:
        out.append("/sys/kernel")  # root may write anywhere on a disk, not in sysfs
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        out.append(str(locked))
    return out


@pytest.mark.parametrize("command", ["run", "attribute", "mlm-lab"])
def test_an_unwritable_out_folder_is_one_line_before_any_work(command, tmp_path, capsys, no_work) -> None:
    for out in _unwritable(tmp_path):
        argv = [command, "--out", out] + (["--steps", "1"] if command == "mlm-lab" else ["--text", "a b c"])
        line = _one_error_line(*_main(argv, capsys))
        assert "--out" in line and "folder" in line, line


def test_a_write_that_fails_at_the_end_is_one_line(tmp_path, capsys, monkeypatch) -> None:
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("dynmask_core.export.write_run", full_disk)
    line = _one_error_line(*_main(["run", "--text", "a b c", "--out", str(tmp_path / "o")], capsys))
    assert "No space left on device" in line and "--out" in line


# ------------------------------------------------------------------------------------ 9. every numeric option

NUMERIC = [  # (command, the option and a value slot, the rest of a valid command line)
    (["run", "--capture-budget-mb"], ["--text", "a b"]),
    (["run", "--max-tokens"], ["--text", "a b"]),
    (["attribute", "--max-tokens"], ["--text", "a b"]),
    (["mlm-mask", "--epochs"], ["--text", "a b c d"]),
    (["mlm-mask", "--seed"], ["--text", "a b c d"]),
    (["mlm-lab", "--steps"], []),
    (["mlm-lab", "--seed"], ["--steps", "1"]),
]
ODD = ["1e-9", "1e308", "-1", "nan", "inf", "1" + "0" * 40, "0x10", "", "٣"]


@pytest.mark.parametrize(("head", "rest"), NUMERIC, ids=lambda x: " ".join(x) if isinstance(x, list) else x)
def test_every_numeric_option_has_a_stated_range(head, rest, tmp_path, capsys, no_work) -> None:
    for value in ODD:
        argv = [*head, value, *rest] + (["--out", str(tmp_path / "o")] if head[0] != "mlm-mask" else [])
        line = _one_error_line(*_main(argv, capsys))
        assert head[1] in line and " to " in line, line  # says the range


@pytest.mark.parametrize("value", ["0:1e308", "-1:0", "0:99999999999", "a:b", "1"])
def test_keep_full_takes_two_whole_numbers_in_range(value, tmp_path, capsys, no_work) -> None:
    argv = ["run", "--text", "a b", "--out", str(tmp_path), "--capture-budget-mb", "5", "--keep-full", value]
    assert "--keep-full" in _one_error_line(*_main(argv, capsys))


@pytest.mark.parametrize("command", ["run", "attribute", "mlm-mask", "mlm-lab"])
def test_the_help_states_each_numeric_range(command, capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    wanted = {"run": ["1 to 10,000,000", "1 to 1,048,576"], "attribute": ["1 to 10,000,000"],
              "mlm-mask": ["1 to 1,000", "0 to 2,147,483,647"], "mlm-lab": ["1 to 1,000,000", "0 to 2,147,483,647"]}
    for bounds in wanted[command]:
        assert bounds in text, (bounds, text)


def test_a_budget_at_its_floor_still_runs(tmp_path, capsys) -> None:
    code, lines = _main(["run", "--text", "a b c", "--out", str(tmp_path), "--capture-budget-mb", "1"], capsys)
    assert code == 0, lines
    assert json.loads((tmp_path / "run.json").read_text())["tokens"][:1] == ["[CLS]"]


# ------------------------------------------------------------------------------- 7. values drawn inert in figures

LINK = '<a href="https://evil.example/">Session expired: log in</a>'
HOSTILE = [LINK, "<b>bold</b>", "<img src=x onerror=alert(1)>", "%{y}<br>x", "a & b"]


def _texts(figure) -> str:
    """Every string of the figure as plotly receives it, one per line."""
    def walk(x):
        if isinstance(x, str):
            yield x
        elif isinstance(x, dict):
            for v in x.values():
                yield from walk(v)
        elif isinstance(x, list):
            for v in x:
                yield from walk(v)

    return "\n".join(walk(json.loads(figure.to_json())))  # plotly's own encoder


def _figures(value: str) -> list:
    tokens = ["[CLS]", value, "b", "[SEP]"]
    m = np.eye(4, dtype=bool)
    w = np.full((4, 4), 0.25, dtype=np.float32)
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    wave = np.sin(np.arange(8000) / 5).astype(np.float32)
    return [
        viz.mask_figure(m, tokens, title=value), viz.attention_figure(w, tokens, title=value),
        viz.diff_figure(w - 0.25, tokens, title=value),
        viz.model_view_figure(np.ones((2, 2, 4, 4), dtype=np.float32) / 4, title=value),
        viz.sentiment_figure({value: 0.6, "other": 0.4}, {value: 0.5, "other": 0.5}, title=value),
        viz.next_token_figure([{"token": value, "prob": 0.5}], [{"token": value, "prob": 0.4}], title=value),
        viz_attr.positions_figure(tokens, {value: np.ones(4), "masked": np.ones(4)}, value, label=value),
        viz_attr.pixel_overlay_figure(image, np.ones((2, 2)), value, 1.0, label=value),
        viz_attr.head_importance_figure(np.ones((2, 2)), value),
        viz_image.patch_overlay_figure(image, np.ones((2, 2)), value, label=value),
        viz_audio.time_figure(wave, 16000, {value: np.ones(4)}, 0.1, value, label=value),
        viz_audio.waveform_figure(wave, 16000, title=value),
        viz_lessons.numbers_figure(np.ones((2, 2)), [value, "r"], [value, "c"], value),
        viz_lessons.pitfall_figure([value, "k"], {value: np.ones(2)}, value),
    ]


@pytest.mark.parametrize("value", HOSTILE)
def test_every_figure_draws_link_values_inert(value) -> None:
    for figure in _figures(value):
        text = _texts(figure)
        assert value not in text or not any(c in value for c in "<&%"), (value, text[:300])
        for markup in ("<a ", "<b>", "<img", "%{y}<br>x"):
            if markup in value:
                assert markup not in text, (markup, text[:300])
        assert viz.inert(value) in text or "&#37;" in text  # the value is there, shown as written


def test_inert_text_keeps_plain_words_and_ids() -> None:
    for plain in ("minilm", "org/model-1.5", "positive", "radius=2", "ñandú 猫", "\"quoted\" 'text'"):
        assert viz.inert(plain) == plain


# ------------------------------------------------- one colour convention (issue 22: red meant two things)

def _rgb(colour: str) -> tuple[int, ...]:
    import re

    if colour.startswith("#"):
        return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return tuple(int(float(x)) for x in re.findall(r"[\d.]+", colour)[:3])


def test_every_diverging_chart_draws_more_or_up_in_blue_and_less_or_down_in_red() -> None:
    from plotly.colors import get_colorscale

    def ends(trace) -> tuple[tuple[int, ...], tuple[int, ...]]:
        scale = trace.colorscale if not isinstance(trace.colorscale, str) else get_colorscale(trace.colorscale)
        low, high = _rgb(scale[0][1]), _rgb(scale[-1][1])
        return (high, low) if getattr(trace, "reversescale", False) else (low, high)

    w = np.full((3, 3), 0.1, dtype=np.float32)
    figures = {"difference map": viz.diff_figure(w - 0.05, ["a", "b", "c"]),
               "attribution overlay": viz_attr.pixel_overlay_figure(np.zeros((8, 8, 3), np.uint8), np.ones((2, 2)),
                                                                    "t", 1.0),
               "lesson numbers": viz_lessons.numbers_figure(np.array([[-1.0, 1.0]]), ["q"], ["k1", "k2"], "t")}
    for name, fig in figures.items():
        trace = next(t for t in fig.data if t.type == "heatmap" and t.colorscale is not None)
        low, high = ends(trace)
        assert high[2] > high[0] and low[0] > low[2], (name, low, high)  # top blue, bottom red
    r, g, b = viz_attr.diverging_rgb(1.0, 1.0)
    assert b > r  # the attribution chips: pushed up = blue
