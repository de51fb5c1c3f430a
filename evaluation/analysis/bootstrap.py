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

import zlib

import numpy as np
from numpy.typing import NDArray

N_RESAMPLES = 2000
N_PERMUTATIONS = 9999
BASE_SEED = 20200513  # arXiv 2005.13013, Phang et al.
STATS = ("mean", "std", "cv", "min", "max", "transfer_gap")

Array = NDArray[np.float64]


def rng_for(*parts: object) -> np.random.Generator:
    """A generator that depends only on `parts`, never on the order of the work."""
    digest = zlib.crc32("\x1f".join(map(str, parts)).encode())
    return np.random.default_rng([BASE_SEED, digest])


def draw_counts(rng: np.random.Generator, n: int, size: int = N_RESAMPLES) -> Array:
    """(size, n) multinomial counts: `size` resamples with replacement of `n` items."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)


def per_seed(scores: Array, counts: Array, english: int | None) -> dict[str, Array]:
    """Each statistic over languages, per resample and seed: arrays of shape (B, n_seeds).

    `scores` is (n_seeds, n_languages); `counts` is (B, n_languages) language weights;
    `english` is the column of English, or None when the task has no English.
    """
    n = counts.sum(axis=1, keepdims=True)
    mean = counts @ scores.T / n
    var = (counts @ (scores**2).T - n * mean**2) / (n - 1)
    std = np.sqrt(np.clip(var, 0.0, None))
    drawn = counts[:, None, :] > 0
    out = {
        "mean": mean,
        "std": std,
        "min": np.where(drawn, scores[None], np.inf).min(axis=2),
        "max": np.where(drawn, scores[None], -np.inf).max(axis=2),
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        out["cv"] = std / mean
        if english is not None:
            others = np.delete(counts, english, axis=1)
            rest = np.delete(scores, english, axis=1)
            out["transfer_gap"] = (
                scores[:, english][None] - others @ rest.T / others.sum(1)[:, None]
            )
    return out


def over_seeds(values: dict[str, Array], seed_counts: Array) -> dict[str, Array]:
    """Seed-mean of every per-seed statistic under seed weights (B, n_seeds) → (B,)."""
    n = seed_counts.sum(axis=1)
    return {k: (seed_counts * v).sum(axis=1) / n for k, v in values.items()}


def interval(replicates: Array) -> tuple[float, float]:
    """The 95 % percentile interval, ignoring undefined replicates (e.g. cv at mean 0)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return (float(lo), float(hi))


def resamples(rng: np.random.Generator, n_seeds: int, lang_counts: Array) -> tuple[Array, Array]:
    """(language counts, seed counts) for a block of `n_seeds` seeds; collapsed for one seed."""
    if n_seeds == 1:
        ones = np.ones((1, lang_counts.shape[1]))
        return ones, np.ones((1, 1))
    return lang_counts, draw_counts(rng, n_seeds, lang_counts.shape[0])


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


def _group_means(y: Array, groups: NDArray[np.int64], n_groups: int) -> Array:
    onehot = np.zeros((y.shape[-1], n_groups))
    onehot[np.arange(y.shape[-1]), groups] = 1.0
    return (y @ onehot) / onehot.sum(axis=0)


def permutation_orders(rng: np.random.Generator, n: int) -> NDArray[np.int64]:
    """(N_PERMUTATIONS, n) random orderings of n observations."""
    return rng.permuted(np.tile(np.arange(n), (N_PERMUTATIONS, 1)), axis=1)


def permutation_p(
    xs: list[Array],
    obs: list[Array],
    groups: list[NDArray[np.int64]],
    orders: list[NDArray[np.int64]],
) -> float:
    """Two-sided permutation p-value of the pooled slope of per-model means.

    `obs[i]` are the per-seed observations of stratum i, `groups[i]` the model (index into
    `xs[i]`) each one belongs to, `orders[i]` the permutations of its observations: model
    labels are permuted within each stratum. p = (1 + #|slope*| ≥ |slope|) / (1 + P).
    """
    strata = list(zip(xs, obs, groups, orders, strict=True))
    observed = pooled_slope(xs, [_group_means(y, g, len(x)) for x, y, g, _ in strata])
    permuted = [_group_means(y[o], g, len(x)) for x, y, g, o in strata]
    slopes = pooled_slope(xs, permuted)
    tolerance = 1e-9 * max(1.0, abs(float(observed)))
    extreme = np.abs(slopes) >= np.abs(observed) - tolerance
    return float((1 + extreme.sum()) / (1 + N_PERMUTATIONS))
