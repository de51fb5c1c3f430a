"""Which task a multitask micro-batch comes from: examples-proportional, step-indexed.

The choice for micro-batch `index` is a pure function of (seed, index, sizes), so a
resumed run draws exactly the tasks an uninterrupted one would, with no sampler state to
save. Probabilities are proportional to the training-set sizes, each capped at `cap`
examples (jiant's capped examples-proportional mixing; no cap by default).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def proportions(sizes: Mapping[str, int], cap: int | None = None) -> dict[str, float]:
    capped = {name: min(n, cap) if cap else n for name, n in sizes.items()}
    total = sum(capped.values())
    if total <= 0:
        raise ValueError("multitask sampling over tasks without training examples")
    return {name: n / total for name, n in capped.items()}


def choose(seed: int, index: int, sizes: Mapping[str, int], cap: int | None = None) -> str:
    names = sorted(sizes)
    if len(names) == 1:
        return names[0]
    probs = proportions(sizes, cap)
    rng = np.random.default_rng([seed, index])
    return names[int(rng.choice(len(names), p=[probs[n] for n in names]))]
