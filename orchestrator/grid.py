"""Cells of a sweep and their keys.

A cell is (model, intermediate task, seed). Its `trial_key` is a stable hash of those
fields plus a digest of exactly the config that changes its results: the model's
identity, the phase-2 and phase-3 hyperparameters of the tasks it trains, the data
source and caps, and the versions of the tasks involved. Storage, scheduling, resources
and cost-model fields never enter a key. `phase2_key` covers only what phase 2 depends
on, so a phase-2 model is shared by every cell that differs only in its target tasks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from evaluation.tasks import get_task
from orchestrator.spec import MULTITASK_TASKS, SweepSpec
from trainers.ladder import ModelEntry, get_model

KEY_VERSION = 1  # bump when the key derivation itself changes


def digest(payload: Any, n: int = 16) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


@dataclass(frozen=True)
class Cell:
    model: str
    intermediate_task: str
    seed: int
    target_tasks: tuple[str, ...]
    phase2_key: str
    trial_key: str

    @property
    def label(self) -> str:
        return f"{self.model}/{self.intermediate_task}/{self.seed}"


def model_identity(entry: ModelEntry) -> dict[str, Any]:
    """What about a model changes results (not its resources)."""
    return {
        "source": entry.source,
        "location": entry.location,
        "architecture": entry.architecture,
        "shape": [entry.layers, entry.hidden, entry.heads, entry.ffn, entry.vocab_size],
        "retrieval_layer": entry.retrieval_layer,
    }


def phase2_tasks(intermediate_task: str) -> tuple[str, ...]:
    if intermediate_task == "none":
        return ()
    if intermediate_task == "multitask":
        return MULTITASK_TASKS
    return (intermediate_task,)


def _data_identity(spec: SweepSpec) -> dict[str, Any]:
    return {"source": spec.data.source, "caps": spec.data.max_examples.model_dump()}


def phase2_payload(spec: SweepSpec, model: str, intermediate_task: str, seed: int) -> dict:
    entry = get_model(model, model_entries(spec))
    tasks = phase2_tasks(intermediate_task)
    return {
        "key_version": KEY_VERSION,
        "model": model,
        "model_identity": model_identity(entry),
        "intermediate_task": intermediate_task,
        "seed": seed,
        "data": _data_identity(spec),
        "phase2": {t: [get_task(t).version, spec.phase2.resolve(t).as_dict()] for t in tasks},
    }


def phase3_payload(spec: SweepSpec) -> dict:
    return {
        t: [get_task(t).version, spec.phase3.resolve(t).as_dict()]
        for t in sorted(spec.target_tasks)
    }


def model_entries(spec: SweepSpec) -> dict[str, ModelEntry]:
    """The spec's own ladder entries as ModelEntry values."""
    from trainers.ladder import Resources

    out = {}
    for name, e in spec.model_entries.items():
        out[name] = ModelEntry(
            name=name,
            source=e.source,
            location=e.location,
            architecture=e.architecture,
            params=e.params,
            layers=e.layers,
            hidden=e.hidden,
            heads=max(1, e.hidden // 64),
            ffn=4 * e.hidden,
            vocab_size=250_002,
            retrieval_layer=e.retrieval_layer
            if e.retrieval_layer is not None
            else e.layers // 2 + 1,
            resources=Resources(),
        )
    return out


def expand(spec: SweepSpec) -> list[Cell]:
    """Every cell of the sweep, in the order they should be scheduled: largest first."""
    phase3 = phase3_payload(spec)
    entries = model_entries(spec)
    cells = []
    for model in spec.models:
        for task in spec.intermediate_tasks:
            for seed in spec.seeds:
                p2 = phase2_payload(spec, model, task, seed)
                p2_key = digest(p2)
                cells.append(
                    Cell(
                        model=model,
                        intermediate_task=task,
                        seed=seed,
                        target_tasks=tuple(spec.target_tasks),
                        phase2_key=p2_key,
                        trial_key=digest({"phase2": p2_key, "phase3": phase3}),
                    )
                )
    size = {m: get_model(m, entries).params for m in spec.models}
    return sorted(cells, key=lambda c: -size[c.model])  # stable: spec order within a size


def result_config(spec: SweepSpec) -> dict[str, Any]:
    """The result-affecting part of a spec, field by field (for change detection)."""
    entries = model_entries(spec)
    return {
        "models": {m: model_identity(get_model(m, entries)) for m in spec.models},
        "data": _data_identity(spec),
        "phase2": {
            t: spec.phase2.resolve(t).as_dict()
            for i in spec.intermediate_tasks
            for t in phase2_tasks(i)
        },
        "phase3": phase3_payload(spec),
    }
