"""Test-set sampling noise of one language's score: a bootstrap over its examples.

A score that is not a plain share of correct examples (F1, map@20, the head's mean
negative log-likelihood) has no closed-form sampling variance. Its scorer decomposes it
into per-example additive statistics (`evaluation.scorers.base`: `per_example` rows and
`combine`), so `N_RESAMPLES` resamples of the examples are one matrix product, counts @
rows, and the sampling SE is the standard deviation (ddof = 1) of the combined values
over the resamples. Draws depend only on (task, language, metric family), never on the
order of the work. It runs at score time, on the predictions as they are written to the
prediction files, so the report reads the SE as a store row (``<metric>_se``) and does no
resampling itself.
"""

from __future__ import annotations

import numpy as np

from evaluation.analysis.bootstrap import draw_counts, rng_for
from evaluation.scorers.base import CombineFn, ratio
from storage.schema import LOSS_METRIC

N_RESAMPLES = 200


def bootstrap_se(rows: np.ndarray, combine: CombineFn, *key: object) -> dict[str, float]:
    """Per metric of `combine`, the SE of its value over resamples of the examples (`rows`:
    (n_examples, q) additive statistics); 0 with one example."""
    if rows.shape[0] < 2:
        return {m: 0.0 for m in combine(rows.sum(axis=0))}
    counts = draw_counts(rng_for("examples", *key), rows.shape[0], N_RESAMPLES)
    return {m: float(v.std(ddof=1)) for m, v in combine(counts @ rows).items()}


def combine_mean_nll(sums: np.ndarray) -> dict[str, np.ndarray]:
    """The mean nll from rows (summed nll, units): Σ nll / Σ units."""
    return {LOSS_METRIC: ratio(sums[..., 0], sums[..., 1])}
