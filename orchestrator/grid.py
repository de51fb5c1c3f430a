"""Cells of a sweep and their keys.

A cell is (model, intermediate task, seed). Its `trial_key` is a stable hash of those
fields plus a digest of exactly the config that changes its results: the model's
identity, the phase-2 and phase-3 hyperparameters of the tasks it trains, the data
source and caps, and the versions of the tasks involved; a model's `precision` when the spec
sets one other than the ladder's. Storage, scheduling, resources, the other execution
settings (compile, attention kernel, fused optimizer: the same numbers to reduction noise) and
cost-model fields never enter a key. `phase2_key` covers only what phase 2 depends
on, so a phase-2 model is shared by every cell that differs only in its target tasks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from evaluation.tasks import get_task
from orchestrator.spec import MULTITASK_TASKS, SweepSpec
from storage.errors import UserError
from trainers.ladder import Execution, ModelEntry, get_model

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


def model_identity(entry: ModelEntry, execution: Execution | None = None) -> dict[str, Any]:
    """What about a model changes results (not its resources).

    `execution` (the spec's settings of this model) adds its precision where it is not the
    ladder's own, so that keys of specs that leave it alone are what they always were.
    """
    identity: dict[str, Any] = {
        "source": entry.source,
        "location": entry.location,
        "architecture": entry.architecture,
        "shape": [entry.layers, entry.hidden, entry.heads, entry.ffn, entry.vocab_size],
        "retrieval_layer": entry.retrieval_layer,
    }
    if execution is not None and execution.precision != entry.execution.precision:
        identity["precision"] = execution.precision
    return identity


def model_execution(spec: SweepSpec, entry: ModelEntry) -> Execution:
    """The ladder's execution settings of `entry` with the spec's `execution.<model>`."""
    override = spec.execution.get(entry.name)
    return entry.execution.overridden(override.model_dump()) if override else entry.execution


def phase2_tasks(intermediate_task: str) -> tuple[str, ...]:
    if intermediate_task == "none":
        return ()
    if intermediate_task == "multitask":
        return MULTITASK_TASKS
    return (intermediate_task,)


def _data_identity(spec: SweepSpec) -> dict[str, Any]:
    """How a cell reads its data: hub, or a local directory in the Hub layout (`fixtures` and
    `local` read alike; which one a result came from is in its rows' `data_source`), with
    per-task sources where the spec sets them, and the example caps."""
    identity: dict[str, Any] = {
        "source": _read_as(spec.data.source),
        "caps": spec.data.max_examples.model_dump(),
    }
    if spec.data.tasks:
        identity["tasks"] = {t: _read_as(d.source) for t, d in sorted(spec.data.tasks.items())}
    return identity


def _read_as(source: str) -> str:
    return "local" if source == "fixtures" else source


def phase2_payload(spec: SweepSpec, model: str, intermediate_task: str, seed: int) -> dict:
    entry = get_model(model, model_entries(spec))
    tasks = phase2_tasks(intermediate_task)
    return {
        "key_version": KEY_VERSION,
        "model": model,
        "model_identity": model_identity(entry, model_execution(spec, entry)),
        "intermediate_task": intermediate_task,
        "seed": seed,
        "data": _data_identity(spec),
        "phase2": {t: [get_task(t).version, spec.phase2.resolve(t).key_dict()] for t in tasks},
    }


def phase3_payload(spec: SweepSpec, languages: bool = True) -> dict:
    """Per target task: its version, hyperparameters and, with `languages` and when the spec
    selects some, the languages it is evaluated in (so that adding a language scores it;
    a language selection changes which rows there are, never a value, so the sweep's
    change guard leaves it out)."""
    return {
        t: [get_task(t).version, spec.phase3.resolve(t).key_dict()]
        + ([sorted(spec.languages[t])] if languages and t in spec.languages else [])
        for t in sorted(spec.target_tasks)
    }


def model_entries(spec: SweepSpec) -> dict[str, ModelEntry]:
    """The spec's own ladder entries as ModelEntry values, their architecture, shape and
    parameter count read from the checkpoints (`trainers.checkpoint_facts`). Every stated
    value the checkpoint contradicts, and every checkpoint that cannot serve the sweep,
    is one line of one `UserError`."""
    from trainers.checkpoint_facts import problems, read_facts
    from trainers.ladder import BF16, Resources

    out, errors = {}, []
    for name, e in spec.model_entries.items():
        try:
            facts = read_facts(e.source, e.location)
        except UserError as err:
            errors.append(f"model_entries.{name}.location: {err}")
            continue
        # The kernel it will run with: the spec's execution settings over the Hub default.
        override = spec.execution.get(name)
        attention = (BF16.overridden(override.model_dump()) if override else BF16).attention
        found = problems(name, facts, e.model_dump(), attention)
        found += _too_long(spec, name, facts.max_tokens)
        if found:
            errors += found
            continue
        out[name] = ModelEntry(
            name=name,
            source=e.source,
            location=e.location,
            architecture=facts.architecture,
            params=e.params if facts.params is None else facts.params,  # type: ignore[arg-type]
            layers=facts.layers,
            hidden=facts.hidden,
            heads=facts.heads,
            ffn=facts.ffn,
            vocab_size=facts.vocab_size,
            retrieval_layer=e.retrieval_layer
            if e.retrieval_layer is not None
            else facts.layers // 2 + 1,
            resources=Resources(),
            execution=BF16,  # pretrained checkpoints, as the ladder's Hub entries
        )
    if errors:
        raise UserError("\n".join(errors))
    return out


def _too_long(spec: SweepSpec, name: str, max_tokens: int) -> list[str]:
    """Phases whose max_seq_length is past what the checkpoint's positions allow."""
    if name not in spec.models:
        return []
    phases = {
        "phase2": {t for i in spec.intermediate_tasks for t in phase2_tasks(i)},
        "phase3": set(spec.target_tasks),
    }
    return [
        f"{phase}: max_seq_length {length} of {task} is past the {max_tokens} tokens "
        f"model {name}'s position embeddings allow"
        for phase, tasks in phases.items()
        for task in sorted(tasks)
        if (length := getattr(spec, phase).resolve(task).max_seq_length) > max_tokens
    ]


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
        "models": {
            m: model_identity(e, model_execution(spec, e))
            for m in spec.models
            for e in [get_model(m, entries)]
        },
        "data": _data_identity(spec),
        "phase2": {
            t: spec.phase2.resolve(t).key_dict()
            for i in spec.intermediate_tasks
            for t in phase2_tasks(i)
        },
        "phase3": phase3_payload(spec, languages=False),
    }
