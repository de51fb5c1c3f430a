"""Answer the research question from the results store alone (issue 8).

``analyze(fs, results_path, sweep) -> Analysis`` reads the deduplicated store (through
the store's one reader, `storage.results.ResultsStore.reading`), builds complete score
blocks (`blocks`), computes every cell's statistics with bootstrap intervals and every
STILTs effect paired by seed (`stats`), and fits the scaling slopes (`scaling`).
``Analysis.summary()`` is the JSON-ready ``summary.json`` of the issue. The definitions
are stated in `DEFINITIONS` and printed in the report; `DEFINITIONS_VERSION` changes
whenever one of them does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from evaluation.analysis import bootstrap as bs
from evaluation.analysis.blocks import Block, build_blocks, wanted_rows
from evaluation.analysis.scaling import ALL, Scaling, scaling
from evaluation.analysis.stats import (
    BASELINE,
    CellStats,
    Computed,
    Effect,
    cell_stats,
    compute,
    effect,
    language_draws,
)
from evaluation.analysis.summary import summary_dict
from evaluation.tasks import get_task
from storage.errors import UserError
from storage.files import Storage, resolve_storage
from storage.results import Reading, ResultsStore

DEFINITIONS_VERSION = 1
DEFINITIONS = (
    "Headline metric per task: accuracy (XNLI, XCOPA, PAWS-X, Tatoeba), F1 (UD-POS, PAN-X, "
    "BUCC, XQuAD, MLQA, TyDiQA — EM reported beside it), map@20 (Mewsli-X, LAReQA), on the "
    "split the benchmark reports (test, else validation).",
    "Per (model, intermediate task, target task, seed), over the task's languages (English "
    "included): mean, std (sample, ddof = 1), cv = std / mean, min, max, worst language, and "
    "transfer gap = English − mean of the other languages (only where English is scored).",
    f"Over seeds: each statistic is the mean of its per-seed values, with a 95 % "
    f"bias-corrected percentile bootstrap interval ({bs.N_RESAMPLES} resamples of seeds, "
    f"then languages; fixed seed {bs.BASE_SEED}). With one seed the interval collapses to "
    f"the point estimate.",
    "STILTs effect of intermediate task T for a model: delta_mean = mean(T) − mean(none), "
    "delta_std = std(T) − std(none), paired by seed. Negative delta_std: T made the model "
    "more even across languages.",
    f"Scaling: least-squares slope of delta_std (and delta_mean) against log10(parameters) "
    f"per (T, target task), and pooled over target tasks (one intercept per target task); "
    f"bootstrap interval and a two-sided permutation p-value ({bs.N_PERMUTATIONS} "
    f"permutations of model labels over per-seed effects).",
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

    def summary(self) -> dict[str, object]:
        return summary_dict(self, DEFINITIONS_VERSION)


def _is_headline(block: Block) -> bool:
    return block.metric == get_task(block.target_task).headline


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


def analyze(fs: pafs.FileSystem | None, results_path: str | Path, sweep: str) -> Analysis:
    """Every statistic of issue 8 for `sweep`, from the results store at `results_path`.

    `fs` is a `pyarrow.fs` filesystem (the orchestrator's resolved storage), or None for a
    local directory. Raises `UserError` when the store holds no rows for the sweep.
    """
    reading = read_store(fs, results_path, sweep)
    rows = reading.rows.to_pandas(strings_to_categorical=True)
    found = build_blocks(rows, reading.target_tasks)
    computed = []
    for target in found.languages:
        blocks = [b for b in found.blocks if b.target_task == target]
        if blocks:
            computed += compute(blocks, language_draws(blocks[0]))
    effects = _effects(computed, found.missing)
    headline = [e for e in effects if _is_headline(e.block)]
    return Analysis(
        sweep=sweep,
        cells=[cell_stats(c) for c in computed],
        effects=effects,
        scaling=scaling(headline),
        languages=found.languages,
        missing=found.missing,
        conflicts=[c.as_dict() for c in reading.conflicts],
        notes=found.notes + reading.file_problems(),
        effects_reason=_effects_reason(found.blocks, effects),
    )
