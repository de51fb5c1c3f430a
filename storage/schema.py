"""The results-store contract: columns, types, keys, and the registries of splits and metrics.

One row per (cell, target task, language, split, metric), long format. Every package that
writes or reads results imports it from here (the bottom floor), so there is one definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 2
SCHEMA = pa.schema(
    [
        ("sweep", pa.string()),
        ("trial_key", pa.string()),
        ("model", pa.string()),
        ("model_params", pa.int64()),
        ("intermediate_task", pa.string()),
        ("seed", pa.int32()),
        ("target_task", pa.string()),
        ("language", pa.string()),
        ("split", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("n_examples", pa.int64()),
        ("attempt", pa.int32()),
        ("written_at", pa.timestamp("us", tz="UTC")),
        ("task_version", pa.int32()),
        ("schema_version", pa.int16()),
        # Where the cell's data came from: `fixtures` (synthetic, `xstilts fixtures`),
        # `local` (the user's own mirror), `hub`; several joined by `+` (e.g. phase 2 on
        # fixtures, the target task on own data).
        ("data_source", pa.string()),
    ]
)
# Columns added after schema version 1, with the version that added them: a fragment
# written before lacks them, and the reader gives them as null (unknown).
ADDED_COLUMNS = {"data_source": 2}
# The key a fragment's writer owns: within one trial, a later attempt's row replaces an
# earlier one.
KEY = ("sweep", "trial_key", "target_task", "language", "split", "metric")
# The key of one result: a cell's score, whichever trial wrote it. Extending a sweep (a new
# target task) gives its cells new trial keys; the newest trial's row is the result.
RESULT_KEY = (
    "sweep",
    "model",
    "intermediate_task",
    "seed",
    "target_task",
    "language",
    "split",
    "metric",
)

SPLITS = frozenset({"test", "validation"})


@dataclass(frozen=True)
class Metric:
    """A registered metric: its scale (`high` None: unbounded above) and which direction is
    better. A task's headline metric is named by its spec (`evaluation.tasks`, `headline`);
    `score`, `results`, the store and the report all read scales and directions from here."""

    name: str
    low: float
    high: float | None
    higher_is_better: bool = True
    digits: int = 2  # decimals when shown
    sampling_se_of: str | None = None  # this row is the sampling SE of that metric's row

    def contains(self, value: float) -> bool:
        return self.low <= value and (self.high is None or value <= self.high)

    @property
    def scale(self) -> str:
        return f"[{self.low:g}, {'∞' if self.high is None else f'{self.high:g}'}]"


# The per-language mean negative log-likelihood (nats) of the gold under a fine-tuned head.
LOSS_METRIC = "nll"
SE_SUFFIX = "_se"


def sampling_se_metric(metric: str) -> str:
    """The name of the row holding `metric`'s test-set sampling SE (bootstrap over examples)."""
    return metric + SE_SUFFIX


def _with_se(*metrics: Metric) -> tuple[Metric, ...]:
    """Each metric and the row of its sampling SE (same scale, lower is better)."""
    ses = [
        Metric(sampling_se_metric(m.name), 0.0, m.high, False, m.digits + 1, m.name)
        for m in metrics
    ]
    return (*metrics, *ses)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", 0.0, 100.0),
        Metric("exact_match", 0.0, 100.0),
        Metric("precision", 0.0, 100.0),
        Metric("recall", 0.0, 100.0),
        Metric("mrr@20", 0.0, 100.0),
        *_with_se(
            Metric("f1", 0.0, 100.0),
            Metric("map@20", 0.0, 100.0),
            Metric(LOSS_METRIC, 0.0, None, higher_is_better=False, digits=4),
        ),
    )
}
