"""Answer the research question from the results store alone (issue 8).

``analyze(fs, results_path, sweep) -> Analysis`` reads the deduplicated store (through
the store's one reader, `storage.results.ResultsStore.reading`), builds complete score
blocks (`blocks`), computes every cell's statistics with bootstrap intervals and every
STILTs effect paired by seed (`stats`), and fits the scaling slopes with the model as the
unit, Holm-adjusted over every contrast (`scaling`, issue 15).
``Analysis.summary()`` is the JSON-ready ``summary.json`` of the issue. The definitions
are stated in `DEFINITIONS` and printed in the report; `DEFINITIONS_VERSION` changes
whenever one of them does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from evaluation.analysis import bootstrap as bs
from evaluation.analysis.blocks import Block, build_blocks, wanted_rows
from evaluation.analysis.scaling import (
    ALL,
    METHOD,
    MULTIPLICITY,
    POOLED_SCALE,
    Scaling,
    scaling,
)
from evaluation.analysis.stats import (
    BASELINE,
    CellStats,
    Computed,
    Effect,
    cell_stats,
    compute,
    effect,
    language_draws,
    noise_correction,
)
from evaluation.analysis.summary import summary_dict
from evaluation.tasks import get_task
from storage.errors import UserError
from storage.files import Storage, resolve_storage
from storage.results import Reading, ResultsStore
from storage.schema import LOSS_METRIC

DEFINITIONS_VERSION = 5
DEFINITIONS = (
    "Headline metric per task: accuracy (XNLI, XCOPA, PAWS-X, Tatoeba), F1 (UD-POS, PAN-X, "
    "BUCC, XQuAD, MLQA, TyDiQA — EM reported beside it), map@20 (Mewsli-X, LAReQA), on the "
    "split the benchmark reports (test, else validation).",
    "Per (model, intermediate task, target task, seed), over the task's languages (English "
    "included): mean, std (sample, ddof = 1), cv = std / mean, min, max, worst language, and "
    "transfer gap = English − mean of the other languages (only where English is scored).",
    "The estimand (dispersion): per (model, intermediate task, target task, seed), the std "
    "(ddof = 1) of the scores over the task's non-English languages (disp, the primary "
    "estimand; the task's languages when it has no English) and over all its languages "
    "(std, secondary), each raw and corrected for test-set sampling noise: corrected "
    "variance = raw variance − mean over the same languages of the per-language sampling "
    "variance, floored at 0. The sampling variance is binomial for accuracy (XNLI, XCOPA, "
    "PAWS-X, Tatoeba): 100² p (1 − p) / n, n the row's n_examples. For F1 and map@20 (UD-POS, "
    "PAN-X, BUCC, the QA tasks, Mewsli-X, LAReQA) it is the square of the row's sampling SE, "
    "the <metric>_se row written at score time: the SD of the metric over 200 bootstrap "
    "resamples of the language's examples (sentences for UD-POS/PAN-X, questions for QA, "
    "source sentences for BUCC, queries for Mewsli-X/LAReQA; seeded by task and language), "
    "computed from the same predictions the prediction files hold. A target task some of "
    "whose rows lack an SE (a store written before definitions 4) is not corrected. "
    "summary.json states the correction per target task (noise_correction).",
    f"Over seeds (cell table): each statistic is the mean of its per-seed values, with a 95 % "
    f"bias-corrected percentile bootstrap interval ({bs.N_RESAMPLES} resamples of seeds, "
    f"then languages; fixed seed {bs.BASE_SEED}). With one seed the interval collapses to "
    f"the point estimate. These intervals describe cells; the answer does not use them.",
    "STILTs effect of intermediate task T for a model: delta_disp = disp(T) − disp(none) "
    "(the primary effect), delta_mean = mean(T) − mean(none), delta_std = std(T) − "
    "std(none), paired by seed. Negative delta_disp: T made the model more even across "
    "languages; positive: less even. Per-language deltas (T − none, mean over the shared "
    "seeds, 95 % t interval over seeds, none with one seed) are in summary.json.",
    "Per model (the unit of the size question), per (T, target task), headline metric: the "
    "effect is the mean of the per-seed delta_disp over seeds; its standard error is "
    "sqrt(s² / n_seeds), s² the within-model seed variance of delta_disp pooled over the "
    "contrast's models (df = Σ (n_seeds − 1)), so a one-seed model carries the pooled seed "
    "noise; its 95 % interval is a t interval with the pooled df.",
    f"Scaling ({METHOD}): weighted least squares of the per-model effects on log10"
    "(parameters) with weights 1 / (SE² + tau²), tau² the between-model variance (DerSimonian–"
    "Laird for meta-regression); the slope's variance is scaled by the Knapp–Hartung factor "
    "(weighted residual variance, floored at 1) and tested with t on k − 2 df (k models). "
    "Fitted with statsmodels WLS; t, F and chi² distributions from scipy.stats. The same "
    "fit is reported for delta_mean. Needs three sizes and some model with two seeds.",
    f"Target tasks together (target task `all`, per T): each target's per-seed delta_disp "
    f"is put on one scale, {POOLED_SCALE} (100 × delta_disp / mean disp of `none` for that "
    "target over models and seeds), then averaged over the targets within each (model, "
    "seed) — the targets share that phase-2 run — before the per-model mean and its pooled "
    "seed SE, so the phase-2 run is the unit and correlated targets are not counted twice. "
    "Heterogeneity: Cochran's Q of the per-target slopes on that scale (weights 1 / SE², "
    "chi² with J − 1 df; approximate, it ignores the targets' correlation) and I². A claim "
    "for all target tasks is made only when Q's p ≥ 0.05; otherwise the answer names the "
    "targets that drive the pooled trend (same sign, own unadjusted p < 0.05, else the "
    "largest slope of that sign).",
    "Lack of fit: Q_E / (k − 2) (fixed-effect weighted residual sum of squares) against "
    "F(k − 2, pooled seed df); a size departs when the fitted trend lies outside its own t "
    "interval at level 1 − 0.05 / k (Bonferroni over sizes). Non-monotonic is said only when "
    "the Holm-adjusted lack-of-fit p < 0.05 and some size departs.",
    f"Multiplicity: the delta_disp slope tests of all (T, target task) contrasts, the pooled "
    f"(T, all) ones included, are one family, corrected by {MULTIPLICITY.capitalize()} "
    "(family-wise error 0.05); the lack-of-fit tests likewise. A primary contrast declared "
    "in the spec (analysis.primary) is tested on its own at 0.05 (no adjustment), outside "
    "that family, and reported first. The headline is the contrast with the smallest "
    "adjusted p; a trend is claimed only when it is < 0.05. Minimum detectable slope: δ × "
    "SE, δ the noncentrality at which the two-sided t test on k − 2 df at Holm's first-step "
    "level 0.05 / m has 80 % power under the noncentral t (scipy.stats.nct).",
    "Loss-based view (beside the metric-based one; a family of its own, never part of the "
    "answer): the nll row of each language, the mean negative log-likelihood in nats of the "
    "gold under the fine-tuned head over the language's evaluation examples, without dropout "
    "(classification and multiple choice: cross-entropy of the gold label or choice per "
    "example; tagging: per labelled first sub-word; QA: per question, the mean over its "
    "windows of (start + end cross-entropy) / 2), written for every target task with a head "
    "(XNLI, PAWS-X, XCOPA, UD-POS, PAN-X, XQuAD, MLQA, TyDiQA; not the retrieval tasks). "
    "Lower is better: its worst language is the highest nll, its transfer gap the mean of the "
    "other languages − English (positive: English does better), and delta_mean = mean(T) − "
    "mean(none) is negative when T lowered the loss. The dispersion, its correction (the "
    "squared nll_se row: SD of the mean nll over 200 bootstrap resamples of the language's "
    "examples), the effects, the per-model estimates, the meta-regression, the pooled (`all`) "
    "contrasts (percent of the target's baseline nll dispersion), lack of fit and minimum "
    "detectable slope are those above, in nats; delta_disp > 0 still means less even. Its "
    "slope tests are Holm-adjusted as one family of their own (the lack-of-fit tests "
    "likewise), apart from the metric-based family, and are reported in their own section "
    "and in summary.json under `loss`; the answer above reads the metric-based family only.",
)

__all__ = [
    "ALL",
    "BASELINE",
    "DEFINITIONS",
    "DEFINITIONS_VERSION",
    "Analysis",
    "Block",
    "CellStats",
    "Effect",
    "Scaling",
    "analyze",
]


@dataclass(frozen=True)
class Loss:
    """The loss-based family: fits of the nll dispersion effect, per target task its
    baseline (`none`) dispersion and how it is corrected for sampling noise."""

    scaling: list[Scaling]
    baseline_disp: dict[str, float]
    noise_correction: dict[str, str]


@dataclass(frozen=True)
class Analysis:
    sweep: str
    cells: list[CellStats]
    effects: list[Effect]  # every metric; scaling uses the headline ones
    scaling: list[Scaling]
    languages: dict[str, tuple[str, ...]]  # per target task, the languages analysed
    missing: list[dict[str, object]]
    conflicts: list[dict[str, object]]
    notes: list[str]
    effects_reason: str | None  # why effects are unavailable (None: available)
    baseline_disp: dict[str, float]  # per target task: mean `none` disp (pooled scale)
    noise_correction: dict[str, str]  # per target task: how its disp is corrected
    primary: tuple[str, str] | None = None  # the spec's primary contrast
    # Per target task: {data_source: rows}; `unknown` for rows written before provenance.
    data_sources: dict[str, dict[str, int]] = field(default_factory=dict)
    # The loss-based view (issue 15, item 6): the same fits on the per-language mean nll,
    # a Holm family of its own, outside the answer.
    loss: Loss | None = None
    # Per target task: its languages the spec does not evaluate (selection or protocol).
    left_out: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        return summary_dict(self, DEFINITIONS_VERSION)


def _is_headline(block: Block) -> bool:
    return block.metric == get_task(block.target_task).headline


def _is_loss(block: Block) -> bool:
    return block.metric == LOSS_METRIC


def _effects(computed: list[Computed], missing: list[dict[str, object]]) -> list[Effect]:
    base = {
        (c.block.model, c.block.target_task, c.block.metric): c
        for c in computed
        if c.block.intermediate_task == BASELINE
    }
    out = []
    for c in computed:
        b = c.block
        if b.intermediate_task == BASELINE:
            continue
        ref = base.get((b.model, b.target_task, b.metric))
        found = effect(c, ref) if ref is not None else None
        if found is None:
            why = "no `none` baseline" if ref is None else "no seed shared with `none`"
            entry: dict[str, object] = {"model": b.model, "intermediate_task": b.intermediate_task}
            entry |= {"target_task": b.target_task, "metric": b.metric}
            missing.append(entry | {"reason": f"effect unavailable: {why}"})
            continue
        out.append(found)
    return out


def _noise_corrections(
    blocks: list[Block], targets: dict[str, tuple[str, ...]], family: Callable[[Block], bool]
) -> dict[str, str]:
    """Per target task with blocks of `family`: how their dispersion is corrected for
    sampling noise."""
    out = {}
    for t in targets:
        mine = [b for b in blocks if b.target_task == t and family(b)]
        if mine:
            out[t] = noise_correction(mine)
    return out


def _effects_reason(blocks: list[Block], effects: list[Effect]) -> str | None:
    if effects:
        return None
    if not any(b.intermediate_task == BASELINE for b in blocks):
        return "the sweep has no `none` baseline, so no STILTs effect can be measured"
    if not any(b.intermediate_task != BASELINE for b in blocks):
        return "the sweep has only the `none` baseline and no intermediate task"
    return "no intermediate task shares a model, target task and seed with `none`"


def read_store(fs: pafs.FileSystem | None, results_path: str | Path, sweep: str) -> Reading:
    """The rows the analysis needs, through the store's one deduplicating reader."""
    directory = str(results_path).rstrip("/")
    storage = resolve_storage(directory) if fs is None else Storage(fs, directory, directory)
    reading = ResultsStore.at(storage, sweep).reading(wanted_rows())
    where = storage.display(storage.root)
    if not reading.n_fragments:
        raise UserError(f"the results store at {where} holds no fragments for sweep {sweep!r}")
    if not reading.target_tasks:
        raise UserError(f"the results store at {where} holds no rows for sweep {sweep!r}")
    return reading


def _baseline_disp(computed: list[Computed], family: Callable[[Block], bool]) -> dict[str, float]:
    """Per target task: the mean primary disp of `none` (a metric of `family`: the headline,
    or nll), over models and seeds."""
    values: dict[str, list[float]] = {}
    for c in computed:
        b = c.block
        if b.intermediate_task == BASELINE and family(b):
            values.setdefault(b.target_task, []).extend(c.dispersion["disp"].tolist())
    return {t: float(np.nanmean(v)) for t, v in values.items() if np.isfinite(v).any()}


def analyze(
    fs: pafs.FileSystem | None,
    results_path: str | Path,
    sweep: str,
    primary: tuple[str, str] | None = None,
    languages: Mapping[str, Sequence[str]] | None = None,
) -> Analysis:
    """Every statistic of issue 8 for `sweep`, from the results store at `results_path`.

    `fs` is a `pyarrow.fs` filesystem (the orchestrator's resolved storage), or None for a
    local directory. `primary` is the spec's primary contrast (intermediate task, target
    task or `all`); `languages`, per target task, the languages the spec evaluates (the
    statistics cover those; default: all of the task's). Raises `UserError` when the store
    holds no rows for the sweep.
    """
    reading = read_store(fs, results_path, sweep)
    rows = reading.rows.to_pandas(strings_to_categorical=True)
    found = build_blocks(rows, reading.target_tasks, languages)
    computed = []
    for target in found.languages:
        blocks = [b for b in found.blocks if b.target_task == target]
        if blocks:
            computed += compute(blocks, language_draws(blocks[0]))
    effects = _effects(computed, found.missing)
    headline = [e for e in effects if _is_headline(e.block)]
    baseline = _baseline_disp(computed, _is_headline)
    notes = found.notes + reading.file_problems()
    fits = scaling(headline, baseline, primary)
    loss_baseline = _baseline_disp(computed, _is_loss)
    loss = Loss(
        scaling=scaling([e for e in effects if _is_loss(e.block)], loss_baseline, unit="nats"),
        baseline_disp=loss_baseline,
        noise_correction=_noise_corrections(found.blocks, found.languages, _is_loss),
    )
    if primary is not None and not any(f.primary for f in fits):
        notes.append(
            f"the spec's primary contrast ({primary[0]} on {primary[1]}) has no scaling fit "
            "in this store; the answer falls back to the Holm-adjusted headline"
        )
    return Analysis(
        sweep=sweep,
        cells=[cell_stats(c) for c in computed],
        effects=effects,
        scaling=fits,
        languages=found.languages,
        left_out=found.left_out,
        missing=found.missing,
        conflicts=[c.as_dict() for c in reading.conflicts],
        notes=notes,
        effects_reason=_effects_reason(found.blocks, effects),
        baseline_disp=baseline,
        noise_correction=_noise_corrections(found.blocks, found.languages, _is_headline),
        primary=primary,
        data_sources=data_sources(reading.rows),
        loss=loss,
    )


def data_sources(rows: pa.Table) -> dict[str, dict[str, int]]:
    """Per target task, how many rows each data source gave (null: `unknown`)."""
    out: dict[str, dict[str, int]] = {}
    counts = rows.group_by(["target_task", "data_source"]).aggregate([([], "count_all")])
    for found in counts.to_pylist():  # one per (target task, source): few
        by = out.setdefault(found["target_task"], {})
        source = found["data_source"] or "unknown"
        by[source] = by.get(source, 0) + found["count_all"]
    return {t: dict(sorted(by.items())) for t, by in sorted(out.items())}
