"""The results-store contract (DESIGN.md, "Results store"): columns, types, logical key.

It lives at the bottom of the dependency order so that the orchestrator's store (which
writes it) and the analysis (which reads it without importing the orchestrator) share one
definition.
"""

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
# One row per logical key; a later attempt's row replaces an earlier one.
KEY = ("sweep", "trial_key", "target_task", "language", "split", "metric")
