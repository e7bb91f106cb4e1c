"""The *Code* tab: the run shown, as code to paste into your own model (README "From the lab to your model").

It shows :func:`dynmask_core.mask_code.snippet` of the run (``st.code`` has a copy button), a line saying what the
whole file does, for which model id and input, and a download of the self-contained ``mask_code.py``
(:func:`dynmask_core.mask_code.generate`: ``apply(model)``, ``mask_from_scores``, ``mask_mod`` for index plans; run
as a script, it prints the output numbers the page shows). The code is for exactly the run shown: its resolved plan
(the drawn seed, the layers and heads fitted to the model, the apply mode, the model's own mask) and the input it
encoded.

Nothing is built until asked: the snippet when the tab (or, on Compare, a side's expander) is open, the file when
its download is clicked (a deferred download). Both are kept in the shared figure cache
(:mod:`dynmask_app.server.figure_cache`) under the run's key, so a class on one link writes each once. The code is
the same in every language: only the words around it are translated.
"""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from dynmask_app import messages
from dynmask_app.i18n import error_text, t
from dynmask_app.server import figure_cache, runner, uploads
from dynmask_app.server.result_cache import ByteLRU
from dynmask_app.state import AppState
from dynmask_app.views import downloads
from dynmask_core import encode
from dynmask_core.mask_code import FILE_NAME, RunInfo, generate, snippet
from dynmask_core.masks import MaskPlan
from dynmask_core.modalities import modality
from dynmask_core.models import PRESETS
from dynmask_core.samples import get_sample

log = logging.getLogger(__name__)

#: Characters of a text input quoted in the tab's line (the whole text is in the file).
QUOTED_CHARS = 60
#: What a cached entry holds: ``("ok", code)`` or ``("error", the one-line reason)``.
_OK, _ERROR = "ok", "error"


def run_info(model_id: str, source: Any) -> RunInfo:
    """What the generated code needs about the run besides its plan: the model (from the model cache) and the input
    it encoded (``source``: what :func:`dynmask_app.server.uploads.source_of` gave in the script run)."""
    loaded = runner.load_model(model_id)
    return RunInfo.of(loaded, encode(loaded, source))


def _written(cache: ByteLRU, rid: str, what: str, build: Any) -> tuple[str, str]:
    """``(status, text)`` of ``what`` (``snippet`` or ``file``) of the run ``rid``, built once for the server.

    A plan that cannot be written as code gives ``("error", its reason)``: kept too (the same plan fails the same
    way), so the page says why in one line and never shows a traceback.
    """
    def built() -> tuple[str, str]:
        try:
            return _OK, build()
        except ValueError as err:
            return _ERROR, str(err)
        except Exception as err:  # noqa: BLE001 - one line for the page, the traceback for the log
            log.exception("mask code for %s failed", rid[:80])
            return _ERROR, f"{type(err).__name__}: {str(err)[:300]}"

    return cache.get_or_compute((rid, f"code.{what}", (), ""), built)


def _input_words(state: AppState) -> str:
    """The run's input, in words: the text quoted, the bundled sample named, or the upload and what stands for it."""
    if state.input_kind == "text":
        text = " ".join(state.input_ref.split())
        if len(text) > QUOTED_CHARS:
            text = text[:QUOTED_CHARS - 1].rstrip() + "…"
        return t("the text “{text}”", text=messages.plain(text))
    noun = t(modality(state.input_kind).noun)
    if state.is_upload:
        return t("your uploaded {noun}", noun=noun)
    try:
        title = t(get_sample(state.input_ref, state.input_kind).title)
    except ValueError:
        title = state.input_ref
    return t("the bundled {noun} “{title}”", noun=noun, title=messages.plain(title))


def _where(plan: MaskPlan) -> str:
    """``every layer and head`` or the subsets the run's plan covers."""
    layers = ", ".join(map(str, plan.layers)) if plan.layers is not None else None
    heads = ", ".join(map(str, plan.heads)) if plan.heads is not None else None
    if layers is None and heads is None:
        return t("every layer and head")
    if heads is None:
        return t("layers {layers}, every head", layers=f"`{layers}`")
    if layers is None:
        return t("every layer, heads {heads}", heads=f"`{heads}`")
    return t("layers {layers}, heads {heads}", layers=f"`{layers}`", heads=f"`{heads}`")


def code_view(state: AppState, result: Any, side: str = "main") -> None:
    """The snippet of ``result`` (the run shown, ``side`` of ``state``'s page), what the file does, and its download.

    Call it only where the code is to be seen (an open tab or expander): it writes the snippet (once per run for
    the server) and encodes the input again (cheap next to the run).
    """
    plan = result.plan  # the run's resolved plan: the seed drawn, layers and heads fitted to the model
    rid = figure_cache.result_id(state, result)
    cache = figure_cache.shared()  # the deferred download runs outside this script's thread: captured here
    try:
        source = uploads.source_of(state)  # an upload is in this session only: read here, not in the download
    except ValueError as err:
        st.info(t("No code for this run: {error}", error=error_text(err)))
        return
    model_id = state.model
    status, text = _written(cache, rid, "snippet", lambda: snippet(plan, run_info(model_id, source)))
    if status == _ERROR:
        st.info(t("No code for this run: {error}", error=messages.plain(text)))
        return
    mode = plan.apply.mode + (f", beta={plan.apply.beta:g}" if plan.apply.mode == "bias" else "")
    st.caption(t("**{file}** is one self-contained Python file (torch, transformers and numpy) with this run's mask: "
                 "`apply(model)` puts it inside every attention layer of a loaded transformers model (seed {seed}, "
                 "apply mode `{mode}`, {where}). Run as a script, it loads `{model}`, runs the same input ({input}) "
                 "and prints the output numbers shown above.",
                 file=FILE_NAME, seed=int(plan.seed or 0), mode=mode, where=_where(plan), model=result.model_id,
                 input=_input_words(state)))
    if state.is_upload:
        st.caption(t("An uploaded file does not ride in the code: the file carries the exact tensors your {noun} "
                     "became (what `model_input()` returns). For another input, call `apply(model)` and give the "
                     "model your own processor's tensors.", noun=t(modality(state.input_kind).noun)))
    if str(result.model_id) in PRESETS:  # its loading lines use dynmask's loader
        st.caption(t("`{model}` is bundled with dynmask, not on the Hugging Face Hub: run the file where dynmask can "
                     "be imported (e.g. `PYTHONPATH=/path/to/dynmask python {file}`), or load your own model and call "
                     "`apply(model)`.", model=result.model_id, file=FILE_NAME))
    st.code(text, language="python")

    def file_bytes() -> bytes:
        done, code = _written(cache, rid, "file", lambda: generate(plan, run_info(model_id, source)))
        return (code if done == _OK else f"# {FILE_NAME} could not be written for this run: {code}\n").encode()

    downloads.download_button(t("Download {file} (the whole file: runs as it is)", file=FILE_NAME), file_bytes,
                              FILE_NAME, "text/x-python", f"dl_code_{side}",
                              t("One self-contained Python file: `apply(model)`, `mask_from_scores(scores, layer)` "
                                "and, for index strategies, `mask_mod` for FlexAttention."))


def code_expander(state: AppState, result: Any, side: str, name: str) -> None:
    """On Compare: one side's code in an expander under its heatmaps, written only once the expander is opened."""
    box = st.expander(t("Code of {name}", name=name), key=f"cmp.code_{side}", on_change="rerun")
    with box:
        if box.open:
            code_view(state, result, side)
