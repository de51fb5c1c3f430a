"""The Ray Tune trainable: one trial runs one cell through the cell runner.

What is done comes from the ledger, never from Tune's state: a trial that Tune re-runs
after a restore finds its finished phases and target tasks there and skips them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from orchestrator import metrics
from orchestrator.hooks import StoreHooks
from orchestrator.ledger import Ledger
from storage.results import ResultsStore
from trainers.cell import CellJob, run_cell


def run_trial(
    config: dict[str, Any],
    jobs: dict[str, CellJob],
    storage_uri: str,
    runner: Callable[[CellJob, StoreHooks], None] = run_cell,
) -> None:
    """Run one cell; `runner` is `run_cell` except in benchmarks of the orchestration."""
    from ray import tune

    job = jobs[config["trial_key"]]
    ledger = Ledger(storage_uri, job.sweep)
    store = ResultsStore(storage_uri, job.sweep)
    attempt = ledger.begin_attempt(job.trial_key)
    threads = max(1, int(job.model.resources.cpus_per_worker))
    job = dataclasses.replace(job, attempt=attempt, threads=threads)
    hooks = StoreHooks(job, ledger, store, tune.report)
    try:
        runner(job, hooks)
    except BaseException as exc:
        cause = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        ledger.mark_failed(job.trial_key, cause)
        metrics.count("cells_failed", 1, job.sweep, job.model.name)
        raise
    metrics.count("cells_done", 1, job.sweep, job.model.name)
    tune.report({"phase": "done", "target_task": "", "languages_scored": hooks.languages})
