"""Scaling: how the STILTs effect changes with log10(model parameters).

For each (intermediate task, target task): the least-squares slope of `delta_std` (and
of `delta_mean`) over models against log10(parameters), on the headline metric. The
interval comes from the effects' bootstrap replicates (each model's seeds resampled
independently, the target task's language draw shared across models); the p-value from
permuting model labels over the per-seed effects. Pooled over target tasks ("all"): a
common slope with one intercept per target task, permutations within each target task.
A slope needs at least two model sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.analysis import bootstrap as bs
from evaluation.analysis.bootstrap import Array
from evaluation.analysis.stats import Effect

ALL = "all"


@dataclass(frozen=True)
class Scaling:
    intermediate_task: str
    target_task: str  # a target task, or "all"
    model_params: tuple[int, ...]  # distinct sizes used
    n_target_tasks: int
    slope: dict[str, float]  # "std"/"mean" → slope per decade of parameters
    ci95: dict[str, tuple[float, float]]
    p_value: dict[str, float]
    collapsed: bool  # every model had one seed: intervals are the point


@dataclass(frozen=True)
class _Stratum:
    x: Array
    effects: list[Effect]
    numerators: dict[str, tuple[float, Array]]  # stat → slope numerators (observed, permuted)


def _stratum(effects: list[Effect]) -> _Stratum:
    first = effects[0].block
    x = np.log10([float(e.block.model_params) for e in effects])
    groups = np.repeat(np.arange(len(effects)), [len(e.seeds) for e in effects])
    rng = bs.rng_for("permutation", first.intermediate_task, first.target_task)
    orders = bs.permutation_orders(rng, groups.size)
    numerators = {
        stat: bs.slope_numerators(
            x, np.concatenate([e.per_seed[stat] for e in effects]), groups, orders
        )
        for stat in ("std", "mean")
    }
    return _Stratum(x=x, effects=effects, numerators=numerators)


def _replicates(stratum: _Stratum, stat: str) -> Array:
    return np.stack(np.broadcast_arrays(*(e.replicates[stat] for e in stratum.effects)), axis=-1)


def _fit(strata: list[_Stratum], target: str) -> Scaling:
    xs = [s.x for s in strata]
    slope, ci, p = {}, {}, {}
    for stat in ("std", "mean"):
        points = [np.array([getattr(e, f"delta_{stat}") for e in s.effects]) for s in strata]
        slope[stat] = float(bs.pooled_slope(xs, points))
        replicates = bs.pooled_slope(xs, [_replicates(s, stat) for s in strata])
        ci[stat] = bs.interval(np.atleast_1d(replicates), slope[stat])
        observed = sum(s.numerators[stat][0] for s in strata)
        permuted = np.sum([s.numerators[stat][1] for s in strata], axis=0)
        p[stat] = bs.permutation_p(observed, permuted)
    sizes = sorted({e.block.model_params for s in strata for e in s.effects})
    collapsed = all(e.replicates["std"].size == 1 for s in strata for e in s.effects)
    first = strata[0].effects[0].block
    return Scaling(
        first.intermediate_task, target, tuple(sizes), len(strata), slope, ci, p, collapsed
    )


def scaling(effects: list[Effect]) -> list[Scaling]:
    """Per (intermediate task, target task) fits and the pooled fit, from headline effects."""
    by_pair: dict[tuple[str, str], list[Effect]] = {}
    for e in sorted(effects, key=lambda e: (e.block.model_params, e.block.model)):
        by_pair.setdefault((e.block.intermediate_task, e.block.target_task), []).append(e)
    strata: dict[str, list[_Stratum]] = {}
    out = []
    for (task, target), group in sorted(by_pair.items()):
        if len({e.block.model_params for e in group}) < 2:
            continue
        stratum = _stratum(group)
        strata.setdefault(task, []).append(stratum)
        out.append(_fit([stratum], target))
    out.extend(_fit(group, ALL) for _, group in sorted(strata.items()))
    return out
