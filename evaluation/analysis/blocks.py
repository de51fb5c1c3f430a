"""From deduplicated rows to score blocks, listing everything that is missing.

A *block* holds the complete per-seed scores of one (model, intermediate task, target
task, metric): a seeds × languages matrix. The languages of a target task are those of
its registry spec that the sweep scored at all; a seed scored on only some of them is
left out of the statistics (a std over fewer languages is not comparable) and listed in
`missing`, like every (model, intermediate task, seed) the sweep's grid has but the store
lacks. Nothing is dropped without an entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product

import numpy as np
import pandas as pd

from evaluation.analysis.bootstrap import Array
from evaluation.scorers import row_metrics
from evaluation.tasks import Role, all_tasks, get_task
from storage.errors import UserError
from storage.schema import LOSS_METRIC, METRICS, sampling_se_metric

QA_SECONDARY = "exact_match"


@dataclass(frozen=True)
class Block:
    model: str
    model_params: int
    intermediate_task: str
    target_task: str
    metric: str
    languages: tuple[str, ...]
    seeds: tuple[int, ...]
    scores: Array  # (n_seeds, n_languages)
    n_examples: Array | None = None  # (n_seeds, n_languages), the store's per-row counts
    # (n_seeds, n_languages) test-set sampling SE from the `<metric>_se` rows (bootstrap over
    # examples at score time); nan where a row lacks one; None: the metric has no SE rows.
    sampling_se: Array | None = None


@dataclass
class Blocks:
    blocks: list[Block] = field(default_factory=list)
    missing: list[dict[str, object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    languages: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per target task
    # Per target task: its languages the sweep's spec does not evaluate (its selection or
    # its protocol's list); not missing, and not in any statistic.
    left_out: dict[str, tuple[str, ...]] = field(default_factory=dict)


def reported_metrics(target_task: str) -> tuple[str, ...]:
    """The headline metric, EM beside F1 for the QA tasks, and the head's mean negative
    log-likelihood (`nll`, the loss-based view) where the task's rows carry one."""
    spec = get_task(target_task)
    extra = (QA_SECONDARY,) if QA_SECONDARY in spec.metrics and spec.headline == "f1" else ()
    loss = (LOSS_METRIC,) if LOSS_METRIC in row_metrics(spec) else ()
    return (spec.headline, *extra, *loss)


def _grid(rows: pd.DataFrame) -> list[tuple[str, str, int]]:
    cells = rows[["model", "intermediate_task", "seed"]].drop_duplicates()
    models = sorted(cells["model"].astype(str).unique())
    tasks = sorted(cells["intermediate_task"].astype(str).unique())
    seeds = sorted(int(s) for s in cells["seed"].unique())
    return list(product(models, tasks, seeds))


def _with_se(metrics: tuple[str, ...]) -> list[str]:
    ses = [sampling_se_metric(m) for m in metrics if sampling_se_metric(m) in METRICS]
    return [*metrics, *ses]


def wanted_rows() -> list[tuple[str, str, str]]:
    """(target task, split, metric) of every row the analysis reads: the reported metrics
    and the rows of their sampling SE."""
    targets = all_tasks(Role.TARGET)
    return [
        (t.name, t.report_split, m) for t in targets for m in _with_se(reported_metrics(t.name))
    ]


def _known_targets(names: tuple[str, ...], out: Blocks) -> list[str]:
    known = []
    for name in names:
        try:
            get_task(name)
        except UserError as e:
            out.notes.append(f"target task {name!r} skipped: {e}")
            continue
        known.append(name)
    return known


def _languages(
    target: str, scored: pd.DataFrame, out: Blocks, chosen: Sequence[str] | None = None
) -> tuple[str, ...]:
    """The languages the statistics of `target` cover: those the sweep evaluates (`chosen`,
    default: all of the task's) that it scored; the others it evaluates are missing."""
    spec = get_task(target)
    wanted = spec.languages if chosen is None else tuple(x for x in spec.languages if x in chosen)
    if left := tuple(lang for lang in spec.languages if lang not in wanted):
        out.left_out[target] = left
    present = set(scored["language"].astype(str).unique())
    never = [lang for lang in wanted if lang not in present]
    if never:
        out.missing.append(
            {"target_task": target, "languages": never, "reason": "never scored in this sweep"}
        )
    return tuple(lang for lang in wanted if lang in present)


def _wide(scored: pd.DataFrame, languages: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The values and the n_examples, (model, intermediate task, seed) × language."""
    frame = scored.assign(
        model=scored["model"].astype(str),
        intermediate_task=scored["intermediate_task"].astype(str),
        language=scored["language"].astype(str),
    )
    both = frame.set_index(["model", "intermediate_task", "seed", "language"])
    wide = both[["value", "n_examples"]].unstack("language")
    values = wide["value"].reindex(columns=list(languages))
    return values, wide["n_examples"].reindex(columns=list(languages))


def _absent(wide: pd.DataFrame, grid: list[tuple[str, str, int]], where: dict[str, object]):
    have = set(wide.index)
    for model, task, seed in grid:
        if (model, task, seed) not in have:
            yield {"model": model, "intermediate_task": task, "seed": seed, **where}


def _partial(wide: pd.DataFrame, where: dict[str, object]):
    gaps = wide.isna()
    for (model, task, seed), row in gaps[gaps.any(axis=1)].iterrows():
        lost = [str(lang) for lang, gone in row.items() if gone]
        reason = "scored on some languages only; left out of the statistics"
        yield {"model": model, "intermediate_task": task, "seed": int(seed), **where}, lost, reason


def _metric_blocks(
    wides: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None],
    params: dict[str, int],
    target: str,
    metric: str,
):
    wide, counts, ses = wides
    keep = wide.notna().all(axis=1).to_numpy()
    complete = wide[keep]
    n_all = counts.to_numpy(dtype=np.float64)[keep]
    se_all = None if ses is None else ses.reindex(complete.index).to_numpy(dtype=np.float64)
    groups = complete.groupby(level=[0, 1], sort=True)
    for (model, task), frame in groups:
        index = groups.indices[(model, task)]
        n = n_all[index]
        yield Block(
            model=str(model),
            model_params=params[str(model)],
            intermediate_task=str(task),
            target_task=target,
            metric=metric,
            languages=tuple(map(str, frame.columns)),
            seeds=tuple(int(s) for s in frame.index.get_level_values(2)),
            scores=frame.to_numpy(dtype=np.float64),
            n_examples=n,
            sampling_se=None if se_all is None else se_all[index],
        )


def _target(
    rows: pd.DataFrame, target: str, ctx: tuple, out: Blocks, chosen: Sequence[str] | None
) -> None:
    grid, params = ctx
    split = get_task(target).report_split
    mine = rows[(rows["target_task"] == target) & (rows["split"] == split)]
    if mine.empty:
        reason = f"no scores on the {split} split, the split the benchmark reports"
        out.missing.append({"target_task": target, "reason": reason})
        return
    out.languages[target] = languages = _languages(target, mine, out, chosen)
    for metric in reported_metrics(target):
        scored = mine[mine["metric"] == metric]
        if scored.empty and metric == LOSS_METRIC:
            out.notes.append(
                f"target task {target}: no {LOSS_METRIC} rows (a store written before the "
                "loss rows); no loss-based statistics for it"
            )
            continue
        where: dict[str, object] = {"target_task": target, "metric": metric}
        wide, counts = _wide(scored, languages)
        for entry in _absent(wide, grid, where):
            out.missing.append({**entry, "reason": "no scores"})
        for entry, lost, reason in _partial(wide, where):
            out.missing.append({**entry, "languages": lost, "reason": reason})
        ses = mine[mine["metric"] == sampling_se_metric(metric)]
        se_wide = _wide(ses, languages)[0] if not ses.empty else None
        out.blocks.extend(_metric_blocks((wide, counts, se_wide), params, target, metric))


def _params(rows: pd.DataFrame, out: Blocks) -> dict[str, int]:
    sizes = rows.groupby(rows["model"].astype(str))["model_params"].agg(["min", "max"])
    for model, (lo, hi) in sizes.iterrows():
        if lo != hi:
            out.notes.append(f"model {model} has several parameter counts ({lo}, {hi}); using {hi}")
    return {str(m): int(hi) for m, hi in sizes["max"].items()}


def build_blocks(
    rows: pd.DataFrame,
    targets: tuple[str, ...],
    languages: Mapping[str, Sequence[str]] | None = None,
) -> Blocks:
    """Score blocks of every registered target task in `targets`, and what is missing.

    `rows` are the deduplicated rows the analysis reads; `targets` every target task that
    has rows in the store (those with none on the reported split are listed as missing);
    `languages`: per target task, the languages the sweep evaluates (default: all).
    """
    out = Blocks()
    ctx = (_grid(rows), _params(rows, out))
    for target in _known_targets(targets, out):
        _target(rows, target, ctx, out, (languages or {}).get(target))
    return out
