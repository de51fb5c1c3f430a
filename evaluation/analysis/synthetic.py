"""Synthetic results stores with a planted effect, for tests, benchmarks and demos.

The scores of a planted sweep are exact by construction: for every target task, a fixed
language profile `z` (sample std 1), and for model m, intermediate task T and seed s::

    score[lang] = level(m) + shift(T, m) + spread(T, m) * z[lang] + noise

with spread(none, m) = `base_std` and spread(T, m) = base_std + `effect_at_1b` +
`slope` * log10(params / 1e9). Without noise, std across languages is exactly the spread,
so delta_std is exactly linear in log10(params) with slope `slope`. The profile puts
English at the profile's mean and has sample std 1 over the *other* languages, so the
raw non-English dispersion (`disp_raw`) is exactly the spread; the noise-corrected `disp`
differs from it by the (small) binomial correction of accuracy rows (n_examples 1000).
Fragments follow the DESIGN contract: one Parquet file per (trial, target task, attempt).
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
from evaluation.tasks import get_task
from storage.results import ResultsStore
from storage.schema import SCHEMA, SCHEMA_VERSION

_METRIC_OFFSET = {"exact_match": -8.0, "precision": 1.0, "recall": -1.0}


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


def _table(plan: Planted, cell: tuple[str, str, int], target: str, values: np.ndarray) -> pa.Table:
    spec = get_task(target)
    metrics = spec.metrics if plan.all_metrics else reported_metrics(target)
    splits = plan.splits or (spec.report_split,)
    rows = [
        (lang, split, metric, float(v) + _METRIC_OFFSET.get(metric, 0.0))
        for split in splits
        for metric in metrics
        for lang, v in zip(spec.languages, values, strict=True)
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
    n_examples: int = 1000,
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
