"""Statistics over languages, their bootstrap replicates, slopes and permutation tests.

Everything is vectorised numpy. A resample is a matrix of *counts*: row b says how often
each language (or seed) is drawn in replicate b. The point estimate is the same formula
with every count equal to 1, so point and replicates can never drift apart.

Resampling follows the issue's definition: seeds, then languages. Languages and seeds are
crossed (every seed is scored on every language), so one replicate draws seeds with
replacement and, independently, languages with replacement, and applies the language draw
to every drawn seed. The language draw of a target task is shared by every cell of that
task, which keeps paired differences (T − `none`) and slopes across models paired.
With a single seed there is no seed variation to resample: intervals collapse to the
point estimate, and the summary says so.
"""

from __future__ import annotations

import math
import zlib
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

N_RESAMPLES = 2000
N_PERMUTATIONS = 9999
BASE_SEED = 20200513  # arXiv 2005.13013, Phang et al.
STATS = ("mean", "std", "cv", "min", "max", "transfer_gap")
_NORMAL = NormalDist()
_Z975 = _NORMAL.inv_cdf(0.975)

Array = NDArray[np.float64]


def rng_for(*parts: object) -> np.random.Generator:
    """A generator that depends only on `parts`, never on the order of the work."""
    digest = zlib.crc32("\x1f".join(map(str, parts)).encode())
    return np.random.default_rng([BASE_SEED, digest])


def draw_counts(rng: np.random.Generator, n: int, size: int = N_RESAMPLES) -> Array:
    """(size, n) counts: row b says how often each of `n` items is drawn in resample b."""
    picks = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
    return np.bincount(picks.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)


def _first_drawn(drawn: NDArray[np.bool_], order: NDArray[np.intp]) -> NDArray[np.intp]:
    """For each resample and seed, the first position in `order` whose language is drawn.

    `drawn` is (B, n_languages), `order` (n_seeds, n_languages). About 63 % of languages
    are drawn, so few positions are tried before a hit: (B, n_seeds) work, not × languages.
    """
    position = np.zeros((drawn.shape[0], order.shape[0]), dtype=np.intp)
    todo = np.nonzero(~drawn[:, order[:, 0]])
    k = 0
    while todo[0].size:
        k += 1
        b, s = todo
        hit = drawn[b, order[s, k]]
        position[b[hit], s[hit]] = k
        todo = (b[~hit], s[~hit])
    return position


def _extremes(scores: Array, drawn: NDArray[np.bool_]) -> tuple[Array, Array]:
    """min and max of each seed's scores over the drawn languages: (B, n_seeds) each."""
    order = np.argsort(scores, axis=1)
    seeds = np.arange(scores.shape[0])[None, :]
    descending = order[:, ::-1]
    lowest = order[seeds, _first_drawn(drawn, order)]
    highest = descending[seeds, _first_drawn(drawn, descending)]
    return scores[seeds, lowest], scores[seeds, highest]


def moments(scores: Array) -> Array:
    """(n_languages, 2 n_seeds): the scores and their squares, for `counts @ moments`."""
    return np.vstack([scores, scores**2]).T


def per_seed(
    scores: Array,
    counts: Array,
    english: int | None,
    only: tuple[str, ...] = STATS,
    sums: Array | None = None,
) -> dict[str, Array]:
    """Each statistic over languages, per resample and seed: arrays of shape (B, n_seeds).

    `scores` is (n_seeds, n_languages); `counts` is (B, n_languages) language weights;
    `english` is the column of English, or None when the task has no English. `only`
    limits the work to the statistics needed. `sums` is `counts @ moments(scores)` when
    the caller computed it in one product with other blocks (small products are slow).
    """
    n_seeds = scores.shape[0]
    n = counts.sum(axis=1, keepdims=True)
    sums = counts @ moments(scores) if sums is None else sums
    total, mean = sums[:, :n_seeds], sums[:, :n_seeds] / n
    var = (sums[:, n_seeds:] - n * mean**2) / (n - 1)
    out = {"mean": mean, "std": np.sqrt(np.clip(var, 0.0, None))}
    if "min" in only or "max" in only:
        out["min"], out["max"] = _extremes(scores, counts > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if "cv" in only:
            out["cv"] = out["std"] / mean
        if "transfer_gap" in only and english is not None:
            en_counts = counts[:, english : english + 1]
            rest = (total - en_counts * scores[:, english][None]) / (n - en_counts)
            out["transfer_gap"] = scores[:, english][None] - rest
    return out


def over_seeds(values: dict[str, Array], seed_counts: Array) -> dict[str, Array]:
    """Seed-mean of every per-seed statistic under seed weights (B, n_seeds) → (B,)."""
    n = seed_counts.sum(axis=1)
    return {k: (seed_counts * v).sum(axis=1) / n for k, v in values.items()}


def interval(replicates: Array, point: float | None) -> tuple[float, float]:
    """95 % bias-corrected percentile interval (Efron's BC), ignoring undefined replicates.

    Resampled std, min and max are biased (a resample never has a larger max than the
    data, and its std is smaller on average); BC shifts the percentiles by how far the
    replicates sit from the point estimate (ties count half). A single replicate (one
    seed) gives the collapsed interval [point, point].
    """
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    if finite.size == 1 or point is None or not math.isfinite(point):
        lo, hi = np.percentile(finite, [2.5, 97.5])
        return (float(lo), float(hi))
    n = finite.size
    below = (np.count_nonzero(finite < point) + 0.5 * np.count_nonzero(finite == point)) / n
    z0 = _NORMAL.inv_cdf(min(max(float(below), 0.5 / n), 1 - 0.5 / n))
    quantiles = [100 * _NORMAL.cdf(2 * z0 - _Z975), 100 * _NORMAL.cdf(2 * z0 + _Z975)]
    lo, hi = np.percentile(finite, quantiles)
    return (float(lo), float(hi))


def pooled_slope(xs: list[Array], ys: list[Array]) -> Array:
    """Least-squares slope of y on x with one intercept per stratum (a common slope).

    Each `ys[i]` is (..., n_points_i) over the points `xs[i]`; leading axes broadcast, so
    one call fits a point estimate, every bootstrap replicate, or every permutation.
    """
    sxy: Array | float = 0.0
    sxx = 0.0
    for x, y in zip(xs, ys, strict=True):
        dx = x - x.mean()
        sxy = sxy + ((y - y.mean(axis=-1, keepdims=True)) * dx).sum(axis=-1)
        sxx += float((dx**2).sum())
    return np.asarray(sxy, dtype=np.float64) / sxx


def permutation_orders(rng: np.random.Generator, n: int) -> NDArray[np.intp]:
    """(N_PERMUTATIONS, n) random orderings of n observations."""
    return np.argsort(rng.random((N_PERMUTATIONS, n), dtype=np.float32), axis=1)


def slope_numerators(
    x: Array, obs: Array, groups: NDArray[np.intp], orders: NDArray[np.intp]
) -> tuple[float, Array]:
    """sum_m (x_m - mean x) * mean_m(obs), observed and under each permutation of labels.

    `obs` are per-seed observations, `groups` the point (index into `x`) of each. Dividing
    by sum (x - mean x)^2 gives the slope of the per-point means; numerators of several
    strata add up to the pooled slope's.
    """
    weights = ((x - x.mean()) / np.bincount(groups, minlength=len(x)))[groups]
    return float(obs @ weights), (obs[orders] * weights).sum(axis=1)


def permutation_p(observed: float, permuted: Array) -> float:
    """Two-sided p = (1 + #{|permuted| >= |observed|}) / (1 + P)."""
    tolerance = 1e-9 * max(1.0, abs(observed))
    extreme = np.abs(permuted) >= abs(observed) - tolerance
    return float((1 + extreme.sum()) / (1 + permuted.size))
