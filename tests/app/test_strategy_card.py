"""The strategy card speaks of an apply mode only where attention is masked: input-hiding strategies leave the
scores alone."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest


def _card(strategy: str, op: str, strategy2: str) -> None:
    from dynmask_app.state import AppState
    from dynmask_app.views.explain import strategy_card

    kind = "image" if "mae" in (strategy, strategy2) else "text"
    strategy_card(AppState(input_kind=kind, input_ref="shapes-star" if kind == "image" else "a b",
                           model="shapes_vit" if kind == "image" else "minilm",
                           strategy=strategy, op=op, strategy2=strategy2))


@pytest.mark.parametrize(("strategy", "op", "strategy2", "mode_line"), [
    ("mae_patches", "none", "none", False),
    ("none", "none", "none", False),
    ("sliding_window", "none", "none", True),
    ("mae_patches", "and", "causal", True),  # composed with an attention strategy: the mode applies to that one
])
def test_the_apply_mode_line_only_where_attention_is_masked(strategy, op, strategy2, mode_line) -> None:
    at = AppTest.from_function(_card, kwargs={"strategy": strategy, "op": op, "strategy2": strategy2},
                               default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert any("Apply mode" in c.value for c in at.caption) == mode_line
