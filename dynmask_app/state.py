"""The app's recipe: :class:`~dynmask_core.recipe.Recipe` with the page registry's pages, sides and defaults.

Everything else (fields, link format, validation) is the core recipe's: see :mod:`dynmask_core.recipe`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dynmask_app.page_registry import DEFAULT_PAGE, PAGES
from dynmask_core.recipe import MAX_URL_TEXT, VERSION, Recipe, fit_to_model

__all__ = ["MAX_URL_TEXT", "VERSION", "AppState"]


@dataclass(frozen=True)
class AppState(Recipe):
    """A recipe whose ``page`` is one of the app's pages (see :mod:`dynmask_app.page_registry`)."""

    @classmethod
    def default(cls, page: str = DEFAULT_PAGE) -> AppState:
        return cls(page=page, **PAGES[page].defaults)

    @classmethod
    def known_pages(cls) -> tuple[str, ...]:
        return tuple(PAGES)

    def sides(self) -> tuple[str, ...]:
        return PAGES[self.page].sides if self.page in PAGES else ("main",)

    def check_model(self, n_layers: int, n_heads: int, causal: bool, model_name: str = "this model"
                    ) -> tuple[AppState, list[str]]:
        """Drops layer/head indices the model lacks (with warnings); see :func:`dynmask_core.recipe.fit_to_model`."""
        return fit_to_model(self, n_layers, n_heads, causal, model_name)
