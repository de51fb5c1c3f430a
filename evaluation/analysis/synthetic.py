"""Synthetic results stores with a planted effect, for tests, benchmarks and demos.

The scores of a planted sweep are exact by construction: for every target task, a fixed
language profile `z` (sample std 1), and for model m, intermediate task T and seed s::

    score[lang] = level(m) + shift(T, m) + spread(T, m) * z[lang] + noise

with spread(none, m) = `base_std` and spread(T, m) = base_std + `effect_at_1b` +
`slope` * log10(params / 1e9). Without noise, std across languages is exactly the spread,
so delta_std is exactly linear in log10(params) with slope `slope`. The profile puts
English at the profile's mean and has sample std 1 over the *other* languages, so the
raw non-English dispersion (`disp_raw`) is exactly the spread; the noise-corrected `disp`
differs from it by the (small) correction for sampling noise (n_examples 1000).

A fragment holds the row set a real one has (`evaluation.scorers.row_metrics`; with
`all_metrics` False, the rows the analysis reads): besides the scores, each `<metric>_se`
row (the binomial SE of the score, 100 sqrt(p (1 − p) / 1000)) and, for target tasks with
a head, the loss rows: `nll` = `NLL_PER_POINT` × (100 − score) nats, so the nll dispersion
is exactly `NLL_PER_POINT` × the score's and its planted slope `NLL_PER_POINT` × `slope`,
and `nll_se` = `NLL_PER_POINT` × the score's SE. Fragments follow the DESIGN contract: one
Parquet file per (trial, target task, attempt), with the `data_source` the plan names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from evaluation.analysis.blocks import reported_metrics
from evaluation.analysis.bootstrap import rng_for
from evaluation.scorers import row_metrics
from evaluation.tasks import get_task
from storage.results import ResultsStore
from storage.schema import LOSS_METRIC, METRICS, SCHEMA, SCHEMA_VERSION

_METRIC_OFFSET = {"exact_match": -8.0, "precision": 1.0, "recall": -1.0}
NLL_PER_POINT = 0.02  # nats of nll per point of score below 100
N_EXAMPLES = 1000


@dataclass(frozen=True)
class Planted:
    sweep: str = "synthetic"
    models: dict[str, int] = field(
        default_factory=lambda: {"tiny": 10**8, "small": 10**9, "large": 10**10}
    )
    intermediate_tasks: tuple[str, ...] = ("none", "mnli")
    target_tasks: tuple[str, ...] = ("xnli",)
    seeds: tuple[int, ...] = (0, 1, 2)
    slope: float = -2.0  # delta_std per decade of parameters
    effect_at_1b: float = -1.0  # delta_std of a 1e9-parameter model
    gain: float = 3.0  # delta_mean of every intermediate task
    base_std: float = 8.0
    noise: float = 0.0  # per (seed, language) Gaussian noise
    all_metrics: bool = False  # every metric of the task, not only the reported ones
    splits: tuple[str, ...] = ()  # default: the task's report split
    data_source: str = "fixtures"  # the provenance its rows record (they are synthetic)


def _profile(target: str, n: int) -> np.ndarray:
    z = rng_for("profile", target).standard_normal(n)
    languages = get_task(target).languages
    others = np.array([lang != "en" for lang in languages])
    z = (z - z[others].mean()) / z[others].std(ddof=1)
    return np.where(others, z, 0.0)


def _spread(plan: Planted, task: str, params: int) -> float:
    if task == "none":
        return plan.base_std
    return plan.base_std + plan.effect_at_1b + plan.slope * np.log10(params / 1e9)


def _scores(plan: Planted, target: str, model: str, task: str) -> np.ndarray:
    """(n_seeds, n_languages) headline scores of one (model, task, target task)."""
    spec, params = get_task(target), plan.models[model]
    level = 55.0 + 5.0 * np.log10(params / 1e8) + (plan.gain if task != "none" else 0.0)
    scores = level + _spread(plan, task, params) * _profile(target, len(spec.languages))
    rng = rng_for("noise", plan.sweep, target, model, task)
    noise = rng.standard_normal((len(plan.seeds), len(spec.languages))) * plan.noise
    return scores[None, :] + noise


def trial_key(sweep: str, model: str, task: str, seed: int) -> str:
    return hashlib.sha256(f"{sweep}|{model}|{task}|{seed}".encode()).hexdigest()[:16]


def _metrics(target: str, every: bool) -> list[str]:
    """The real row set of the task, or (not `every`) the rows the analysis reads."""
    rows = row_metrics(get_task(target))
    if every:
        return list(rows)
    reported = reported_metrics(target)
    return [m for m in rows if m in reported or METRICS[m].sampling_se_of in reported]


def _value(metric: str, score: np.ndarray) -> np.ndarray:
    """One metric's values from the headline scores (`score`, per language)."""
    base = METRICS[metric].sampling_se_of
    if base is not None:  # the SE row of `base`
        p = np.clip(score + _METRIC_OFFSET.get(base, 0.0), 0.5, 99.5) / 100.0
        se = 100.0 * np.sqrt(p * (1.0 - p) / N_EXAMPLES)
        return NLL_PER_POINT * se if base == LOSS_METRIC else se
    if metric == LOSS_METRIC:
        return NLL_PER_POINT * np.maximum(100.0 - score, 0.0)
    return score + _METRIC_OFFSET.get(metric, 0.0)


def _table(plan: Planted, cell: tuple[str, str, int], target: str, values: np.ndarray) -> pa.Table:
    spec = get_task(target)
    splits = plan.splits or (spec.report_split,)
    by_metric = {m: _value(m, values) for m in _metrics(target, plan.all_metrics)}
    rows = [
        (lang, split, metric, float(v))
        for split in splits
        for metric, metric_values in by_metric.items()
        for lang, v in zip(spec.languages, metric_values, strict=True)
    ]
    return rows_table(
        plan.sweep, cell, plan.models[cell[0]], target, rows, data_source=plan.data_source
    )


def rows_table(
    sweep: str,
    cell: tuple[str, str, int],
    params: int,
    target: str,
    rows: list[tuple[str, str, str, float]],
    attempt: int = 0,
    n_examples: int = N_EXAMPLES,
    data_source: str = "fixtures",
) -> pa.Table:
    """A contract-exact table of (language, split, metric, value) rows of one cell."""
    model, task, seed = cell
    n = len(rows)
    columns = {
        "sweep": [sweep] * n,
        "trial_key": [trial_key(sweep, model, task, seed)] * n,
        "model": [model] * n,
        "model_params": [params] * n,
        "intermediate_task": [task] * n,
        "seed": [seed] * n,
        "target_task": [target] * n,
        "language": [r[0] for r in rows],
        "split": [r[1] for r in rows],
        "metric": [r[2] for r in rows],
        "value": [r[3] for r in rows],
        "n_examples": [n_examples] * n,
        "attempt": [attempt] * n,
        "written_at": [datetime(2025, 1, 1, tzinfo=UTC)] * n,
        "task_version": [get_task(target).version] * n,
        "schema_version": [SCHEMA_VERSION] * n,
        "data_source": [data_source] * n,
    }
    return pa.table(columns, schema=SCHEMA)


def write_fragment(results: Path, table: pa.Table) -> Path:
    """Publish one fragment of one cell through the store's own writer."""
    first = table.slice(0, 1).to_pylist()[0]
    store = ResultsStore.at(str(results), first["sweep"])
    name = store.write_rows(
        table,
        trial_key=first["trial_key"],
        target_task=first["target_task"],
        attempt=first["attempt"],
    )
    return results / name


def write_planted(results: Path, plan: Planted) -> int:
    """Write the planted sweep's fragments under `results`; returns the number of rows."""
    n = 0
    for target in plan.target_tasks:
        for model in plan.models:
            for task in plan.intermediate_tasks:
                scores = _scores(plan, target, model, task)
                for i, seed in enumerate(plan.seeds):
                    table = _table(plan, (model, task, seed), target, scores[i])
                    write_fragment(results, table)
                    n += table.num_rows
    return n
