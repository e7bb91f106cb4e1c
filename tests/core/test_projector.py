"""Every figure builder's output, sized for a projector: no font under 18 px, category axes draw every label, the
cached original untouched."""

from __future__ import annotations

import json

from dynmask_core.viz.projector import PROJECTOR_PX, projector_figure
from tests.core.test_hostile_cli_and_figures import _figures


def _sizes(node, path="") -> list[tuple[str, float]]:
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "size" and "font" in path.rsplit(".", 1)[-1] and isinstance(value, (int, float)):
                out.append((path, value))
            out += _sizes(value, f"{path}.{key}")
    elif isinstance(node, list):
        for value in node:
            out += _sizes(value, path)
    return out


def test_every_figure_for_a_projector_has_no_small_text_and_every_label() -> None:
    for fig in _figures("token"):
        before = json.loads(fig.to_json())
        big = projector_figure(fig)
        assert json.loads(fig.to_json()) == before, "the shared original is not changed"
        spec = json.loads(big.to_json())
        small = [(p, s) for p, s in _sizes(spec) if s < PROJECTOR_PX]
        assert not small, small
        assert spec["layout"]["font"]["size"] >= PROJECTOR_PX
        for name, axis in spec["layout"].items():
            if name.startswith(("xaxis", "yaxis")) and axis.get("type") == "category":
                assert axis.get("dtick") == 1, name
