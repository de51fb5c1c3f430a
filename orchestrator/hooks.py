"""The cell runner's hooks, backed by the ledger, the results store and Tune.

`record` is the only write path of results: one fragment, published atomically and
create-only, and only then the ledger entry. A crash between the two leaves a fragment
whose rows are identical to what the re-run writes (same name, same attempt... or a
later attempt whose rows deduplicate onto it), never a partial one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from evaluation.tasks import get_task
from orchestrator import metrics
from orchestrator.ledger import Ledger
from orchestrator.tracking import CellTracker
from storage.results import ResultsStore
from trainers.job import CellJob
from trainers.loop import StopRequested


class StoreHooks:
    """`trainers.cell.CellHooks` for one cell attempt."""

    def __init__(
        self,
        job: CellJob,
        ledger: Ledger,
        store: ResultsStore,
        report: Callable[[dict[str, Any]], None],
        stop: Callable[[], bool] = lambda: False,
        tracker: CellTracker | None = None,
    ) -> None:
        self.job, self.ledger, self.store, self.report = job, ledger, store, report
        self.stop = stop  # asked to stop (`orchestrator.stopping.StopFlag`)
        self.tracker = tracker  # experiment tracking (`orchestrator.tracking`), if any
        self.languages = 0
        self._phase_started = time.monotonic()
        self._phase = ""

    # Phase 2 is recorded under its own key too, so that every cell sharing a phase-2
    # model (same model, intermediate task, seed and phase-2 config) finds it done.
    def phase2_done(self) -> bool:
        return self.ledger.phase2_done(f"p2-{self.job.config.phase2_key}")

    def mark_phase2_done(self, checkpoint: str) -> None:
        self.ledger.mark_phase2_done(f"p2-{self.job.config.phase2_key}", checkpoint)
        self.ledger.mark_phase2_done(self.job.config.trial_key, checkpoint)

    def target_done(self, task: str) -> bool:
        cfg = self.job.config
        return self.ledger.target_done(cfg.target_keys[task], task) or self.ledger.target_done(
            cfg.trial_key, task
        )  # the second: a ledger written before target tasks had keys of their own

    def record(self, task: str, rows: list[dict]) -> None:
        job = self.job.config
        key = job.target_keys[task]  # the rows, the fragment and the ledger entry's key
        attempt = self.ledger.begin_attempt(key)  # a new fragment name per scoring
        # Provenance of the data behind these scores: the target task's, phase 2's, and the
        # tokenizer corpus of a model whose tokenizer is trained on local data.
        source = job.data.provenance(
            (*job.phase2_tasks, task), corpus=job.model.source == "local_config"
        )
        full = [
            {
                **row,
                "model": job.model.name,
                "model_params": job.model.params,
                "intermediate_task": job.intermediate_task,
                "seed": job.seed,
                "task_version": get_task(task).version,
                "data_source": source,
            }
            for row in rows
        ]
        if self.tracker is not None:  # before the fragment: a rerun finds them logged
            self.tracker.scores(task, full)
        fragment = self.store.write_rows(full, trial_key=key, target_task=task, attempt=attempt)
        self.ledger.mark_target_done(key, task, fragment, rows=len(full))
        languages = len({r["language"] for r in rows})
        self.languages += languages
        metrics.count("rows_written", len(full), job.sweep, job.model.name)
        metrics.count("languages_scored", languages, job.sweep, job.model.name)
        self.report({"phase": "scored", "target_task": task, "languages_scored": self.languages})

    def progress(self, phase: str, target_task: str | None, detail: dict) -> None:
        """Phase changes go to the ledger, Tune and the metrics; steps (and phases) to the
        tracker. Asked to stop: `StopRequested` (in training, the loop checkpoints this step
        first)."""
        if self.tracker is not None:  # first: a step that stops here is logged, then saved
            self.tracker.progress(phase, target_task, detail)
        if self.stop():
            raise StopRequested(f"{phase} {target_task or ''}".strip())
        if phase != self._phase:
            self._enter_phase(phase, target_task)

    def _enter_phase(self, phase: str, target_task: str | None) -> None:
        now = time.monotonic()
        job = self.job.config
        if self._phase:
            seconds = now - self._phase_started
            metrics.phase_duration(seconds, job.sweep, job.model.name, self._phase)
        self._phase, self._phase_started = phase, now
        self.ledger.mark_running(job.trial_key, phase, target_task)
        self.report(
            {"phase": phase, "target_task": target_task or "", "languages_scored": self.languages}
        )
