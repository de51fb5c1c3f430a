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
from typing import Any

from orchestrator.grid import result_config
from orchestrator.spec import SweepSpec
from storage.errors import UserError
from storage.files import Fence, resolve_storage
from storage.layout import SweepLayout


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
    """Publish the sweep's config on first use; refuse a result-affecting change later."""
    storage = resolve_storage(layout.config, fence)
    path = storage.root
    current = json.loads(json.dumps(result_config(spec)))
    payload = json.dumps({"sweep": spec.name, "config": current}, sort_keys=True, indent=1)
    if storage.publish(path, payload.encode(), create_only=True):
        return
    stored = storage.read_bytes(path)
    try:
        old = json.loads(stored or b"")["config"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{storage.display(path)}: unreadable sweep record") from None
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


def _shared(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """`a` restricted, in its per-name sections, to the names `b` also has."""
    out = dict(a)
    for section in ("models", "phase2", "phase3"):
        if isinstance(a.get(section), dict) and isinstance(b.get(section), dict):
            out[section] = {k: v for k, v in a[section].items() if k in b[section]}
    return out
