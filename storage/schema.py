"""The results-store contract: columns, types, keys, and the registries of splits and metrics.

One row per (cell, target task, language, split, metric), long format. Every package that
writes or reads results imports it from here (the bottom floor), so there is one definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 1
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
    ]
)
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
    """A registered metric: its scale and which direction is better."""

    name: str
    low: float
    high: float
    higher_is_better: bool = True


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", 0.0, 100.0),
        Metric("f1", 0.0, 100.0),
        Metric("exact_match", 0.0, 100.0),
        Metric("precision", 0.0, 100.0),
        Metric("recall", 0.0, 100.0),
        Metric("map@20", 0.0, 100.0),
        Metric("mrr@20", 0.0, 100.0),
    )
}
