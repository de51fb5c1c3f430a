"""The task registry: duplicates are errors, unknown names get a suggestion."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Iterable

from evaluation.tasks.spec import Role, TaskSpec
from storage.errors import UserError

_TASKS: dict[str, TaskSpec] = {}
_loaded = False


def register(*specs: TaskSpec) -> None:
    for spec in specs:
        if spec.name in _TASKS:
            raise ValueError(f"task {spec.name!r} is registered twice")
        _TASKS[spec.name] = spec


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from evaluation.tasks import defs

    for info in pkgutil.iter_modules(defs.__path__):
        importlib.import_module(f"{defs.__name__}.{info.name}")


def suggest(name: str, choices: Iterable[str]) -> str:
    """' — did you mean 'x'?' for the closest name, or '' when nothing is close."""
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f" — did you mean {close[0]!r}?" if close else ""


def get_task(name: str) -> TaskSpec:
    _load()
    try:
        return _TASKS[name]
    except KeyError:
        raise UserError(f"unknown task {name!r}{suggest(name, _TASKS)}") from None


def all_tasks(role: Role | None = None) -> list[TaskSpec]:
    _load()
    return [t for t in _TASKS.values() if role is None or t.role is role]


def task_names(role: Role | None = None) -> list[str]:
    return [t.name for t in all_tasks(role)]
