"""Per-cell statistics over languages and seeds, and STILTs effects paired by seed.

Definitions (issue 8, `DEFINITIONS_VERSION`): for each (model, intermediate task, target
task, seed), over the task's languages: mean, std (ddof = 1), cv = std / mean, min, max,
worst language, and transfer gap = English − mean of the other languages. Over seeds,
each statistic is the mean of its per-seed values with a 95 % bootstrap interval
(seeds, then languages). `delta_mean` / `delta_std` = statistic(T) − statistic(`none`),
paired by seed, with intervals from the same resamples applied to both sides.

The dispersion estimand (issue 15, item 1, `dispersions`): per seed, the std over the
task's **non-English** languages (`disp`, primary) and over all its languages (`std`,
secondary), each raw and corrected for test-set sampling noise: the corrected variance is
the raw variance minus the mean per-language sampling variance, floored at 0. The sampling
variance is binomial for accuracy (100² p (1 − p) / n with the row's `n_examples`); for F1
and map@20 it is the square of the row's sampling SE (the ``<metric>_se`` row, a bootstrap
over the language's examples at score time, `evaluation.sampling`); a block with a row
lacking its SE (a store written before those rows) is left uncorrected, and says so.

A lower-is-better metric (the head's `nll`, issue 15 item 6) keeps every formula; only the
statistics with a direction turn: its worst language is the highest, its transfer gap is
the other languages − English (positive: English does better, as for the scores).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from evaluation.analysis import bootstrap as bs
from evaluation.analysis.blocks import Block
from evaluation.analysis.bootstrap import Array
from storage.schema import METRICS

BASELINE = "none"
ENGLISH = "en"
BINOMIAL_METRICS = ("accuracy",)  # metrics with a closed-form (binomial) sampling variance
# Per-seed dispersions: name → (over non-English languages only, noise-corrected).
DISPERSIONS = {
    "disp": (True, True),  # the primary estimand
    "disp_raw": (True, False),
    "std_corrected": (False, True),
    "std": (False, False),  # the English-inclusive raw std of the cell table
}
EFFECT_STATS = ("mean", *DISPERSIONS)


BINOMIAL = "binomial: mean over languages of 100² p (1 − p) / n_examples subtracted"
BOOTSTRAP = (
    "bootstrap: mean over languages of the squared sampling SE (<metric>_se rows: 200 "
    "resamples of the language's examples at score time) subtracted"
)
UNCORRECTED = "none: some rows lack their sampling SE (<metric>_se); not corrected"


def noise_correction(blocks: list[Block]) -> str:
    """How the dispersion of `blocks` (one target task, one metric) is corrected for test-set
    sampling noise; stated per target task in the report."""
    if blocks and blocks[0].metric in BINOMIAL_METRICS:
        return BINOMIAL
    if blocks and all(sampling_variance(b) is not None for b in blocks):
        return BOOTSTRAP
    return UNCORRECTED


def sampling_variance(block: Block) -> Array | None:
    """(n_seeds, n_languages) sampling variance in the metric's units², or None: binomial
    for accuracy, the squared SE row otherwise; None without a positive `n_examples`
    (binomial) or with a row lacking its SE."""
    if block.metric in BINOMIAL_METRICS:
        n = block.n_examples
        if n is None or not np.all(n > 0):
            return None
        p = np.clip(block.scores / 100.0, 0.0, 1.0)
        return 1e4 * p * (1.0 - p) / n
    se = block.sampling_se
    if se is None or not np.all(np.isfinite(se)):
        return None
    return se**2


def dispersions(block: Block) -> dict[str, Array]:
    """Every per-seed dispersion of `DISPERSIONS`, shape (n_seeds,) each (nan: < 2 languages)."""
    every = np.arange(len(block.languages))
    others = np.array([i for i, lang in enumerate(block.languages) if lang != ENGLISH], dtype=int)
    noise = sampling_variance(block)
    out = {}
    for name, (non_english, corrected) in DISPERSIONS.items():
        cols = others if non_english else every
        if cols.size < 2:
            out[name] = np.full(block.scores.shape[0], np.nan)
            continue
        var = block.scores[:, cols].var(axis=1, ddof=1)
        if corrected and noise is not None:
            var = np.maximum(var - noise[:, cols].mean(axis=1), 0.0)
        out[name] = np.sqrt(var)
    return out


@dataclass(frozen=True)
class CellStats:
    block: Block
    values: dict[str, float | None]  # bs.STATS; transfer_gap None without English
    dispersion: dict[str, float]  # DISPERSIONS, mean over seeds
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
    per_seed: dict[str, Array]  # EFFECT_STATS → (n_shared_seeds,)
    gains: Array  # per-language seed-mean gain, (n_languages,)
    gains_ci95: Array | None  # (n_languages, 2) t interval over seeds; None with one seed

    @property
    def delta_disp(self) -> float:
        """The primary effect: non-English, noise-corrected dispersion, T − `none`."""
        return float(self.per_seed["disp"].mean())


@dataclass(frozen=True)
class Computed:
    """A block's per-seed statistics: at the point and under every language resample."""

    block: Block
    point: dict[str, Array]  # statistic → (n_seeds,)
    replicates: dict[str, Array]  # statistic → (B, n_seeds), the target task's draws
    dispersion: dict[str, Array]  # DISPERSIONS → (n_seeds,), at the point

    def rows(self, seeds: tuple[int, ...], stats: tuple[str, ...]) -> dict[str, Array]:
        """Replicates of `seeds` only; the point (shape (1, 1)) when there is one seed."""
        index = [self.block.seeds.index(s) for s in seeds]
        if len(index) == 1:
            return {k: self.point[k][None, index] for k in stats}
        if seeds == self.block.seeds:  # all of them, in order: no copy
            return {k: self.replicates[k] for k in stats}
        return {k: self.replicates[k][:, index] for k in stats}


def _english(block: Block) -> int | None:
    return block.languages.index("en") if "en" in block.languages else None


def higher_is_better(metric: str) -> bool:
    """The metric's registered direction (`nll`: lower is better)."""
    return METRICS[metric].higher_is_better


def _oriented(stats: dict[str, Array], metric: str) -> dict[str, Array]:
    """The transfer gap says how much better English does: English − the others for a
    higher-is-better metric, the others − English for a lower-is-better one (`nll`)."""
    if higher_is_better(metric) or "transfer_gap" not in stats:
        return stats
    return stats | {"transfer_gap": -stats["transfer_gap"]}


def language_draws(block: Block) -> Array:
    """The language resamples of a target task, shared by all its cells."""
    return bs.draw_counts(bs.rng_for("languages", block.target_task), len(block.languages))


def _chunks(blocks: list[Block], max_columns: int) -> list[list[Block]]:
    chunks: list[list[Block]] = [[]]
    width = 0
    for block in blocks:
        if chunks[-1] and width + 2 * len(block.seeds) > max_columns:
            chunks.append([])
            width = 0
        chunks[-1].append(block)
        width += 2 * len(block.seeds)
    return chunks


def compute(blocks: list[Block], lang_draws: Array, max_columns: int = 4096) -> list[Computed]:
    """Per-seed statistics of blocks of one target task, sharing its language draws.

    The language-weighted sums of all blocks come from a few large matrix products
    (thousands of small ones are slow, and slower still on a busy machine).
    """
    out: list[Computed] = []
    for chunk in _chunks(blocks, max_columns):
        sums = lang_draws @ np.hstack([bs.moments(b.scores) for b in chunk])
        edges = np.cumsum([0] + [2 * len(b.seeds) for b in chunk])
        for block, lo, hi in zip(chunk, edges[:-1], edges[1:], strict=True):
            out.append(_compute(block, lang_draws, sums[:, lo:hi]))
    return out


def _compute(block: Block, lang_draws: Array, sums: Array) -> Computed:
    english = _english(block)
    ones = np.ones((1, block.scores.shape[1]))
    unit_sums = bs.moments(block.scores).sum(axis=0, keepdims=True)
    point = _oriented(bs.per_seed(block.scores, ones, english, sums=unit_sums), block.metric)
    replicates = bs.per_seed(block.scores, lang_draws, english, sums=sums)
    return Computed(
        block=block,
        point={k: v[0] for k, v in point.items()},
        replicates=_oriented(replicates, block.metric),
        dispersion=dispersions(block),
    )


def _seed_draws(n_seeds: int, *key: object) -> Array:
    return np.ones((1, 1)) if n_seeds == 1 else bs.draw_counts(bs.rng_for(*key), n_seeds)


def cell_stats(c: Computed) -> CellStats:
    b = c.block
    stats = tuple(c.point)
    seeds = _seed_draws(len(b.seeds), "cell", b.target_task, b.metric, b.model, b.intermediate_task)
    reps = bs.over_seeds(c.rows(b.seeds, stats), seeds)
    values: dict[str, float | None] = {k: float(v.mean()) for k, v in c.point.items()}
    values.setdefault("transfer_gap", None)
    by_language = b.scores.mean(axis=0)
    worst = b.languages[
        int(np.argmin(by_language) if higher_is_better(b.metric) else np.argmax(by_language))
    ]
    ci = {k: bs.interval(v, values[k]) for k, v in reps.items()}
    disp = {k: float(v.mean()) for k, v in c.dispersion.items()}
    return CellStats(block=b, values=values, dispersion=disp, worst_language=worst, ci95=ci)


def effect(treated: Computed, base: Computed) -> Effect | None:
    """The paired effect of `treated` over its `none` block; None without shared seeds."""
    t, b = treated.block, base.block
    seeds = tuple(s for s in t.seeds if s in set(b.seeds))
    if not seeds or t.languages != b.languages:
        return None
    both = ("mean", "std")
    t_rows, b_rows = treated.rows(seeds, both), base.rows(seeds, both)
    draws = _seed_draws(len(seeds), "delta", t.target_task, t.metric, t.model, t.intermediate_task)
    reps = bs.over_seeds({k: t_rows[k] - b_rows[k] for k in both}, draws)
    ti = [t.seeds.index(s) for s in seeds]
    bi = [b.seeds.index(s) for s in seeds]
    per_seed = {k: treated.point[k][ti] - base.point[k][bi] for k in both}
    per_seed |= {k: treated.dispersion[k][ti] - base.dispersion[k][bi] for k in DISPERSIONS}
    gains = t.scores[ti] - b.scores[bi]
    return Effect(
        block=t,
        seeds=seeds,
        delta_mean=float(per_seed["mean"].mean()),
        delta_std=float(per_seed["std"].mean()),
        replicates=reps,
        per_seed=per_seed,
        gains=gains.mean(axis=0),
        gains_ci95=_t_intervals(gains),
    )


def _t_intervals(diffs: Array) -> Array | None:
    """Per column of (n_seeds, n): the 95 % t interval of the mean over seeds (df n − 1)."""
    n = diffs.shape[0]
    if n < 2:
        return None
    half = float(st.t.ppf(0.975, n - 1)) * diffs.std(axis=0, ddof=1) / np.sqrt(n)
    mean = diffs.mean(axis=0)
    return np.column_stack([mean - half, mean + half])
