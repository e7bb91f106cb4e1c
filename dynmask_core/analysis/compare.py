"""How much the mask changed the output, in numbers a student can read.

All functions take the task tensors a :class:`~dynmask_core.models.LoadedModel` returns (``probs``, ``embedding``,
``next_token_probs``) for the baseline (no extra mask) and the masked run.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

_EPS = 1e-12


def kl_divergence(p: Tensor, q: Tensor) -> float:
    """KL(p || q) in nats for two probability vectors (p = baseline, q = masked)."""
    p = p.double().clamp(min=0)
    q = q.double().clamp(min=_EPS)
    return float((p * (torch.log(p.clamp(min=_EPS)) - torch.log(q))).sum().clamp(min=0))


def cosine(a: Tensor, b: Tensor) -> float:
    """Cosine similarity of two vectors."""
    return float(torch.nn.functional.cosine_similarity(a.double().flatten(), b.double().flatten(), dim=0))


def summarize(outputs: dict[str, Tensor], labels: tuple[str, ...] = (), tokenizer: Any = None,
              top: int = 5) -> dict[str, Any]:
    """JSON-ready task output: class probabilities, top next tokens, embedding size."""
    out: dict[str, Any] = {}
    if "probs" in outputs:
        probs = outputs["probs"].tolist()
        names = list(labels) if len(labels) == len(probs) else [str(i) for i in range(len(probs))]
        out["probs"] = dict(zip(names, probs))
        out["top1"] = names[int(outputs["probs"].argmax())]
    if "next_token_probs" in outputs:
        values, ids = outputs["next_token_probs"].topk(top)
        out["top5"] = [
            {"id": int(i), "token": tokenizer.decode([int(i)]) if tokenizer is not None else str(int(i)),
             "prob": float(v)}
            for v, i in zip(values, ids)
        ]
        out["top1"] = out["top5"][0]["token"]
    if "embedding" in outputs:
        out["embedding_dim"] = int(outputs["embedding"].numel())
    return out


def compare(baseline: dict[str, Tensor], masked: dict[str, Tensor], labels: tuple[str, ...] = ()) -> dict[str, Any]:
    """Metrics of the change: KL, probability deltas, top-1 change, embedding cosine.

    Returns:
        ``kl`` (nats, KL(baseline || masked)), ``top1_changed``, ``prob_delta`` (per label, masked - baseline),
        ``cosine`` (pooled embeddings), ``next_token_kl`` and ``top1_changed`` for causal LMs.
    """
    metrics: dict[str, Any] = {}
    if "probs" in baseline:
        b, m = baseline["probs"], masked["probs"]
        names = list(labels) if len(labels) == len(b) else [str(i) for i in range(len(b))]
        metrics["kl"] = kl_divergence(b, m)
        metrics["prob_delta"] = {n: float(d) for n, d in zip(names, (m - b).tolist())}
        metrics["top1_changed"] = bool(int(b.argmax()) != int(m.argmax()))
    if "embedding" in baseline:
        metrics["cosine"] = cosine(baseline["embedding"], masked["embedding"])
    if "next_token_probs" in baseline:
        b, m = baseline["next_token_probs"], masked["next_token_probs"]
        metrics["next_token_kl"] = kl_divergence(b, m)
        metrics["top1_changed"] = bool(int(b.argmax()) != int(m.argmax()))
        top_b, top_m = set(b.topk(5).indices.tolist()), set(m.topk(5).indices.tolist())
        metrics["top5_overlap"] = len(top_b & top_m)
    return metrics


def describe_change(metrics: dict[str, Any]) -> str:
    """One sentence in plain words, e.g. "The prediction stayed the same; KL = 0.012 nats (a small change)"."""
    kl = metrics.get("kl", metrics.get("next_token_kl"))
    parts = []
    if "top1_changed" in metrics:
        parts.append("The top prediction changed" if metrics["top1_changed"] else "The top prediction stayed the same")
    if kl is not None:
        size = "no change" if kl < 1e-6 else "a small change" if kl < 0.05 else "a clear change" if kl < 0.5 else "a large change"
        parts.append(f"KL = {kl:.4g} nats ({size})")
    if "cosine" in metrics:
        parts.append(f"sentence embeddings have cosine similarity {metrics['cosine']:.4f}")
    return "; ".join(parts) + "." if parts else ""
