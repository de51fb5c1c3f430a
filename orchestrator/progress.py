"""The live progress display of `xstilts run`, drawn from the ledger.

A background thread polls the ledger (the single source of truth of what each cell is
doing, which also survives a Tune restore) and renders a rich panel: cells done /
running / failed / pending, each running cell's phase and target task, languages scored,
elapsed time and an estimate of the time remaining.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class CellLine:
    label: str
    state: str  # pending | running | done | failed
    phase: str = ""
    target_task: str = ""
    languages: int = 0


def render(lines: list[CellLine], elapsed: float, done_at_start: int) -> Group:
    n = {s: 0 for s in ("done", "running", "failed", "pending")}
    for line in lines:
        n[line.state] = n.get(line.state, 0) + 1
    done_now = n["done"] - done_at_start
    left = n["pending"] + n["running"]
    eta = f"{elapsed / done_now * left:,.0f} s" if done_now > 0 and left else "—"
    head = Text(
        f"cells: {n['done']} done, {n['running']} running, {n['failed']} failed, "
        f"{n['pending']} pending · languages scored: {sum(x.languages for x in lines)} · "
        f"elapsed {elapsed:,.0f} s · remaining ≈ {eta}"
    )
    table = Table(box=None, padding=(0, 2))
    for col in ("running cell", "phase", "target task", "languages"):
        table.add_column(col)
    for x in lines:
        if x.state == "running":
            table.add_row(x.label, x.phase, x.target_task or "—", str(x.languages))
    return Group(head, table) if table.row_count else Group(head)


class Progress:
    """Context manager: polls `snapshot()` every `interval` seconds and redraws."""

    def __init__(
        self,
        snapshot: Callable[[], list[CellLine]],
        interval: float = 2.0,
        redirect: bool = True,  # others' prints above the display (else they go their way)
        **console: Any,
    ) -> None:
        self.snapshot = snapshot
        self.interval = interval
        self.redirect = redirect
        self.console = Console(stderr=True, **console)
        self.started = time.monotonic()
        self.done_at_start = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        lines = self._safe_snapshot()
        self.done_at_start = sum(x.state == "done" for x in lines)
        self._live = Live(
            self._render(lines), console=self.console, refresh_per_second=1,
            redirect_stdout=self.redirect, redirect_stderr=self.redirect,
        )  # fmt: skip
        self._live.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._live is not None:
            self._live.update(self._render(self._safe_snapshot()))
            self._live.stop()
            if not self.console.is_terminal:  # rich ends the last frame without a newline there
                self.console.line()

    def _render(self, lines: list[CellLine]) -> Group:
        return render(lines, time.monotonic() - self.started, self.done_at_start)

    def _safe_snapshot(self) -> list[CellLine]:
        try:
            return self.snapshot()
        except Exception:  # a transient storage error must not kill the run
            return []

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self._live is not None:
                self._live.update(self._render(self._safe_snapshot()))


def lines_from_states(labels: Mapping[str, str], states: Mapping[str, Any]) -> list[CellLine]:
    """Map ledger states (trial key -> state object) onto display lines."""
    out = []
    for key, label in labels.items():
        s = states.get(key)
        if s is None:
            out.append(CellLine(label, "pending"))
            continue
        out.append(
            CellLine(
                label,
                getattr(s, "state", "pending"),
                getattr(s, "phase", "") or "",
                getattr(s, "target_task", "") or "",
                int(getattr(s, "languages_scored", 0) or 0),
            )
        )
    return out
