"""The `multitask` intermediate task: which of the nine tasks each batch comes from.

Two documented mixing rules over the tasks' training-set sizes n_i:

- ``proportional`` (default): examples-proportional mixing with a cap (Raffel et al.
  2020, §3.5.2): p_i ∝ min(n_i, cap), so large tasks (MNLI, QQP) cannot drown the small
  ones (CommonsenseQA, CCG). ``cap=None`` is plain examples-proportional mixing.
- ``temperature``: p_i ∝ n_i^(1/T) (T=1 is proportional, T→∞ uniform).

`task_for_batch(i)` is a pure function of (seed, i): a resumed run draws the same task
for the same batch index, with no sampler state to checkpoint.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from types import MappingProxyType
from typing import Literal

from storage.errors import UserError

PHANG_TASKS = (
    "anli",
    "mnli",
    "qqp",
    "squad",
    "squad_v2",
    "hellaswag",
    "cosmosqa",
    "commonsenseqa",
    "ccg",
)
DEFAULT_CAP = 2**14


@dataclass(frozen=True)
class MultitaskSampler:
    sizes: Mapping[str, int]  # task name -> number of training examples
    strategy: Literal["proportional", "temperature"] = "proportional"
    cap: int | None = DEFAULT_CAP
    temperature: float = 2.0
    seed: int = 0
    _cdf: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", MappingProxyType(dict(sorted(self.sizes.items()))))
        bad = {t: n for t, n in self.sizes.items() if n <= 0}
        if not self.sizes or bad:
            raise UserError(f"multitask: every task needs training examples (got {dict(bad)})")
        if self.strategy not in ("proportional", "temperature"):
            raise UserError(f"multitask: unknown strategy {self.strategy!r}")
        if self.temperature <= 0 or (self.cap is not None and self.cap <= 0):
            raise UserError("multitask: temperature and cap must be positive")
        weights = list(self.probabilities().values())
        object.__setattr__(self, "_cdf", tuple(accumulate(weights)))

    def probabilities(self) -> dict[str, float]:
        if self.strategy == "proportional":
            raw = {t: float(min(n, self.cap or n)) for t, n in self.sizes.items()}
        else:
            raw = {t: n ** (1.0 / self.temperature) for t, n in self.sizes.items()}
        total = sum(raw.values())
        return {t: w / total for t, w in raw.items()}

    def task_for_batch(self, index: int) -> str:
        if index < 0:
            raise ValueError("batch index must be >= 0")
        digest = hashlib.blake2b(f"{self.seed}:{index}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64
        pos = min(bisect.bisect_right(self._cdf, u * self._cdf[-1]), len(self._cdf) - 1)
        return list(self.sizes)[pos]

    def schedule(self, n_batches: int, start: int = 0) -> list[str]:
        return [self.task_for_batch(i) for i in range(start, start + n_batches)]
