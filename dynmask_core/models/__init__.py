"""Models: bundled offline presets (``minilm``, ``smollm2``), any Hugging Face id, or a local folder."""

from dynmask_core.models.loader import DEFAULT_MODEL, PRESETS, LoadedModel, default_model, load

__all__ = ["DEFAULT_MODEL", "PRESETS", "LoadedModel", "default_model", "load"]
