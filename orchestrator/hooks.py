"""The cell runner's hooks, backed by the ledger, the results store and Tune.

`record` is the only write path of results: one fragment, published atomically and
create-only, and only then the ledger entry. A crash between the two leaves a fragment
whose rows are identical to what the re-run writes (same name, same attempt... or a
later attempt whose rows deduplicate onto it), never a partial one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from evaluation.tasks import get_task
from orchestrator import metrics
from orchestrator.ledger import Ledger
from storage.results import ResultsStore
from trainers.cell import CellJob

PAUSE_ENV = "XSTILTS_TEST_PAUSE_AT"  # test-only: "<point>" or "<point>:<n>" (nth time)
PAUSE_FILE_ENV = "XSTILTS_TEST_PAUSE_FILE"
TRACE_ENV = "XSTILTS_TEST_TRACE"
_SEEN: dict[str, int] = {}


def pause_point(point: str) -> None:
    """Fault-injection hook for the kill tests: announce the point, then wait forever.

    With `XSTILTS_TEST_PAUSE_AT=<point>[:<n>]` and `XSTILTS_TEST_PAUSE_FILE=<path>`, the
    first process to reach `point` for the n-th time writes the file and sleeps until it
    is killed; once the file exists nobody pauses again. Unset (always, outside tests),
    this does nothing.
    """
    want, marker = os.environ.get(PAUSE_ENV), os.environ.get(PAUSE_FILE_ENV)
    if not want or not marker:
        return
    name, _, nth = want.partition(":")
    if name != point:
        return
    _SEEN[point] = _SEEN.get(point, 0) + 1
    if _SEEN[point] < int(nth or 1):
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, f"{point} {os.getpid()}\n".encode())
    os.close(fd)
    while True:
        time.sleep(3600)


def trace(line: str) -> None:
    """Test-only: append a line to `$XSTILTS_TEST_TRACE` (e.g. the steps an attempt ran)."""
    path = os.environ.get(TRACE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


class StoreHooks:
    """`trainers.cell.CellHooks` for one cell attempt."""

    def __init__(
        self,
        job: CellJob,
        ledger: Ledger,
        store: ResultsStore,
        report: Callable[[dict[str, Any]], None],
    ) -> None:
        self.job, self.ledger, self.store, self.report = job, ledger, store, report
        self.languages = 0
        self._phase_started = time.monotonic()
        self._phase = ""
        self._stepped: set[tuple[str, str | None]] = set()

    # Phase 2 is recorded under its own key too, so that every cell sharing a phase-2
    # model (same model, intermediate task, seed and phase-2 config) finds it done.
    def phase2_done(self) -> bool:
        return self.ledger.phase2_done(f"p2-{self.job.phase2_key}")

    def mark_phase2_done(self, checkpoint: str) -> None:
        self.ledger.mark_phase2_done(f"p2-{self.job.phase2_key}", checkpoint)
        self.ledger.mark_phase2_done(self.job.trial_key, checkpoint)

    def target_done(self, task: str) -> bool:
        return self.ledger.target_done(self.job.trial_key, task)

    def record(self, task: str, rows: list[dict]) -> None:
        job = self.job
        full = [
            {
                **row,
                "model": job.model.name,
                "model_params": job.model.params,
                "intermediate_task": job.intermediate_task,
                "seed": job.seed,
                "task_version": get_task(task).version,
            }
            for row in rows
        ]
        fragment = self.store.write_rows(
            full, trial_key=job.trial_key, target_task=task, attempt=job.attempt
        )
        pause_point("after_fragment")
        self.ledger.mark_target_done(job.trial_key, task, fragment)
        languages = len({r["language"] for r in rows})
        self.languages += languages
        metrics.count("rows_written", len(full), job.sweep, job.model.name)
        metrics.count("languages_scored", languages, job.sweep, job.model.name)
        self.report({"phase": "scored", "target_task": task, "languages_scored": self.languages})

    def progress(self, phase: str, target_task: str | None, detail: dict) -> None:
        """Phase changes go to the ledger, Tune and the metrics; steps only to the pause hook."""
        step = detail.get("step")
        if phase != self._phase:
            self._enter_phase(phase, target_task)
        if step is not None and (phase, target_task) not in self._stepped:
            self._stepped.add((phase, target_task))
            trace(f"{self.job.trial_key} attempt={self.job.attempt} {phase} {target_task} {step}")
        pause_point(phase if step is None else f"{phase}_step")

    def _enter_phase(self, phase: str, target_task: str | None) -> None:
        now = time.monotonic()
        job = self.job
        if self._phase:
            seconds = now - self._phase_started
            metrics.phase_duration(seconds, job.sweep, job.model.name, self._phase)
        self._phase, self._phase_started = phase, now
        self.ledger.mark_running(job.trial_key, phase, target_task)
        self.report(
            {"phase": phase, "target_task": target_task or "", "languages_scored": self.languages}
        )
