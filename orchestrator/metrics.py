"""xstilts' own dashboard metrics, through `ray.util.metrics`.

They appear on every node's metrics export port as `ray_xstilts_*` (counters get a
`_total` suffix), one series per worker process: aggregate with `sum by (...)`. Tags are
low-cardinality on purpose: sweep, model, phase — never a trial key or a language.
Created lazily inside the process that records them (a Tune trial's worker).
"""

from __future__ import annotations

from functools import cache
from typing import Any

PHASE_BUCKETS = [1.0, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200]


@cache
def _metrics() -> dict[str, Any]:
    from ray.util import metrics

    tags = ("sweep", "model")
    return {
        "cells_done": metrics.Counter(
            "xstilts_cells_done", "Cells finished (all target tasks scored).", tags
        ),
        "cells_failed": metrics.Counter("xstilts_cells_failed", "Cell attempts that raised.", tags),
        "rows_written": metrics.Counter(
            "xstilts_rows_written", "Result rows published to the store.", tags
        ),
        "languages_scored": metrics.Counter(
            "xstilts_languages_scored", "(target task, language) pairs scored.", tags
        ),
        "phase_seconds": metrics.Histogram(
            "xstilts_phase_seconds",
            "Wall time of one phase of one cell.",
            PHASE_BUCKETS,
            (*tags, "phase"),
        ),
    }


def count(name: str, value: float, sweep: str, model: str) -> None:
    _metrics()[name].inc(value, tags={"sweep": sweep, "model": model})


def phase_duration(seconds: float, sweep: str, model: str, phase: str) -> None:
    _metrics()["phase_seconds"].observe(
        seconds, tags={"sweep": sweep, "model": model, "phase": phase}
    )
