"""What an attribution explains: one number per batch item, computed from the model's output with gradients.

Targets (the ``--target`` of ``attribute`` and the page's target box):

- ``predicted``: the unmasked model's prediction (its top class, or its most likely next token), so the masked and
  the unmasked attributions explain the SAME number and share one colour scale;
- a class label (classifiers, the MiniLM sentiment model), e.g. ``positive``;
- a token (causal LMs), e.g. `` Paris`` (a word that is one token, with or without its leading space);
- ``similar:<a sentence>`` (text encoders): the cosine similarity of the pooled sentence embedding to the unmasked
  model's embedding of that sentence.

Class and token targets explain a *probability* (softmax of the logits), so integrated gradients add up to the change
of a probability, a number a class can read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from dynmask_core.messages import Message, names_list, shown

PREDICTED = "predicted"
SIMILAR = "similar:"
MAX_TARGET_CHARS = 1000


@dataclass(frozen=True)
class Target:
    """A resolved target.

    Attributes:
        spec: What was asked (``predicted``, a label, a token, ``similar:...``).
        kind: ``class``, ``token`` or ``similarity``.
        index: The class or token id (None for similarity).
        label: Readable name: the class, the token as decoded, or the reference sentence.
        reference: ``(D,)`` unit embedding of the reference sentence (similarity), else None.
    """

    spec: str
    kind: str
    index: int | None
    label: str
    reference: Tensor | None = None

    def describe(self) -> Message:
        """``probability of 'positive'``, ``probability of the next token ' Paris'``, ``similarity to '...'``."""
        if self.kind == "class":
            return Message("probability of {label}", label=repr(self.label))
        if self.kind == "token":
            return Message("probability of the next token {token}", token=repr(self.label))
        return Message("cosine similarity of the sentence embedding to {sentence}", sentence=repr(shorten(self.label)))


def shorten(text: str, n: int = 60) -> str:
    """``text`` cut to ``n`` characters with an ellipsis."""
    return text if len(text) <= n else text[: n - 1] + "…"


def resolve_target(loaded: Any, spec: str, baseline_output: Any) -> Target:
    """Turns a target spec into a :class:`Target` for ``loaded``.

    Args:
        loaded: The :class:`~dynmask_core.models.LoadedModel`.
        spec: ``predicted``, a class label, a token, or ``similar:<sentence>``.
        baseline_output: The unmasked run's task output (its prediction is ``predicted``).

    Raises:
        ValueError: a target the model has no use for, with what it takes instead.
    """
    spec = (spec or PREDICTED).strip() or PREDICTED
    if len(spec) > MAX_TARGET_CHARS:
        raise ValueError(Message("the target is {n} characters long; give a label, a token or a short sentence (at "
                                 "most {most})", n=len(spec), most=MAX_TARGET_CHARS))
    if spec.lower().startswith(SIMILAR):
        return _similarity(loaded, spec)
    if loaded.task == "causal_lm":
        return _token(loaded, spec, baseline_output)
    labels = list(getattr(loaded, "labels", ()) or ())
    if not labels:
        raise ValueError(Message("{model} gives a sentence embedding, not a prediction: give the target "
                                 "similar:<a reference sentence>, e.g. {example}", model=loaded.id,
                                 example="similar:The movie was great."))
    if spec == PREDICTED:
        index = int(baseline_output.probs.argmax())
        return Target(spec, "class", index, labels[index])
    for i, name in enumerate(labels):
        if name == spec or name.lower() == spec.lower():
            return Target(spec, "class", i, name)
    if spec.isdigit() and int(spec) < len(labels):
        return Target(spec, "class", int(spec), labels[int(spec)])
    raise ValueError(Message("{target} is not a class of {model}: give predicted or one of {labels}",
                             target=shown(spec), model=loaded.id, labels=names_list(labels)))


def _token(loaded: Any, spec: str, baseline_output: Any) -> Target:
    tok = loaded.tokenizer
    if spec == PREDICTED:
        index = int(baseline_output.probs.argmax())
        return Target(spec, "token", index, tok.decode([index]))
    for text in (spec, " " + spec.lstrip()):  # "Paris" is often one token only with its leading space
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            return Target(spec, "token", int(ids[0]), tok.decode([int(ids[0])]))
    pieces = [tok.decode([i]) for i in tok(spec, add_special_tokens=False)["input_ids"]][:6]
    raise ValueError(Message("the target {target} is {n} tokens ({pieces}); the next-token target must be ONE token: "
                             "give its first piece, or predicted", target=shown(spec), n=len(pieces),
                             pieces=", ".join(repr(p) for p in pieces)))


def _similarity(loaded: Any, spec: str) -> Target:
    sentence = spec[len(SIMILAR):].strip()
    if loaded.modality != "text" or loaded.task == "causal_lm":
        raise ValueError(Message("similar:<sentence> needs a text encoder (e.g. minilm): give predicted or a token")
                         if loaded.task == "causal_lm" else
                         Message("similar:<sentence> needs a text encoder (e.g. minilm): give predicted or a class "
                                 "label"))
    if not sentence:
        raise ValueError(Message("similar: needs a sentence after it, e.g. {example}",
                                 example="similar:The movie was great."))
    from dynmask_core.modalities import TextSource, encode

    prepared = encode(loaded, TextSource(sentence))
    with torch.inference_mode():
        reference = pooled(loaded, loaded.model(**prepared.inputs), prepared.inputs)[0].float()
    return Target(spec, "similarity", None, sentence, reference.detach().clone())


def pooled(loaded: Any, out: Any, inputs: Mapping[str, Tensor]) -> Tensor:
    """``(B, D)`` unit-length mean-pooled sentence embedding (what the MiniLM head sees)."""
    from dynmask_core.models.sentiment_head import mean_pool

    hidden = out.last_hidden_state
    return torch.nn.functional.normalize(mean_pool(hidden, inputs.get("attention_mask")), dim=-1)


def scorer(loaded: Any, target: Target) -> Callable[[Mapping[str, Tensor]], Tensor]:
    """``score(inputs) -> (B,)``: the target's value for each batch item, differentiable."""

    def score(inputs: Mapping[str, Tensor]) -> Tensor:
        out = loaded.model(**inputs)
        if target.kind == "similarity":
            emb = pooled(loaded, out, inputs)
            return emb.float() @ target.reference.to(emb.device)
        if loaded.task == "causal_lm":
            logits = out.logits[:, -1]
        elif loaded.task == "classifier":
            logits = out.logits
        else:  # the MiniLM sentiment head
            logits = loaded.head(out.last_hidden_state, inputs.get("attention_mask"))
        return torch.softmax(logits.float(), dim=-1)[:, target.index]

    return score
