"""Masked-token accuracy: the dev score of the `mlm` intermediate task.

In-memory forms: predictions are, per corpus line, ``(hits, masked)``: how many of its masked
tokens the MLM head predicts exactly, out of how many were masked (the masks are fixed per
line: `trainers.mlm`); the head compares with the gold tokens itself, so `golds` only has to
be as long (`evaluation.predict.golds` gives one None per line). Returns
``{"accuracy": 100 * sum(hits) / sum(masked)}`` (0 without a masked token).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evaluation.scorers.base import Scorer, check_parallel


def score(
    predictions: Sequence[tuple[float, int]], golds: Sequence[Any], *, language: str
) -> dict[str, float]:
    del language
    check_parallel(predictions, golds, "lines")
    hits = sum(float(h) for h, _ in predictions)
    masked = sum(int(n) for _, n in predictions)
    return {"accuracy": 100.0 * hits / masked if masked else 0.0}


SCORER = Scorer("masked_lm", score, ("accuracy",), "masked-token accuracy of an MLM head")
