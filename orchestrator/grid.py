"""Cells of a sweep and their keys.

A cell is (model, intermediate task, seed). Its `trial_key` is a stable hash of those
fields plus a digest of exactly the config that changes its results: the model's
identity, the phase-2 and phase-3 hyperparameters of the tasks it trains, the data
source and caps, the versions of the tasks involved, and the text of an `mlm` arm
(`mlm_identity`); a model's `precision` when the spec
sets one other than the ladder's. Storage, scheduling, resources, the other execution
settings (compile, attention kernel, fused optimizer: the same numbers to reduction noise) and
cost-model fields never enter a key. `phase2_key` covers only what phase 2 depends
on, so a phase-2 model is shared by every cell that differs only in its target tasks.
Each target task of a cell has its own key (`Cell.target_keys`: the phase-2 key and that
task's phase-3 config), under which its phase 3, predictions, rows and ledger entry live:
adding a target task to a sweep changes its cells' trial keys, never the others' work.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.data.synth.corpus import CORPUS_VERSION
from evaluation.tasks import Format, get_task
from orchestrator.arms import parse_intermediate
from orchestrator.recipes import Phase
from orchestrator.spec import SweepSpec
from storage.errors import UserError
from trainers.ladder import Execution, ModelEntry, Resources, get_model

KEY_VERSION = 2  # bump when the key derivation or what a key's numbers are changes
# 2: randomness keyed by (seed, step, micro-batch), unused weights stepped (issue 16), and
#    per-target-task keys (issue 18): rows of version 1 are not interchangeable with these.


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
    # Per target task, the key of its phase 3 and rows: the phase-2 key and that task's own
    # config only, so adding a target task (a new trial key) leaves the others' work.
    targets: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        return f"{self.model}/{self.intermediate_task}/{self.seed}"

    @property
    def target_keys(self) -> dict[str, str]:
        return dict(self.targets)


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


def model_resources(spec: SweepSpec, entry: ModelEntry) -> Resources:
    """The ladder's resources of `entry` with the spec's `resources.<model>`."""
    override = spec.resources.get(entry.name)
    return entry.resources.overridden(override.model_dump()) if override else entry.resources


def phase2_tasks(intermediate_task: str) -> tuple[str, ...]:
    """The tasks phase 2 trains for `intermediate_task` (a task, `none`, `multitask`, an
    arm of one: `mnli@n=2000`, or a mixture: `mnli+mlm`)."""
    return parse_intermediate(intermediate_task).tasks


def train_caps(spec: SweepSpec, intermediate_task: str) -> dict[str, int]:
    """Training examples per phase-2 task at most: its arm's `n=N`, else
    `data.max_examples.tasks` where it names the task."""
    sizes = parse_intermediate(intermediate_task).train_sizes()
    caps = spec.data.max_examples.tasks
    return {
        t: sizes.get(t, caps.get(t, 0))
        for t in phase2_tasks(intermediate_task)
        if t in sizes or t in caps
    }


def _task_payload(spec: SweepSpec, phase: Phase, task: str, model: str | None) -> list[Any]:
    """A trained task's version and hyperparameters (+ its own cap, where the spec sets one)."""
    out: list[Any] = [get_task(task).version, spec.hparams(phase, task, model).key_dict()]
    if task in spec.data.max_examples.tasks:
        out.append({"max_train": spec.data.max_examples.tasks[task]})
    return out


def _data_identity(spec: SweepSpec) -> dict[str, Any]:
    """How a cell reads its data: hub, or a local directory in the Hub layout (`fixtures` and
    `local` read alike; which one a result came from is in its rows' `data_source`), with
    per-task sources where the spec sets them, and the example caps."""
    identity: dict[str, Any] = {
        "source": _read_as(spec.data.source),
        "caps": spec.data.max_examples.model_dump(exclude={"tasks"}),  # per task: payloads
    }
    if spec.data.tasks:
        identity["tasks"] = {t: _read_as(d.source) for t, d in sorted(spec.data.tasks.items())}
    return identity


def _read_as(source: str) -> str:
    return "local" if source == "fixtures" else source


def phase2_payload(spec: SweepSpec, model: str, intermediate_task: str, seed: int) -> dict:
    """What phase 2 of a cell depends on. An arm (`mnli@n=2000`) is in its name; a
    per-task cap (`data.max_examples.tasks`) and per-model hyperparameters (`by_model`)
    only in the tasks' entries they change."""
    entry = protocol_model(spec, get_model(model, model_entries(spec)))
    tasks = phase2_tasks(intermediate_task)
    return {
        "key_version": KEY_VERSION,
        "model": model,
        "model_identity": model_identity(entry, model_execution(spec, entry)),
        "intermediate_task": intermediate_task,
        "seed": seed,
        "data": _data_identity(spec),
        "phase2": {t: _task_payload(spec, "phase2", t, model) for t in tasks},
    } | ({"mlm_corpus": mlm_identity(spec)} if _trains_mlm(tasks) else {})


def _trains_mlm(tasks: tuple[str, ...]) -> bool:
    return any(get_task(t).format is Format.MASKED_LM for t in tasks)


def mlm_identity(spec: SweepSpec) -> dict[str, Any]:
    """What the `mlm` arm's text is: its settings (languages, alpha, lines, a Hub corpus' id,
    config, split, column and revision) and, for a local folder, a digest of its files; the
    fixture corpus (not written yet when keys are computed) by its generator's version."""
    corpus = spec.data.corpus()
    if corpus is None:  # refused by validation (spec_checks); a key still needs a value
        return {}
    identity: dict[str, Any] = corpus.model_dump(exclude={"local_dir"})
    if spec.data.fixture_corpus():
        identity["fixtures"] = CORPUS_VERSION
    elif corpus.local_dir is not None:
        from trainers.tokenizer import dir_digest  # transformers: not for light commands

        folder = Path(corpus.local_dir).expanduser()
        identity["digest"] = dir_digest(folder) if folder.is_dir() else None
    return identity


def phase3_payload(spec: SweepSpec, model: str | None = None, languages: bool = True) -> dict:
    """Per target task: its version and hyperparameters for `model`; with `languages`, the
    languages it is evaluated in where they are not all of the task's (a selection or the
    protocol's list: adding a language scores it; it changes which rows there are, never a
    value, so the sweep's change guard leaves it out); the tasks trained before it, where
    it has stages (XCOPA's SIQA, the SQuAD encoder of Tatoeba under XTREME-R)."""
    out = {}
    for t in sorted(spec.target_tasks):
        entry = _task_payload(spec, "phase3", t, model)
        chosen = spec.eval_languages(t)
        if languages and (chosen != get_task(t).languages or spec.languages.get(t, "all") != "all"):
            entry.append(sorted(chosen))
        if stages := spec.stages(t):
            staged = [[s, *_task_payload(spec, "phase3", s, model)] for s in stages]
            entry.append({"stages": staged})
        out[t] = entry
    return out


def protocol_model(spec: SweepSpec, entry: ModelEntry) -> ModelEntry:
    """`entry` with the protocol's retrieval layer, unless the spec's own entry states one."""
    own = spec.model_entries.get(entry.name)
    if own is not None and own.retrieval_layer is not None:
        return entry
    return dataclasses.replace(entry, retrieval_layer=spec.bench.retrieval_layer(entry.layers))


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
            else spec.bench.retrieval_layer(facts.layers),
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
    phases: dict[Phase, set[str]] = {
        "phase2": {t for i in spec.intermediate_tasks for t in phase2_tasks(i)},
        "phase3": {s for t in spec.target_tasks for s in (t, *spec.stages(t))},
    }
    return [
        f"{phase}: max_seq_length {length} of {task} is past the {max_tokens} tokens "
        f"model {name}'s position embeddings allow"
        for phase, tasks in phases.items()
        for task in sorted(tasks)
        if (length := spec.hparams(phase, task, name).max_seq_length) > max_tokens
    ]


def expand(spec: SweepSpec) -> list[Cell]:
    """Every cell of the sweep, in the order they should be scheduled: largest first."""
    entries = model_entries(spec)
    cells = []
    for model in spec.models:
        phase3 = phase3_payload(spec, model)  # the same for every model without by_model
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
                        targets=tuple(
                            (t, target_key(p2_key, t, phase3[t])) for t in spec.target_tasks
                        ),
                    )
                )
    size = {m: get_model(m, entries).params for m in spec.models}
    return sorted(cells, key=lambda c: -size[c.model])  # stable: spec order within a size


def target_key(phase2_key: str, task: str, phase3: Any) -> str:
    """The key of one target task of a cell: its phase-2 model and its own phase-3 config."""
    return digest({"phase2": phase2_key, "target_task": task, "phase3": phase3})


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
            t: spec.hparams("phase2", t).key_dict()
            for i in spec.intermediate_tasks
            for t in phase2_tasks(i)
        },
        "phase3": phase3_payload(spec, languages=False),
    } | _per_model_and_task(spec)


def _per_model_and_task(spec: SweepSpec) -> dict[str, Any]:
    """Result config that only some specs have (absent otherwise, so that the others' stays
    what it was): per-model hyperparameters and per-task training caps."""
    out: dict[str, Any] = {}
    if spec.phase2.by_model or spec.phase3.by_model:
        out["by_model"] = {
            m: {
                "phase2": {
                    t: spec.hparams("phase2", t, m).key_dict()
                    for i in spec.intermediate_tasks
                    for t in phase2_tasks(i)
                },
                "phase3": phase3_payload(spec, m, languages=False),
            }
            for m in spec.models
            if m in spec.phase2.by_model or m in spec.phase3.by_model
        }
    if spec.data.max_examples.tasks:
        out["max_train"] = dict(sorted(spec.data.max_examples.tasks.items()))
    if any(_trains_mlm(phase2_tasks(i)) for i in spec.intermediate_tasks):
        out["mlm_corpus"] = mlm_identity(spec)
    return out
