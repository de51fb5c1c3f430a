"""What a scorer family is: one in-memory function plus the metric names it returns."""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass
from typing import Any, Protocol


class ScoreFn(Protocol):
    """`score(predictions, golds, *, language)` -> metric name -> value on the 0-100 scale."""

    def __call__(self, predictions: Any, golds: Any, *, language: str) -> dict[str, float]: ...


@dataclass(frozen=True)
class Scorer:
    """One metric family, addressed by the name that `TaskSpec.scorer` uses."""

    name: str
    score: ScoreFn
    metrics: tuple[str, ...]
    description: str = ""


def check_parallel(predictions: Sized, golds: Sized, what: str) -> None:
    """Raise ValueError unless both sides hold the same, non-zero number of items."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predicted {what} but {len(golds)} gold {what}")
    if not golds:
        raise ValueError(f"no {what} to score")
