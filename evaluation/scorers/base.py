"""What a scorer family is: one in-memory function plus the metric names it returns, and,
where its metric is not a plain share (f1, map@20), its decomposition over examples: per
example a row of additive statistics (`per_example`) and the metrics as a function of their
sums (`combine`), so `evaluation.sampling` resamples examples as counts @ rows. `combine` of
the plain column sums equals `score` (tests/evaluation/test_sampling.py)."""

from __future__ import annotations

from collections.abc import Callable, Sized
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class ScoreFn(Protocol):
    """`score(predictions, golds, *, language)` -> metric name -> value on the 0-100 scale."""

    def __call__(self, predictions: Any, golds: Any, *, language: str) -> dict[str, float]: ...


class PerExampleFn(Protocol):
    """`per_example(predictions, golds, *, language)` -> (n_examples, q) additive statistics."""

    def __call__(self, predictions: Any, golds: Any, *, language: str) -> np.ndarray: ...


CombineFn = Callable[[np.ndarray], dict[str, np.ndarray]]  # (..., q) sums -> metric -> values


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0."""
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def combine_means(*metrics: str) -> CombineFn:
    """Metrics that are 100 × a mean over examples: rows (value_1, ..., value_m, 1)."""

    def combine(sums: np.ndarray) -> dict[str, np.ndarray]:
        return {m: 100.0 * ratio(sums[..., i], sums[..., -1]) for i, m in enumerate(metrics)}

    return combine


def combine_prf(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Set precision / recall / F1 from rows (correct, predicted, gold), all × 100."""
    correct, predicted, gold = sums[..., 0], sums[..., 1], sums[..., 2]
    p, r = ratio(correct, predicted), ratio(correct, gold)
    f1 = ratio(2 * p * r, p + r)
    return {"f1": 100 * f1, "precision": 100 * p, "recall": 100 * r}


@dataclass(frozen=True)
class Scorer:
    """One metric family, addressed by the name that `TaskSpec.scorer` uses."""

    name: str
    score: ScoreFn
    metrics: tuple[str, ...]
    description: str = ""
    per_example: PerExampleFn | None = None
    combine: CombineFn | None = None


def check_parallel(predictions: Sized, golds: Sized, what: str) -> None:
    """Raise ValueError unless both sides hold the same, non-zero number of items."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predicted {what} but {len(golds)} gold {what}")
    if not golds:
        raise ValueError(f"no {what} to score")
