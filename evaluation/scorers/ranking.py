"""Retrieval metrics over ranked predictions: Tatoeba top-1 accuracy, Mewsli-X MRR@20
(reported as ``map@20``, as the official code names it) and LAReQA mAP@20.

In-memory forms (`language` is unused by all three):

- `tatoeba(predictions, golds, *, language)`: for each source sentence the index of the
  retrieved English sentence, and the gold index (its own position). Items are compared as
  ``str(x).strip()``, so ints and submission lines mix. Returns ``{"accuracy"}``.
- `mewslix(predictions, golds, *, language)`: ``predictions`` maps example id -> ranked
  entity ids (only the first 20 count); ``golds`` maps example id -> the gold entity id,
  or a singleton list holding it (the label-file form). Reciprocal rank of the gold in the
  top 20, 0 when absent or unpredicted, averaged over the gold ids. Returns ``{"map@20"}``.
- `lareqa(predictions, golds, *, language)`: ``predictions`` maps question id -> ranked
  candidate ids; ``golds`` maps question id -> the set of relevant candidate ids (the
  question's answer sentence in every pool language). Average precision at 20 with divisor
  min(#relevant, 20), a candidate repeated in the ranking counted once, averaged over the
  gold questions. Returns ``{"map@20"}``.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence

import numpy as np

from evaluation.scorers.accuracy import score as accuracy_score
from evaluation.scorers.base import Scorer, combine_means

TOP_K = 20


def tatoeba(
    predictions: Sequence[Hashable], golds: Sequence[Hashable], *, language: str
) -> dict[str, float]:
    pred = [str(p).strip() for p in predictions]
    gold = [str(g).strip() for g in golds]
    return accuracy_score(pred, gold, language=language)


def reciprocal_rank(gold: str, ranked: Sequence[str], k: int = TOP_K) -> float:
    for rank, candidate in enumerate(ranked[:k], start=1):
        if candidate == gold:
            return 1.0 / rank
    return 0.0


def _single_gold(gold: str | Sequence[str]) -> str:
    if isinstance(gold, str):
        return gold.strip()
    if not gold:
        raise ValueError("a Mewsli-X gold label is an empty list")
    return gold[0].strip()


def mewslix(
    predictions: Mapping[str, Sequence[str]],
    golds: Mapping[str, str | Sequence[str]],
    *,
    language: str,
) -> dict[str, float]:
    del language
    ranks = [reciprocal_rank(_single_gold(g), predictions.get(i, [])) for i, g in golds.items()]
    mrr = sum(ranks) / len(ranks) if ranks else 0.0
    return {"map@20": mrr * 100}


def average_precision(relevant: Collection[str], ranked: Sequence[str], k: int = TOP_K) -> float:
    """AP@k: precision at each new relevant hit in the top k, over min(#relevant, k)."""
    if not relevant:
        raise ValueError("a LAReQA question has no relevant candidate")
    seen: set[str] = set()
    hits = 0
    total = 0.0
    for i, candidate in enumerate(ranked[:k]):
        if candidate in relevant and candidate not in seen:
            hits += 1
            total += hits / (i + 1.0)
        seen.add(candidate)
    return total / min(len(relevant), k)


def lareqa(
    predictions: Mapping[str, Sequence[str]],
    golds: Mapping[str, Collection[str]],
    *,
    language: str,
) -> dict[str, float]:
    del language
    if not golds:
        raise ValueError("no questions to score")
    aps = [average_precision(set(rel), predictions.get(q, [])) for q, rel in golds.items()]
    return {"map@20": float(np.mean(aps)) * 100}


def mewslix_rows(
    predictions: Mapping[str, Sequence[str]],
    golds: Mapping[str, str | Sequence[str]],
    *,
    language: str,
) -> np.ndarray:
    """Per query (reciprocal rank, 1)."""
    del language
    ranks = [reciprocal_rank(_single_gold(g), predictions.get(i, [])) for i, g in golds.items()]
    return np.column_stack([ranks, np.ones(len(ranks))])


def lareqa_rows(
    predictions: Mapping[str, Sequence[str]],
    golds: Mapping[str, Collection[str]],
    *,
    language: str,
) -> np.ndarray:
    """Per question (AP@20, 1)."""
    del language
    aps = [average_precision(set(rel), predictions.get(q, [])) for q, rel in golds.items()]
    return np.column_stack([aps, np.ones(len(aps))])


TATOEBA = Scorer("tatoeba", tatoeba, ("accuracy",), "top-1 retrieval accuracy")
MEWSLIX = Scorer(
    "mewslix",
    mewslix,
    ("map@20",),
    "MRR@20 (named map@20 officially)",
    mewslix_rows,
    combine_means("map@20"),
)
LAREQA = Scorer(
    "lareqa",
    lareqa,
    ("map@20",),
    "mAP@20 over a multilingual pool",
    lareqa_rows,
    combine_means("map@20"),
)
