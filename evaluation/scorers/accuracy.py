"""Accuracy: XNLI, PAWS-X, XCOPA and the English classification and multiple-choice tasks;
token accuracy for CCG supertagging.

In-memory forms:

- `score(predictions, golds, *, language)`: two equally long sequences of labels, one per
  example, compared with ``==``. Pass label strings (``spec.labels[i]``) or label ids, the
  same kind on both sides. Submission files give stripped line strings (XNLI, PAWS-X) or
  the JSONL ``label`` values (XCOPA), as the official ``evaluate.py`` reads them.
- `score_tokens(predictions, golds, *, language)`: two equally long sequences of
  sentences, each a sequence of tags (strings or ids); sentence lengths must match.

Both return ``{"accuracy": value}`` on the 0-100 scale. `language` is unused.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from evaluation.scorers.base import Scorer, check_parallel


def score(
    predictions: Sequence[Hashable], golds: Sequence[Hashable], *, language: str
) -> dict[str, float]:
    del language
    check_parallel(predictions, golds, "labels")
    correct = sum(int(p == g) for p, g in zip(predictions, golds, strict=True))
    # Same operation order as the official script: (correct / n) * 100.
    return {"accuracy": float(correct) / len(predictions) * 100}


def score_tokens(
    predictions: Sequence[Sequence[Hashable]],
    golds: Sequence[Sequence[Hashable]],
    *,
    language: str,
) -> dict[str, float]:
    del language
    check_parallel(predictions, golds, "sentences")
    correct = total = 0
    for i, (pred, gold) in enumerate(zip(predictions, golds, strict=True)):
        if len(pred) != len(gold):
            raise ValueError(f"sentence {i}: {len(pred)} predicted tags, {len(gold)} gold tags")
        correct += sum(int(p == g) for p, g in zip(pred, gold, strict=True))
        total += len(gold)
    if total == 0:
        raise ValueError("no tokens to score")
    return {"accuracy": float(correct) / total * 100}


SCORER = Scorer("accuracy", score, ("accuracy",), "share of exactly matching labels")
TOKEN_SCORER = Scorer(
    "token_accuracy", score_tokens, ("accuracy",), "share of exactly matching tags"
)
