"""The ledger: what each cell has finished, written explicitly beside the results store.

One small JSON object per cell, ``<storage>/<sweep>/ledger/<trial_key>.json``, replaced
atomically on every change, so concurrent cells never rewrite each other's record and a
crash leaves either the old or the new record. A cell has one writer at a time (its Ray
Tune trial; the sweep lease keeps a second driver out). The planner and the cell runner
ask the ledger what is done; nothing infers it from other files.

API:
    ``ledger = Ledger(storage_uri, sweep)``
    ``ledger.mark_running(trial_key, phase, target_task=None)`` — clears a past failure.
    ``ledger.mark_phase2_done(trial_key, checkpoint)``;
    ``ledger.phase2_done(trial_key) -> bool``.
    ``ledger.mark_target_done(trial_key, target_task, fragment, rows=None)``;
    ``ledger.target_done(trial_key, target_task) -> bool``.
    ``ledger.mark_failed(trial_key, cause)`` — cause is kept as one line.
    ``ledger.cell_state(trial_key) -> CellState``; ``ledger.all_states() -> dict[str, CellState]``.
    ``CellState.status(target_tasks) -> "failed" | "done" | "running" | "pending"``.
    ``cell_view(states, trial_key, target_keys) -> CellState | None`` — a cell with its
    target tasks, which are recorded under their own target keys (`grid.Cell`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from storage.errors import UserError
from storage.files import Fence, Storage, check_name, resolve_storage
from storage.layout import SweepLayout

LEDGER_VERSION = 1
_CAUSE_CHARS = 300


@dataclass(frozen=True)
class Running:
    phase: str
    target_task: str | None
    since: datetime


@dataclass(frozen=True)
class CellState:
    """Everything the ledger knows about one cell; an unknown cell is all empty."""

    trial_key: str
    phase2_checkpoint: str | None = None
    targets: Mapping[str, str] = field(default_factory=dict)  # target task -> fragment
    rows: Mapping[str, int] = field(default_factory=dict)  # target task -> rows written
    running: Running | None = None
    failed: str | None = None
    updated_at: datetime | None = None
    attempts: int = 0  # trial attempts begun (Tune retries and sweep restarts alike)

    @property
    def phase2_done(self) -> bool:
        return self.phase2_checkpoint is not None

    def target_done(self, target_task: str) -> bool:
        return target_task in self.targets

    def status(self, target_tasks: Iterable[str]) -> str:
        """``failed``, ``done`` (every target task scored), ``running`` or ``pending``."""
        if self.failed is not None:
            return "failed"
        if all(self.target_done(task) for task in target_tasks):
            return "done"
        return "running" if self.running is not None else "pending"


def cell_view(
    states: Mapping[str, CellState], trial_key: str, target_keys: Mapping[str, str]
) -> CellState | None:
    """One cell as the ledger knows it: attempts, phase and failure from the cell's own
    entry; each target task from the entry of its target key (`grid.Cell.target_keys`),
    which outlives the cell's trial key when the sweep gains a target task (or, from an
    older ledger, the cell's entry). None when the ledger knows nothing of it."""
    cell = states.get(trial_key)
    targets: dict[str, str] = {}
    rows: dict[str, int] = {}
    for task, key in target_keys.items():
        for source in (states.get(key), cell):
            if source is not None and task in source.targets:
                targets[task] = source.targets[task]
                if task in source.rows:
                    rows[task] = source.rows[task]
                break
    if cell is None and not targets:
        return None
    return replace(cell or CellState(trial_key), targets=targets, rows=rows)


class Ledger:
    """Per-cell records of one sweep."""

    def __init__(self, storage_uri: str, sweep: str, fence: Fence | None = None) -> None:
        self.sweep = check_name("sweep name", sweep)
        self.storage: Storage = resolve_storage(SweepLayout.of(storage_uri, sweep).ledger, fence)
        self.directory = self.storage.root

    def begin_attempt(self, trial_key: str) -> int:
        """Count a new attempt of the cell and return its number (0 for the first)."""
        self._update(trial_key, lambda s: replace(s, attempts=s.attempts + 1))
        return self.cell_state(trial_key).attempts - 1

    def mark_running(self, trial_key: str, phase: str, target_task: str | None = None) -> None:
        running = Running(phase, target_task, _now())
        self._update(trial_key, lambda s: replace(s, running=running, failed=None))

    def mark_phase2_done(self, trial_key: str, checkpoint: str) -> None:
        self._update(trial_key, lambda s: replace(s, phase2_checkpoint=checkpoint, running=None))

    def phase2_done(self, trial_key: str) -> bool:
        return self.cell_state(trial_key).phase2_done

    def mark_target_done(
        self, trial_key: str, target_task: str, fragment: str, rows: int | None = None
    ) -> None:
        check_name("target task", target_task)

        def done(state: CellState) -> CellState:
            targets = {**state.targets, target_task: fragment}
            counts = {k: v for k, v in state.rows.items() if k != target_task}
            if rows is not None:
                counts[target_task] = rows
            return replace(state, targets=targets, rows=counts, running=None)

        self._update(trial_key, done)

    def forget_target(self, trial_key: str, target_task: str) -> None:
        """Undo `mark_target_done` (its fragment is gone): the task will be scored again."""

        def forget(state: CellState) -> CellState:
            return replace(
                state,
                targets={k: v for k, v in state.targets.items() if k != target_task},
                rows={k: v for k, v in state.rows.items() if k != target_task},
            )

        self._update(trial_key, forget)

    def target_done(self, trial_key: str, target_task: str) -> bool:
        return self.cell_state(trial_key).target_done(target_task)

    def mark_failed(self, trial_key: str, cause: str) -> None:
        line = " ".join(cause.split()) or "unknown cause"
        if len(line) > _CAUSE_CHARS:
            line = line[: _CAUSE_CHARS - 3] + "..."
        self._update(trial_key, lambda s: replace(s, failed=line, running=None))

    def cell_state(self, trial_key: str) -> CellState:
        path = self._path(trial_key)
        data = self.storage.read_bytes(path)
        if data is None:
            return CellState(trial_key)
        return self._decode(path, data)

    def all_states(self) -> dict[str, CellState]:
        """Every recorded cell, by trial key (cells never started are absent)."""
        names = self.storage.list_files(self.directory)
        keys = [n.removesuffix(".json") for n in names if n.endswith(".json")]
        workers = 1 if self.storage.is_local else 16
        with ThreadPoolExecutor(max_workers=workers) as pool:
            states = list(pool.map(self.cell_state, keys))
        return {state.trial_key: state for state in states}

    def _path(self, trial_key: str) -> str:
        return self.storage.path(check_name("trial key", trial_key) + ".json")

    def _update(self, trial_key: str, change: Callable[[CellState], CellState]) -> None:
        state = replace(change(self.cell_state(trial_key)), updated_at=_now())
        payload = json.dumps(_encode(self.sweep, state), indent=1, sort_keys=True)
        self.storage.publish(self._path(trial_key), payload.encode())

    def _decode(self, path: str, data: bytes) -> CellState:
        try:
            return _decode(json.loads(data))
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(
                f"corrupted ledger entry {self.storage.display(path)} ({type(exc).__name__}); "
                "nothing was changed: move it aside to run that cell again"
            ) from exc


def _now() -> datetime:
    return datetime.now(UTC)


def _encode(sweep: str, state: CellState) -> dict[str, Any]:
    running = state.running
    return {
        "ledger_version": LEDGER_VERSION,
        "sweep": sweep,
        "trial_key": state.trial_key,
        "phase2_checkpoint": state.phase2_checkpoint,
        "targets": dict(state.targets),
        "rows": dict(state.rows),
        "running": None
        if running is None
        else {
            "phase": running.phase,
            "target_task": running.target_task,
            "since": running.since.isoformat(),
        },
        "failed": state.failed,
        "updated_at": state.updated_at.isoformat() if state.updated_at else None,
        "attempts": state.attempts,
    }


def _decode(raw: dict[str, Any]) -> CellState:
    if raw["ledger_version"] != LEDGER_VERSION:
        raise ValueError(f"ledger_version {raw['ledger_version']}")
    running = raw["running"]
    targets = raw["targets"]
    if not isinstance(targets, dict):
        raise TypeError("targets")
    return CellState(
        trial_key=str(raw["trial_key"]),
        phase2_checkpoint=raw["phase2_checkpoint"],
        targets={str(k): str(v) for k, v in targets.items()},
        rows={str(k): int(v) for k, v in (raw.get("rows") or {}).items()},
        running=None
        if running is None
        else Running(
            running["phase"], running["target_task"], datetime.fromisoformat(running["since"])
        ),
        failed=raw["failed"],
        updated_at=datetime.fromisoformat(raw["updated_at"]) if raw["updated_at"] else None,
        attempts=int(raw.get("attempts", 0)),
    )
