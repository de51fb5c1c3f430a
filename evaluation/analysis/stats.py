"""Per-cell statistics over languages and seeds, and STILTs effects paired by seed.

Definitions (issue 8, `DEFINITIONS_VERSION`): for each (model, intermediate task, target
task, seed), over the task's languages: mean, std (ddof = 1), cv = std / mean, min, max,
worst language, and transfer gap = English − mean of the other languages. Over seeds,
each statistic is the mean of its per-seed values with a 95 % bootstrap interval
(seeds, then languages). `delta_mean` / `delta_std` = statistic(T) − statistic(`none`),
paired by seed, with intervals from the same resamples applied to both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.analysis import bootstrap as bs
from evaluation.analysis.blocks import Block
from evaluation.analysis.bootstrap import Array

BASELINE = "none"


@dataclass(frozen=True)
class CellStats:
    block: Block
    values: dict[str, float | None]  # bs.STATS; transfer_gap None without English
    worst_language: str
    ci95: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class Effect:
    """T − `none` for one (model, T, target task, metric), over their shared seeds."""

    block: Block
    seeds: tuple[int, ...]
    delta_mean: float
    delta_std: float
    replicates: dict[str, Array]  # "mean"/"std" → (B,) or (1,) when collapsed
    per_seed: dict[str, Array]  # "mean"/"std" → (n_shared_seeds,)
    gains: Array  # per-language seed-mean gain, (n_languages,)


def _english(block: Block) -> int | None:
    return block.languages.index("en") if "en" in block.languages else None


def language_draws(block: Block) -> Array:
    """The language resamples of a target task, shared by all its cells."""
    return bs.draw_counts(bs.rng_for("languages", block.target_task), len(block.languages))


def _point(scores: Array, english: int | None) -> dict[str, Array]:
    """Per-seed statistics, (n_seeds,) each: the formula with unit weights."""
    stats = bs.per_seed(scores, np.ones((1, scores.shape[1])), english)
    return {k: v[0] for k, v in stats.items()}


def cell_stats(block: Block, lang_draws: Array) -> CellStats:
    english = _english(block)
    point = _point(block.scores, english)
    rng = bs.rng_for("cell", block.target_task, block.metric, block.model, block.intermediate_task)
    langs, seeds = bs.resamples(rng, len(block.seeds), lang_draws)
    reps = bs.over_seeds(bs.per_seed(block.scores, langs, english), seeds)
    values: dict[str, float | None] = {k: float(v.mean()) for k, v in point.items()}
    values.setdefault("transfer_gap", None)
    worst = block.languages[int(np.argmin(block.scores.mean(axis=0)))]
    ci = {k: bs.interval(v) for k, v in reps.items()}
    return CellStats(block=block, values=values, worst_language=worst, ci95=ci)


def _shared(treated: Block, base: Block) -> tuple[tuple[int, ...], Array, Array]:
    seeds = tuple(s for s in treated.seeds if s in set(base.seeds))
    t_rows = [treated.seeds.index(s) for s in seeds]
    b_rows = [base.seeds.index(s) for s in seeds]
    return seeds, treated.scores[t_rows], base.scores[b_rows]


def effect(treated: Block, base: Block, lang_draws: Array) -> Effect | None:
    """The paired effect of `treated` over the `none` block; None without shared seeds."""
    seeds, t_scores, b_scores = _shared(treated, base)
    if not seeds or treated.languages != base.languages:
        return None
    english = _english(treated)
    pt, pb = _point(t_scores, english), _point(b_scores, english)
    per_seed = {k: pt[k] - pb[k] for k in ("mean", "std")}
    rng = bs.rng_for(
        "delta", treated.target_task, treated.metric, treated.model, treated.intermediate_task
    )
    langs, seed_draws = bs.resamples(rng, len(seeds), lang_draws)
    rt, rb = bs.per_seed(t_scores, langs, english), bs.per_seed(b_scores, langs, english)
    reps = bs.over_seeds({k: rt[k] - rb[k] for k in ("mean", "std")}, seed_draws)
    return Effect(
        block=treated,
        seeds=seeds,
        delta_mean=float(per_seed["mean"].mean()),
        delta_std=float(per_seed["std"].mean()),
        replicates=reps,
        per_seed=per_seed,
        gains=(t_scores - b_scores).mean(axis=0),
    )
