"""The Ray Tune trainable: one trial runs one cell through the cell runner.

What is done comes from the ledger, never from Tune's state: a trial that runs again
finds its finished phases and target tasks there and skips them. Asked to stop
(`orchestrator.stopping`), a trial stops at its next step boundary (checkpointed) or
phase change and waits for the driver to shut Ray down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orchestrator import metrics, stopping
from orchestrator.hooks import StoreHooks
from orchestrator.ledger import Ledger
from orchestrator.stopping import StopFlag
from orchestrator.tracking import CellTracker, Targets
from storage.files import Fence
from storage.results import ResultsStore
from trainers.cell import run_cell
from trainers.job import CellJob, Runtime
from trainers.loop import StopRequested


def run_trial(
    config: dict[str, Any],
    jobs: dict[str, CellJob],
    storage_uri: str,
    runner: Callable[[CellJob, StoreHooks], None] = run_cell,
    fence: Fence | None = None,
    tracking: Targets | None = None,
) -> None:
    """Run one cell; `runner` is `run_cell` except in benchmarks of the orchestration.
    `tracking`: where the cell's metrics go (`orchestrator.tracking`)."""
    from ray import tune

    job = jobs[config["trial_key"]]
    cfg = job.config
    ledger = Ledger(storage_uri, cfg.sweep, fence)
    store = ResultsStore(storage_uri, cfg.sweep, fence)
    attempt = ledger.begin_attempt(cfg.trial_key)
    threads = max(1, int(cfg.model.resources.cpus_per_worker))
    stop = StopFlag(cfg.sweep)
    job = CellJob(cfg, job.paths, Runtime(attempt, threads, fence, stop))
    tracker = CellTracker(tracking, cfg, fence) if tracking is not None else None
    hooks = StoreHooks(job, ledger, store, tune.report, stop, tracker)
    stopping.register(cfg.sweep, cfg.trial_key)
    try:
        runner(job, hooks)
    except StopRequested:
        # Checkpointed at a step boundary, or between atomic writes: a rerun resumes here.
        # Not a failure; wait for the driver to shut Ray down.
        stopping.acknowledge(cfg.sweep, cfg.trial_key)
        if tracker is not None:
            tracker.close("KILLED")
        while True:
            time.sleep(60)
    except BaseException as exc:
        cause = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        ledger.mark_failed(cfg.trial_key, cause)
        metrics.count("cells_failed", 1, cfg.sweep, cfg.model.name)
        if tracker is not None:
            tracker.close("FAILED")
        raise
    finally:
        stopping.unregister(cfg.sweep, cfg.trial_key)
    metrics.count("cells_done", 1, cfg.sweep, cfg.model.name)
    if tracker is not None:
        tracker.close("FINISHED")
    tune.report({"phase": "done", "target_task": "", "languages_scored": hooks.languages})
