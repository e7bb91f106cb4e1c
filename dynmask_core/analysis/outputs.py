"""Typed model outputs, one class per task: each owns how it is summarised, compared and put in words (drawing
them is :mod:`dynmask_core.viz.outputs`: the numbers know nothing of the pictures).

A :class:`~dynmask_core.models.LoadedModel` returns one of these for a forward pass; :func:`dynmask_core.engine.run`
keeps the baseline's and the masked run's, and ``baseline.compare(masked)`` gives the change metrics. Views ask the
object (``cards``, ``line``, ``describe``) instead of sniffing dictionary keys.

* :class:`Classification` - class probabilities with their labels (+ the pooled embedding, for the sentiment model).
* :class:`NextToken` - a causal LM's next-token distribution.
* :class:`Embedding` - a sentence embedding (mean-pooled encoder output).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from dynmask_core.messages import Message

_EPS = 1e-12


def kl_divergence(p: Tensor, q: Tensor) -> float:
    """KL(p || q) in nats for two probability vectors (p = baseline, q = masked)."""
    p = p.detach().double().clamp(min=0)
    q = q.detach().double().clamp(min=_EPS)
    return float((p * (torch.log(p.clamp(min=_EPS)) - torch.log(q))).sum().clamp(min=0))


def cosine(a: Tensor, b: Tensor) -> float:
    """Cosine similarity of two vectors."""
    return float(torch.nn.functional.cosine_similarity(a.detach().double().flatten(), b.detach().double().flatten(),
                                                       dim=0))


def kl_words(kl: float) -> Message:
    """``no change`` / ``a small change`` / ``a clear change`` / ``a large change``."""
    return Message("no change") if kl < 1e-6 else Message("a small change") if kl < 0.05 else \
        Message("a clear change") if kl < 0.5 else Message("a large change")


def sentence(parts: list[Message]) -> Message:
    """``a; b; c.`` as one :class:`~dynmask_core.messages.Message` (a page translates the joints too)."""
    joined = parts[0]
    for part in parts[1:]:
        joined = Message("{a}; {b}", a=joined, b=part)
    return Message("{sentence}.", sentence=joined)


@dataclass(frozen=True)
class Card:
    """One headline number for the page (label, value, optional delta text; ``subject``: the end of ``label`` that
    comes from the model, a class label or a token, which a page must show literally)."""

    label: str
    value: str
    delta: str | None = None
    subject: str | None = None


class TaskOutput(ABC):
    """What one forward pass produced, for one task. Subclasses fill in the methods below."""

    task: ClassVar[str] = ""
    kl_key: ClassVar[str | None] = None  # the metric that says how far the prediction moved

    @abstractmethod
    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (``probs``/``top1``, ``top5``, ``embedding_dim``)."""

    @abstractmethod
    def compare(self, masked: TaskOutput) -> dict[str, Any]:
        """Change metrics from this (the baseline) to ``masked``."""

    @abstractmethod
    def cards(self, masked: TaskOutput, metrics: dict[str, Any]) -> list[Card]:
        """Headline numbers: the prediction before and after and how far it moved."""

    @abstractmethod
    def headline(self) -> Message:
        """The prediction in a few words: ``prediction positive (97.0%)``, ``next token ' Paris' (77.1%)``."""

    def line(self, metrics: dict[str, Any]) -> Message:
        """The prediction and how far it moved from the baseline (the Compare page's line for each side)."""
        if self.kl_key and self.kl_key in metrics:
            return Message("{headline}, KL from baseline {kl:.4f}", headline=self.headline(), kl=metrics[self.kl_key])
        if "cosine" in metrics:
            return Message("{headline}, cosine to the baseline {cosine:.4f}", headline=self.headline(),
                           cosine=metrics["cosine"])
        return self.headline()

    def describe(self, metrics: dict[str, Any]) -> Message | str:
        """One sentence in plain words, e.g. "The top prediction stayed the same; KL = 0.012 nats (a small change)"."""
        parts = []
        if "top1_changed" in metrics:
            parts.append(Message("The top prediction changed") if metrics["top1_changed"] else
                         Message("The top prediction stayed the same"))
        kl = metrics.get(self.kl_key) if self.kl_key else None
        if kl is not None:
            parts.append(Message("KL = {kl:.4f} nats ({words})", kl=kl, words=kl_words(kl)))  # the KL card's digits
        if "cosine" in metrics:
            parts.append(Message("sentence embeddings have cosine similarity {cosine:.4f}", cosine=metrics["cosine"]))
        return sentence(parts) if parts else ""


@dataclass(frozen=True)
class Classification(TaskOutput):
    """Class probabilities ``(C,)`` with their labels; the sentiment model adds its pooled ``embedding``."""

    probs: Tensor
    labels: tuple[str, ...] = ()
    embedding: Tensor | None = None
    task: ClassVar[str] = "classification"
    kl_key: ClassVar[str] = "kl"

    @property
    def names(self) -> list[str]:
        """Label of each class (its index when the model names none)."""
        n = int(self.probs.numel())
        return list(self.labels) if len(self.labels) == n else [str(i) for i in range(n)]

    @property
    def top1(self) -> str:
        """The most probable class."""
        return self.names[int(self.probs.argmax())]

    def prob(self, label: str) -> float:
        """Probability of one class."""
        return float(self.probs[self.names.index(label)])

    def top(self, n: int = 5) -> list[dict[str, Any]]:
        """The ``n`` most probable classes: ``[{"label", "prob"}]``."""
        values, ids = self.probs.detach().topk(min(n, int(self.probs.numel())))
        return [{"label": self.names[int(i)], "prob": float(v)} for v, i in zip(values, ids)]

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"probs": dict(zip(self.names, self.probs.detach().tolist())), "top1": self.top1,
                               "top5": self.top(5)}
        if self.embedding is not None:
            out["embedding_dim"] = int(self.embedding.numel())
        return out

    def compare(self, masked: TaskOutput) -> dict[str, Any]:
        assert isinstance(masked, Classification)
        metrics: dict[str, Any] = {
            "kl": kl_divergence(self.probs, masked.probs),
            "prob_delta": {n: float(d) for n, d in zip(self.names, (masked.probs - self.probs).detach().tolist())},
            "top1_changed": bool(int(self.probs.argmax()) != int(masked.probs.argmax())),
        }
        if self.embedding is not None and masked.embedding is not None:
            metrics["cosine"] = cosine(self.embedding, masked.embedding)
        return metrics

    def cards(self, masked: TaskOutput, metrics: dict[str, Any]) -> list[Card]:
        assert isinstance(masked, Classification)
        top = masked.top1
        # a difference of two probabilities is in percentage points: "+96.9%" read as "grew by 96.9 per cent"
        delta = Message("{points:+.1f} percentage points vs baseline", points=metrics["prob_delta"][top] * 100)
        out = [Card(Message("With the mask: {label}", label=top), f"{masked.prob(top):.1%}", delta, subject=str(top)),
               Card(Message("Baseline: {label}", label=self.top1), f"{self.prob(self.top1):.1%}",
                    subject=str(self.top1)),
               Card(Message("KL(baseline ‖ masked)"), f"{metrics['kl']:.4f}")]
        if "cosine" in metrics:
            out.append(Card(Message("Embedding cosine"), f"{metrics['cosine']:.4f}"))
        return out

    def headline(self) -> Message:
        return Message("prediction {label} ({prob:.1%})", label=self.top1, prob=self.prob(self.top1))


@dataclass(frozen=True)
class NextToken(TaskOutput):
    """A causal LM's next-token distribution ``(V,)``; ``tokenizer`` decodes ids for display."""

    probs: Tensor
    tokenizer: Any = None
    task: ClassVar[str] = "next_token"
    kl_key: ClassVar[str] = "next_token_kl"

    def top(self, n: int = 5) -> list[dict[str, Any]]:
        """The ``n`` most likely tokens: ``[{"id", "token", "prob"}]``."""
        values, ids = self.probs.detach().topk(n)
        decode = self.tokenizer.decode if self.tokenizer is not None else None
        return [{"id": int(i), "token": decode([int(i)]) if decode else str(int(i)), "prob": float(v)}
                for v, i in zip(values, ids)]

    def summary(self) -> dict[str, Any]:
        top5 = self.top(5)
        return {"top5": top5, "top1": top5[0]["token"]}

    def compare(self, masked: TaskOutput) -> dict[str, Any]:
        assert isinstance(masked, NextToken)
        b, m = self.probs.detach(), masked.probs.detach()
        top_b, top_m = set(b.topk(5).indices.tolist()), set(m.topk(5).indices.tolist())
        return {"next_token_kl": kl_divergence(b, m), "top1_changed": bool(int(b.argmax()) != int(m.argmax())),
                "top5_overlap": len(top_b & top_m)}

    def cards(self, masked: TaskOutput, metrics: dict[str, Any]) -> list[Card]:
        assert isinstance(masked, NextToken)
        mine, theirs = self.top(1)[0], masked.top(1)[0]
        return [Card(Message("Next token with the mask: {token}", token=repr(theirs["token"])), f"{theirs['prob']:.1%}",
                     Message("changed") if metrics.get("top1_changed") else Message("same as baseline"),
                     subject=repr(theirs["token"])),
                Card(Message("Baseline next token: {token}", token=repr(mine["token"])), f"{mine['prob']:.1%}",
                     subject=repr(mine["token"])),
                Card(Message("KL(baseline ‖ masked)"), f"{metrics['next_token_kl']:.4f}"),
                Card(Message("Top-5 tokens in common"), Message("{n} of 5", n=metrics["top5_overlap"]))]

    def headline(self) -> Message:
        best = self.top(1)[0]
        return Message("next token {token} ({prob:.1%})", token=repr(best["token"]), prob=best["prob"])


@dataclass(frozen=True)
class Embedding(TaskOutput):
    """A pooled sentence embedding ``(D,)`` (plain encoders)."""

    vector: Tensor
    task: ClassVar[str] = "embedding"

    def summary(self) -> dict[str, Any]:
        return {"embedding_dim": int(self.vector.numel())}

    def compare(self, masked: TaskOutput) -> dict[str, Any]:
        assert isinstance(masked, Embedding)
        return {"cosine": cosine(self.vector, masked.vector)}

    def cards(self, masked: TaskOutput, metrics: dict[str, Any]) -> list[Card]:
        return [Card(Message("Embedding cosine (baseline vs masked)"), f"{metrics['cosine']:.4f}"),
                Card(Message("Embedding size"), str(int(self.vector.numel())))]

    def headline(self) -> Message:
        return Message("a sentence embedding of {n} numbers", n=int(self.vector.numel()))
