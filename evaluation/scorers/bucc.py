"""BUCC 2018 bitext mining: set precision, recall and F1 over (source id, target id) pairs.

In-memory form: `score(predictions, golds, *, language)` with two iterables of
``(source_id, target_id)`` pairs (a submission line ``de-000413461<TAB>en-000091985`` is
the pair ``("de-000413461", "en-000091985")``). Both sides are used as sets; predicted
pairs absent from the gold simply count as wrong, and the sides need not be equally long.
Returns ``{"f1", "precision", "recall"}``, all 0 when no pair is correct. `language` is
unused.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from evaluation.scorers.base import Scorer, combine_prf

Pair = tuple[str, str]


def set_prf(predicted: set[Pair], gold: set[Pair]) -> dict[str, float]:
    correct = len(gold & predicted)
    if correct == 0:
        return {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    precision = correct / len(predicted)
    recall = correct / len(gold)
    f1 = 2 * precision * recall / (precision + recall)
    return {"f1": f1 * 100, "precision": precision * 100, "recall": recall * 100}


def score(predictions: Iterable[Pair], golds: Iterable[Pair], *, language: str) -> dict[str, float]:
    del language
    return set_prf({(s, t) for s, t in predictions}, {(s, t) for s, t in golds})


def per_example(predictions: Iterable[Pair], golds: Iterable[Pair], *, language: str) -> np.ndarray:
    """Per source sentence of either side (correct, predicted, gold) pairs."""
    del language
    predicted, gold = {(s, t) for s, t in predictions}, {(s, t) for s, t in golds}
    sources = sorted({s for s, _ in predicted | gold})
    index = {s: i for i, s in enumerate(sources)}
    rows = np.zeros((len(sources), 3))
    for pairs, column in ((predicted & gold, 0), (predicted, 1), (gold, 2)):
        for s, _ in pairs:
            rows[index[s], column] += 1
    return rows


SCORER = Scorer(
    "bucc",
    score,
    ("f1", "precision", "recall"),
    "set P/R/F1 over id pairs",
    per_example,
    combine_prf,
)
