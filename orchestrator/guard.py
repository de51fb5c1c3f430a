"""Refuse a spec whose result-affecting config changed under an existing sweep name.

The first `run` of a sweep publishes `<sweep>/sweep.json` holding the result-affecting
part of its spec (`grid.result_config`). Every later `run` compares the current spec with
it and refuses, naming the fields that changed, rather than mixing results from two
configurations under one name. Extending a sweep is not a change: a new model, task or
seed only adds entries (which are then recorded); a different value for an existing
model, task or data setting is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.grid import result_config
from orchestrator.spec import SweepSpec
from storage.errors import UserError
from storage.files import Fence, resolve_storage
from storage.layout import SweepLayout

CORE = frozenset({"models", "data", "phase2", "phase3"})  # what every record holds


def changed_fields(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted paths of the leaves that differ between two JSON-like values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                out.append(sub)
            else:
                out += changed_fields(old[key], new[key], sub)
        return out
    return [] if old == new else [path or "(top level)"]


def check_or_record(layout: SweepLayout, spec: SweepSpec, fence: Fence | None = None) -> None:
    """Publish the sweep's config on first use; refuse a result-affecting change later,
    and a missing record under a sweep that already has results."""
    storage = resolve_storage(layout.config, fence)
    path = storage.root
    current = json.loads(json.dumps({**result_config(spec), "data_paths": data_paths(spec)}))
    payload = json.dumps({"sweep": spec.name, "config": current}, sort_keys=True, indent=1)
    if fence is not None:
        fence()  # a run that lost the sweep learns it here, before anything else
    if not storage.exists(path):
        _refuse_unrecorded(layout, storage.display(path))
    if storage.publish(path, payload.encode(), create_only=True):
        return
    stored = storage.read_bytes(path)
    try:
        record = json.loads(stored or b"")
        old, name = record["config"], record["sweep"]
        if not isinstance(old, dict) or not set(old) >= CORE:
            raise ValueError("sections missing")
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{storage.display(path)}: unreadable sweep record") from None
    if name != spec.name:
        raise UserError(f"{storage.display(path)}: records sweep {name!r}, not {spec.name!r}")
    changed = changed_fields(_shared(old, current), _shared(current, old))
    if changed:
        shown = ", ".join(changed[:6]) + (
            f" and {len(changed) - 6} more" if len(changed) > 6 else ""
        )
        raise UserError(
            f"sweep {spec.name!r} at {storage.uri} was run with a different result-affecting "
            f"config (changed: {shown}); use a new --name, or restore the old values"
        )
    merged = {k: {**old.get(k, {}), **v} if isinstance(v, dict) else v for k, v in current.items()}
    if merged != old:
        record = json.dumps({"sweep": spec.name, "config": merged}, sort_keys=True, indent=1)
        storage.publish(path, record.encode())


def data_paths(spec: SweepSpec) -> dict[str, str]:
    """Where the cells read their data (absolute): another directory under the same sweep
    name is another dataset, so it is a change. Hub data is named by task versions."""
    where = {"local_dir": spec.data.local_dir, "native_dir": spec.data.native_dir}
    where |= {f"tasks.{t}.local_dir": d.local_dir for t, d in sorted(spec.data.tasks.items())}
    return {k: str(Path(v).expanduser().resolve()) for k, v in where.items() if v}


def _refuse_unrecorded(layout: SweepLayout, shown: str) -> None:
    """No sweep record, yet results or ledger entries: recording the current spec would
    vouch for results it may not have produced."""
    for what in ("results", "ledger"):
        found = resolve_storage(getattr(layout, what))
        if found.list_files(found.root):
            raise UserError(
                f"{shown} is missing but the sweep already has {what}; restore it (from a "
                "backup or another copy of the sweep), or use a new --name"
            )


def _shared(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """`a` restricted to the sections `b` also has (a record older than a section knows
    nothing of it) and, in its per-name sections, to the names `b` also has."""
    out = {k: v for k, v in a.items() if k in b}
    for section in ("models", "phase2", "phase3", "data_paths"):
        if isinstance(a.get(section), dict) and isinstance(b.get(section), dict):
            out[section] = {k: v for k, v in a[section].items() if k in b[section]}
    return out
