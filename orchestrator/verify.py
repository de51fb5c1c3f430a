"""What the ledger records, checked against the results store.

A target task the ledger marks done is only done while its fragment is there and whole:
present, its footer parses with the results schema, and it holds the rows that were
written. `run` forgets the damaged ones (their target tasks are scored again, the files
are left where they are) and `status` does not count their cells as done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from orchestrator.ledger import CellState
from storage.results import ResultsStore


@dataclass(frozen=True)
class Damage:
    trial_key: str
    target_task: str
    fragment: str
    why: str  # "is gone", "is unreadable (...)", "is damaged (N rows, M written)"

    def __str__(self) -> str:
        return f"{self.trial_key}: fragment {self.fragment} {self.why}"


def damaged(states: Mapping[str, CellState], store: ResultsStore) -> list[Damage]:
    """Every recorded target task whose fragment is not there and whole."""
    recorded = {
        fragment: state.rows.get(task)
        for state in states.values()
        for task, fragment in state.targets.items()
    }
    found = store.verify(recorded)
    return [
        Damage(key, task, fragment, found[fragment])
        for key, state in sorted(states.items())
        for task, fragment in sorted(state.targets.items())
        if fragment in found
    ]


def without(states: Mapping[str, CellState], damage: list[Damage]) -> dict[str, CellState]:
    """`states` as they are once the damaged target tasks are forgotten."""
    lost: dict[str, set[str]] = {}
    for d in damage:
        lost.setdefault(d.trial_key, set()).add(d.target_task)
    return {
        key: replace(state, targets={t: f for t, f in state.targets.items() if t not in lost[key]})
        if key in lost
        else state
        for key, state in states.items()
    }
