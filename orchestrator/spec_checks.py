"""Checks of a raw spec that span fields, and pydantic errors as one line per problem.

Cross-field checks run on the raw mapping, beside pydantic's field checks, so that one
`xstilts validate` reports every problem at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from evaluation.data.multitask import PHANG_TASKS
from evaluation.tasks import Role, suggest, task_names
from trainers.ladder import LADDER


def field_path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def all_field_names(model: type[BaseModel]) -> set[str]:
    """Every field name of a model and the models nested in it."""
    names: set[str] = set()
    stack: list[Any] = [model]
    while stack:
        cls = stack.pop()
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            for name, info in cls.model_fields.items():
                if name not in names:
                    names.add(name)
                    stack.append(info.annotation)
        for arg in getattr(cls, "__args__", ()):
            stack.append(arg)
    return names


def format_errors(err: ValidationError, model: type[BaseModel]) -> list[str]:
    known = all_field_names(model)
    out = []
    for e in err.errors():
        loc = list(e["loc"])
        # Drop pydantic's internal tags such as 'function-after[...]'.
        loc = [p for p in loc if not (isinstance(p, str) and "[" in p)]
        if e["type"] == "extra_forbidden":
            out.append(f"{field_path(loc)}: unknown field{suggest(str(loc[-1]), known)}")
            continue
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            msg = "required field is missing"
        elif isinstance(e.get("input"), str | int | float | bool):
            msg = f"{msg}, got {e['input']!r}"
        out.append(f"{field_path(loc)}: {msg}")
    return out


def cross_check(raw: dict[str, Any]) -> list[str]:
    checks = (_models, _duplicates, _resources, _overrides, _native)
    return [p for check in checks for p in check(raw)]


def _list(raw: dict[str, Any], key: str) -> list[Any]:
    value = raw.get(key)
    return value if isinstance(value, list) else []


def _models(raw: dict[str, Any]) -> list[str]:
    entries = raw.get("model_entries")
    known = set(LADDER) | (set(entries) if isinstance(entries, dict) else set())
    return [
        f"models[{i}]: unknown model {m!r}{suggest(str(m), known)}"
        for i, m in enumerate(_list(raw, "models"))
        if isinstance(m, str) and m not in known
    ]


def _duplicates(raw: dict[str, Any]) -> list[str]:
    out = []
    for key in ("models", "intermediate_tasks", "target_tasks", "seeds"):
        items = [x for x in _list(raw, key) if isinstance(x, str | int)]
        out += [f"{key}: {x!r} is listed twice" for x, n in Counter(items).items() if n > 1]
    return out


def _resources(raw: dict[str, Any]) -> list[str]:
    res = raw.get("resources")
    models = set(_list(raw, "models"))
    if not isinstance(res, dict):
        return []
    return [
        f"resources.{name}: model {name!r} is not in models{suggest(str(name), models)}"
        for name in res
        if name not in models
    ]


def _overrides(raw: dict[str, Any]) -> list[str]:
    inter = set(_list(raw, "intermediate_tasks"))
    allowed = {
        "phase2": (inter | (set(PHANG_TASKS) if "multitask" in inter else set())) - {"none"},
        "phase3": set(_list(raw, "target_tasks")) | set(task_names(Role.INTERMEDIATE)),
    }
    out = []
    for phase, tasks in allowed.items():
        cfg = raw.get(phase)
        overrides = cfg.get("overrides") if isinstance(cfg, dict) else None
        if not isinstance(overrides, dict):
            continue
        out += [
            f"{phase}.overrides.{t}: task {t!r} is not trained in {phase} of this sweep"
            f"{suggest(str(t), tasks)}"
            for t in overrides
            if t not in tasks
        ]
    return out


def _native(raw: dict[str, Any]) -> list[str]:
    """Tasks whose data is not on the Hub need a local directory for their native files."""
    from evaluation.tasks import get_task

    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    assert isinstance(data, dict)
    if data.get("source") == "local" or data.get("native_dir"):
        return []
    out = []
    for key in ("intermediate_tasks", "target_tasks"):
        for i, name in enumerate(_list(raw, key)):
            members = PHANG_TASKS if name == "multitask" else (name,)
            native = [m for m in members if m in task_names() and _needs_native(get_task(m), key)]
            if native:
                out.append(
                    f"{key}[{i}]: {name!r} needs {', '.join(native)} which is not on the Hub; "
                    "set data.native_dir to the directory holding its native files"
                )
    return out


def _needs_native(task: Any, key: str) -> bool:
    """Mandatory native sources (FEVER-NLI in ANLI+ is optional)."""
    sources = [*task.train, *task.dev, *task.eval.values()]
    return any(s.native and s.native != "fever_nli" for s in sources)
