"""The MLM lab page: BERT's static masking against RoBERTa's dynamic masking, first as a picture of the masked
positions over epochs, then as an experiment (a tiny BERT trained from scratch both ways, live curves).

This page has no attention-mask recipe: its settings (text, seed, epochs, training steps) and the language and
presenter mode ride in its own link parameters. The computation is :mod:`dynmask_core.lessons.mlm`.

Opened with the default settings, the experiment shows a run trained in advance at once: ``assets/data/
mlm-lab-default.json`` (:data:`BUNDLED_RUN`), the lab's default config with seed 0, made on this repo's 2-core CPU.
When :class:`~dynmask_core.lessons.mlm.LabConfig`'s defaults change, make it again with (from the repository root)::

    python -m dynmask_core mlm-lab --out /tmp/mlm-default
    cp /tmp/mlm-default/metrics.json assets/data/mlm-lab-default.json

(``tests/app/test_mlm_queue.py`` checks that its config is the current default.) "Train both" does not train in the
session's own script thread: it asks the server's training queue (:mod:`dynmask_app.server.training`), which trains
each setting once, in the server's computation slots, for every session that asks for it; the page shows the
session's place in the queue, then the progress, polling with a fragment that reruns every :data:`POLL_S` seconds.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dynmask_app import messages, session
from dynmask_app.editor import display
from dynmask_app.editor.controls import navigation
from dynmask_app.i18n import LANGS, PRESENT_KEY, SESSION_KEY, current, t
from dynmask_app.server import figure_cache, training
from dynmask_app.views import charts
from dynmask_core.lessons import mlm

log = logging.getLogger(__name__)

NS = "mlm"
DEFAULT_TEXT = ("The cat sat on the mat because it was warm. Students learn faster when they can see what the "
                "model sees. Masking hides some words and asks the model to guess them.")
COLORS = {"mask": "#1f4e99", "random": "#c0392b", "keep": "#2e8b57"}
#: RoBERTa's Table 1 as published (strings: shown with the digits it was printed with, 84.0 and not 84).
ROBERTA = pd.DataFrame({"masking": ["reference (BERT)", "static", "dynamic"],
                        "SQuAD 2.0 F1": ["76.3", "78.3", "78.7"], "MNLI-m": ["84.3", "84.3", "84.0"],
                        "SST-2": ["92.8", "92.5", "92.9"]})
MAX_STEPS_UI = 3000
#: The run shown at once with the default settings (see the module's docstring for the command that makes it).
BUNDLED_RUN = Path(__file__).resolve().parents[2] / "assets" / "data" / "mlm-lab-default.json"
BUNDLED_ID = "mlm-lab:bundled"
#: How the bundled run was made, as its label says.
BUNDLED_COMMAND = "python -m dynmask_core mlm-lab --out /tmp/mlm-default"
#: Seconds between two looks at a training under way (a rerun of the waiting box alone, a fragment).
POLL_S = 2.0


def render() -> None:
    """The whole page."""
    st.set_page_config(page_title="dynmask: MLM lab", page_icon="🎭", layout="wide")
    _restore_link()
    display.apply_presenter()
    with st.sidebar:
        navigation()
        display.switches(NS)
    st.title(t("Static vs dynamic masking in BERT-style pre-training"))
    st.caption(t("BERT (Devlin et al. 2019) hides 15% of the tokens once, when the data is prepared, and shows the "
                 "same masked copy every epoch. RoBERTa (Liu et al. 2019) draws new masks every time a sentence is "
                 "seen. Of the hidden tokens, 80% become [MASK], 10% a random token, 10% stay as they are."))
    _picture()
    st.divider()
    _experiment()


def _restore_link() -> None:
    """Once per session: the link's language, presenter mode, seed, epochs and steps."""
    if st.session_state.get(f"{NS}.restored"):
        return
    st.session_state[f"{NS}.restored"] = True
    qp = st.query_params.to_dict()
    if qp.get("lang") in LANGS:
        st.session_state[SESSION_KEY] = qp["lang"]
    if "present" in qp:
        st.session_state[PRESENT_KEY] = qp["present"].lower() in ("1", "true", "yes", "on")
    for key, low, high in (("seed", 0, mlm.MAX_SEED), ("epochs", 1, 8), ("steps", 50, MAX_STEPS_UI)):
        try:
            value = int(qp[key])
        except (KeyError, ValueError):
            continue
        if low <= value <= high:
            st.session_state[f"{NS}.{key}"] = value
        else:
            messages.warning(f"The link's {key}={messages.plain(qp[key][:20])} is outside {low}-{high}; "
                             "using the default.")


def _write_link() -> None:
    wanted = {"page": "mlm", "lang": st.session_state.get(SESSION_KEY, "en"),
              "present": "true" if st.session_state.get(PRESENT_KEY) else "false",
              "seed": str(st.session_state.get(f"{NS}.seed", 0)),
              "epochs": str(st.session_state.get(f"{NS}.epochs", 4)),
              "steps": str(st.session_state.get(f"{NS}.steps", mlm.LabConfig().steps))}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


# ------------------------------------------------------------------------------------------------ the picture


def _picture() -> None:
    st.subheader(t("1. The picture: the same sentences, epoch after epoch"))
    text = st.text_area(t("Text"), DEFAULT_TEXT, key=f"{NS}.text", height=90, max_chars=2000)
    c1, c2 = st.columns(2)
    epochs = c1.slider(t("Epochs"), 1, 8, 4, key=f"{NS}.epochs")
    seed = c2.number_input(t("Seed"), 0, mlm.MAX_SEED, 0, key=f"{NS}.seed")
    _write_link()
    try:
        runs = {recipe: _masked(text, recipe, int(seed), int(epochs)) for recipe in mlm.RECIPES}
    except ValueError as err:
        messages.error(str(err))
        return
    st.html(_legend())  # st.html: escaped tokens are not read as markdown again
    cols = st.columns(2)
    for col, recipe in zip(cols, mlm.RECIPES):
        with col:
            st.markdown(f"**{t('static (BERT)') if recipe == 'static' else t('dynamic (RoBERTa)')}**")
            masking = runs[recipe]
            for epoch in range(epochs):
                st.html(_epoch_html(masking, epoch))
    same = all(runs["static"].draws[e].positions == runs["static"].draws[0].positions for e in range(epochs))
    changed = sum(runs["dynamic"].draws[e].positions != runs["dynamic"].draws[0].positions for e in range(epochs))
    st.caption(t("Static: the same {n} positions every epoch ({same}). Dynamic: {k} of {e} epochs hide other "
                 "positions than epoch 0. Over many epochs, dynamic masking asks the model about every token; static "
                 "asks the same questions again.", n=len(runs["static"].draws[0].positions),
                 same=t("identical") if same else t("not identical"), k=changed, e=epochs))
    _check_yourself(runs, int(epochs))


def _check_yourself(runs: dict[str, mlm.TextMasking], epochs: int) -> None:
    st.markdown(f"**{t('Check yourself')}**")
    asked = {recipe: len({p for d in runs[recipe].draws[:epochs] for p in d.positions}) for recipe in mlm.RECIPES}
    guess = st.number_input(t("Over these {e} epochs, how many different positions did DYNAMIC masking ask the model "
                              "about? (Static asked about {s}.)", e=epochs, s=asked["static"]), 0,
                            len(runs["dynamic"].tokens), None, key=f"{NS}.quiz_{epochs}_{asked['dynamic']}")
    if guess is not None:
        if int(guess) == asked["dynamic"]:
            st.success(t("Right: {n} positions, against {s} for static.", n=asked["dynamic"], s=asked["static"]))
        else:
            st.error(t("Not this time: {n}. Count the coloured positions in the dynamic column, each one once.",
                       n=asked["dynamic"]))


@st.cache_data(max_entries=64, show_spinner=False)
def _masked(text: str, recipe: str, seed: int, epochs: int) -> mlm.TextMasking:
    return mlm.mask_text(text, recipe=recipe, seed=seed, epochs=epochs)


def _legend() -> str:
    items = [(COLORS["mask"], t("became [MASK] (80%)")), (COLORS["random"], t("became a random token (10%)")),
             (COLORS["keep"], t("kept, but must be predicted (10%)"))]
    return " ".join(f'<span style="display:inline-block;background:{c};color:#fff;padding:2px 6px;border-radius:4px;'
                    f'margin:0 6px 4px 0">'
                    f"{html.escape(label)}</span>" for c, label in items)


def _epoch_html(masking: mlm.TextMasking, epoch: int) -> str:
    draw, new = masking.draws[epoch], masking.new_tokens[epoch]
    chips = []
    for i, token in enumerate(masking.tokens):
        action = draw.actions[i]
        if action is None:
            chips.append(f'<span style="padding:1px 3px">{html.escape(token)}</span>')
            continue
        shown = new[i] if action != "keep" else token
        title = f"{token} → {new[i]} ({action})"
        chips.append(f'<span title="{html.escape(title)}" style="background:{COLORS[action]};color:#fff;'
                     f'padding:1px 4px;border-radius:4px">{html.escape(shown)}</span>')
    return (f'<div style="font-family:ui-monospace,monospace;font-size:14px;line-height:1.9">'
            f'<b>{html.escape(t("epoch"))} {epoch}</b> {" ".join(chips)}</div>')


# ------------------------------------------------------------------------------------------------ the experiment


def _experiment() -> None:
    st.subheader(t("2. The experiment: train a small BERT both ways"))
    st.caption(t("A tiny BERT (2 layers, hidden size 128) learns from scratch on Python's own help texts "
                 "(pydoc_data.topics, available offline), twice: same seed, same starting weights, same batches, "
                 "same budget; only when the masks are drawn differs. Held-out loss and accuracy are measured on "
                 "the same fixed masking of held-out text for both."))
    config = mlm.LabConfig()
    steps = st.slider(t("Training steps per recipe"), 50, MAX_STEPS_UI, config.steps, 50, key=f"{NS}.steps",
                      help=t("The default takes about 3 minutes for both on a 2-core CPU (180 s measured, the server "
                             "otherwise idle; longer while other computations share it); a GPU is used when there "
                             "is one."))
    config = replace(config, steps=int(steps), seed=int(st.session_state.get(f"{NS}.seed", 0)))
    c1, c2 = st.columns(2)
    start = c1.button(t("Train both"), type="primary", key=f"{NS}.train",
                      help=t("Asks the server to train both; trainings take turns with every page's computations, "
                             "and the same settings are trained once for every session that asks."))
    upload = c2.file_uploader(t("...or load a saved run (metrics.json)"), type=["json"], key=f"{NS}.load",
                              max_upload_size=mlm.MAX_RUN_BYTES // 2**20)  # what parse_run takes: 2 MB
    if upload is not None and st.session_state.get(f"{NS}.loaded") != upload.file_id:
        try:  # parse_run checks the size, the JSON and every field; each refusal is one ValueError line
            st.session_state[f"{NS}.result"] = mlm.parse_run(upload.getvalue(), upload.name)
            st.session_state[f"{NS}.result_id"] = None  # a file's numbers: drawn for this session alone
            st.session_state[f"{NS}.loaded"] = upload.file_id
        except ValueError as err:
            messages.error(str(err))
    if start:
        _request(config)
    _training()
    failure = st.session_state.pop(f"{NS}.failure", None)
    if failure:
        messages.error(failure)
    result = st.session_state.get(f"{NS}.result")
    bundled = bundled_run() if result is None and config == mlm.LabConfig() else None
    if result is not None:
        _show(result, st.session_state.get(f"{NS}.result_id"))
    elif bundled is not None:
        _show(bundled, BUNDLED_ID, bundled=True)
    elif st.session_state.get(f"{NS}.job") is None:
        st.caption(t("No run with these settings yet: press Train both. (With the default settings, {steps} steps "
                     "and seed 0, the page shows a run trained in advance.)", steps=mlm.LabConfig().steps))


@st.cache_resource(show_spinner=False)
def bundled_run() -> mlm.LabResult | None:
    """The bundled run (:data:`BUNDLED_RUN`), read once per server and shared read-only; None when it is missing or
    unreadable (logged: the page then simply has no run to show until one is trained)."""
    try:
        return mlm.load_run(BUNDLED_RUN)
    except ValueError:
        log.exception("the bundled MLM lab run cannot be read")
        return None


# ------------------------------------------------------------------------------------------------ the queue


def _request(config: mlm.LabConfig) -> None:
    """Asks the server's training queue for ``config`` (this session waits for it; a wait for other settings is
    withdrawn)."""
    queue, me = training.queue(), training.session_id()
    before = st.session_state.get(f"{NS}.job")
    try:
        job = queue.request(config, me)
    except ValueError as err:
        messages.error(str(err))
        return
    if before is not None and before != job:
        queue.cancel(before, me)
    st.session_state[f"{NS}.job"] = job


def _training() -> None:
    """This session's training: taken over when it has ended, else its place and progress, polled."""
    st.session_state.pop(f"{NS}.redraw", None)  # this run draws the whole page already
    job = st.session_state.get(f"{NS}.job")
    if job is None:
        return
    status = training.queue().status(job)
    if status is None or status.state not in training.ACTIVE:
        _ended(status)
        return
    st.fragment(_waiting, run_every=POLL_S)()


def _waiting() -> None:
    """The waiting box (a fragment rerun every :data:`POLL_S` s): place in the queue or progress, and Cancel. When
    the training ends it reruns the whole page once, which draws the result and stops the polling."""
    job = st.session_state.get(f"{NS}.job")
    status = training.queue().status(job) if job is not None else None
    if status is None or status.state not in training.ACTIVE:
        redraw = st.session_state.pop(f"{NS}.redraw", False)  # set by Cancel
        if job is not None:
            _ended(status)
            redraw = True
        if redraw and session.in_fragment_run():
            st.rerun(scope="app")
        return
    if status.state == training.QUEUED:
        st.progress(0.0, text=t("Queued: place {n} of {m}", n=status.place, m=status.of))
        st.caption(t("Trainings take turns with the computations of every page in the server's computation slots; "
                     "this box follows yours by itself."))
    else:
        st.progress(status.fraction, text=status.text or t("starting..."))
        if status.live:
            fig = figure_cache.shared().get_or_compute(
                (status.key, "mlm-live", (status.live_version, current())), lambda: _curves(status.live))
            charts.plotly(fig, "mlm-live", f"{NS}.live_{status.live_version}")
    if status.waiters > 1:
        st.caption(t("{n} sessions wait for this same training: it is computed once for all of them.",
                     n=status.waiters))
    st.button(t("Cancel"), key=f"{NS}.cancel", on_click=_cancel, args=(job,),
              help=t("Stops waiting; the training itself stops only when no other session waits for it."))


def _cancel(job: int) -> None:
    """Cancel's callback: this session stops waiting (the queue cancels the job if nobody else waits for it)."""
    training.queue().cancel(job, training.session_id())
    st.session_state.pop(f"{NS}.job", None)
    st.session_state[f"{NS}.redraw"] = True


def _ended(status: training.Status | None) -> None:
    """Takes over the outcome of this session's training: its result, or its error to show once."""
    st.session_state.pop(f"{NS}.job", None)
    if status is None:
        st.session_state[f"{NS}.failure"] = t("The server no longer knows this training; press Train both again.")
    elif status.state == training.DONE:
        st.session_state[f"{NS}.result"] = status.result
        st.session_state[f"{NS}.result_id"] = status.key
    elif status.state == training.FAILED:
        st.session_state[f"{NS}.failure"] = (t("Something went wrong while training: {error}", error=status.error)
                                             if status.unexpected else status.error)
    else:
        st.session_state[f"{NS}.failure"] = t("This training was cancelled; press Train both to start it again.")


def _curves(runs: dict[str, tuple[list, list]]) -> go.Figure:
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=(t("training loss (smoothed)"), t("held-out loss"),
                                                        t("masked-token accuracy, held out")))
    colors = {"static": "#e07b00", "dynamic": "#1f4e99"}
    for recipe, (steps, evals) in runs.items():
        xs = [s["step"] for s in steps]
        ys = pd.Series([s["train_loss"] for s in steps]).rolling(25, min_periods=1).mean().tolist()
        fig.add_trace(go.Scatter(x=xs, y=ys, name=recipe, line={"color": colors[recipe]}, legendgroup=recipe),
                      row=1, col=1)
        ex = [e["step"] for e in evals]
        fig.add_trace(go.Scatter(x=ex, y=[e["heldout_loss"] for e in evals], name=recipe, showlegend=False,
                                 mode="lines+markers", line={"color": colors[recipe]}, legendgroup=recipe),
                      row=1, col=2)
        fig.add_trace(go.Scatter(x=ex, y=[e["masked_accuracy"] for e in evals], name=recipe, showlegend=False,
                                 mode="lines+markers", line={"color": colors[recipe]}, legendgroup=recipe),
                      row=1, col=3)
    fig.update_yaxes(tickformat=".0%", row=1, col=3)
    fig.update_xaxes(title_text=t("step"))
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 60, "b": 10}, font={"size": 14},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def _show(result: mlm.LabResult, result_id: str | None = None, bundled: bool = False) -> None:
    """The run's curves, table and the paper's; ``result_id`` names a shared run (its figure is built once for
    every session), ``bundled`` labels it as the run that comes with the app."""
    runs = {"static": (result.static.steps, result.static.eval), "dynamic": (result.dynamic.steps, result.dynamic.eval)}
    if result_id is None:
        fig = _curves(runs)
    else:
        fig = figure_cache.shared().get_or_compute((result_id, "mlm-curves", (current(),)), lambda: _curves(runs))
    charts.plotly(fig, "mlm-curves", f"{NS}.curves")
    table = pd.DataFrame([{t("recipe"): r.recipe, t("final training loss"): round(r.final["train_loss"], 3),
                           t("held-out loss"): round(r.final["heldout_loss"], 3),
                           t("masked-token accuracy"): f"{r.final['masked_accuracy']:.1%}",
                           t("seconds"): round(r.seconds, 1)} for r in (result.static, result.dynamic)])
    # One above the other, each as wide as its columns: side by side, half the page cut "This run" at 1400 px.
    if bundled:
        config = result.config
        st.markdown(t("**The bundled run**, trained in advance so that this page shows it at once: the default "
                      "config ({steps} steps per recipe, batch size {batch}, {layers} layers, hidden size {hidden}), "
                      "seed {seed}, {s:.0f} s measured on this repo's 2-core CPU. Made with `{command}`; press Train "
                      "both to train it again on this server.", steps=config.steps, batch=config.batch_size,
                      layers=config.layers, hidden=config.hidden_size, seed=config.seed, s=result.seconds,
                      command=BUNDLED_COMMAND))
    else:
        st.markdown(t("**This run** ({steps} steps, seed {seed}, {device}, {s:.0f} s in all)",
                      steps=result.config.steps, seed=result.config.seed, device=messages.plain(result.device),
                      s=result.seconds))  # a loaded metrics.json says where it ran: shown literally
    st.dataframe(table, hide_index=True, width="content")
    st.markdown(t("**RoBERTa, Table 1** (BERT-base, median of 5 runs)"))
    st.dataframe(ROBERTA, hide_index=True, width="content",
                 column_config={c: st.column_config.TextColumn(alignment="right") for c in ROBERTA.columns[1:]})
    st.markdown(t("What this small run shows: with one fixed mask per sentence and many passes over a small corpus, "
                  "the static model learns its masked copies (its training loss falls below its held-out loss) "
                  "while the dynamic one keeps seeing new questions. What it does not show: RoBERTa's result at "
                  "scale, where BERT's static data was already duplicated 10 times with different masks and the two "
                  "end up within a point of each other. A different seed can change the small numbers."))
    st.download_button(t("Save this run (metrics.json)"), data=json.dumps(result.to_dict(), indent=1),
                       file_name=f"mlm-lab-{result.config.steps}steps-seed{result.config.seed}.json",
                       mime="application/json", key=f"{NS}.save", on_click="ignore")
