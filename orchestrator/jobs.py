"""From a spec and its cells to the plain-valued jobs the cell runner receives.

A job's config comes from the spec, its paths from the sweep's `SweepLayout`; its runtime
values (attempt, threads, write fence) are set by the trial that runs it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from evaluation.data.mlm_corpus import MlmCorpus
from orchestrator.arms import parse_intermediate
from orchestrator.grid import (
    Cell,
    model_entries,
    model_execution,
    model_resources,
    phase2_tasks,
    protocol_model,
)
from orchestrator.spec import SweepSpec
from storage.layout import SweepLayout
from trainers.celldata import DataAccess
from trainers.job import CellConfig, CellJob, CellPaths
from trainers.ladder import ModelEntry, get_model


def absolute(path: str | None) -> str | None:
    """Trials run in other working directories: every local path must be absolute."""
    return None if path is None else str(Path(path).expanduser().resolve())


def resolved_model(spec: SweepSpec, name: str, entries: dict[str, ModelEntry]) -> ModelEntry:
    """The ladder entry with the spec's per-model resource and execution overrides and the
    protocol's retrieval layer applied."""
    entry = protocol_model(spec, get_model(name, entries))
    entry = dataclasses.replace(entry, execution=model_execution(spec, entry))
    if entry.source == "local_dir":  # a relative checkpoint directory, as the spec says it
        entry = dataclasses.replace(entry, location=str(absolute(entry.location)))
    return dataclasses.replace(entry, resources=model_resources(spec, entry))


def data_access(spec: SweepSpec) -> DataAccess:
    caps = spec.data.max_examples
    return DataAccess(
        source=spec.data.source,
        local_dir=absolute(spec.data.local_dir),
        native_dir=absolute(spec.data.native_dir),
        max_train=caps.train,
        max_dev=caps.dev,
        max_eval=caps.eval,
        per_task={t: (d.source, absolute(d.local_dir)) for t, d in spec.data.tasks.items()},
        languages={t: spec.eval_languages(t) for t in spec.target_tasks},
        train_caps=dict(spec.data.max_examples.tasks),
        mlm_corpus=mlm_corpus(spec),
    )


def mlm_corpus(spec: SweepSpec) -> MlmCorpus | None:
    """The `mlm` arm's corpus as plain values (a relative folder made absolute)."""
    corpus = spec.data.corpus()
    if corpus is None:
        return None
    languages = None if corpus.languages == "all" else tuple(corpus.languages)
    return MlmCorpus(
        local_dir=absolute(corpus.local_dir),
        hub=corpus.hub,
        hub_config=corpus.hub_config,
        split=corpus.split,
        text_column=corpus.text_column,
        revision=corpus.revision,
        languages=languages,
        alpha=corpus.alpha,
        max_lines=corpus.max_lines,
        dev_lines=corpus.dev_lines,
    )


def cell_data(spec: SweepSpec, data: DataAccess, intermediate_task: str) -> DataAccess:
    """`data` with what the arms say of their phase-2 tasks' training data: the sizes of
    `n=N`, the languages of `translate-train` and `langs[...]`."""
    setting = parse_intermediate(intermediate_task)
    sizes, languages = setting.train_sizes(), setting.train_languages()
    if not sizes and not languages:
        return data
    return dataclasses.replace(data, train_sizes=sizes, train_languages=languages)


def phase3_tasks(spec: SweepSpec, targets: tuple[str, ...]) -> tuple[str, ...]:
    """The tasks phase 3 trains: each target task and the stages before it."""
    out: list[str] = []
    for t in targets:
        out += [s for s in (*spec.stages(t), t) if s not in out]
    return tuple(out)


def cell_paths(layout: SweepLayout, cell: Cell) -> CellPaths:
    return CellPaths(layout, cell.phase2_key, cell.trial_key, cell.target_keys)


def build_jobs(spec: SweepSpec, layout: SweepLayout, cells: list[Cell]) -> dict[str, CellJob]:
    entries = model_entries(spec)
    data = data_access(spec)
    jobs = {}
    for cell in cells:
        tasks2 = phase2_tasks(cell.intermediate_task)
        config = CellConfig(
            sweep=spec.name,
            trial_key=cell.trial_key,
            phase2_key=cell.phase2_key,
            model=resolved_model(spec, cell.model, entries),
            intermediate_task=cell.intermediate_task,
            phase2_tasks=tasks2,
            seed=cell.seed,
            target_tasks=cell.target_tasks,
            target_keys=cell.target_keys,
            phase2_hparams={t: spec.hparams("phase2", t, cell.model) for t in tasks2},
            phase3_hparams={
                t: spec.hparams("phase3", t, cell.model)
                for t in phase3_tasks(spec, cell.target_tasks)
            },
            stages={t: spec.stages(t) for t in cell.target_tasks if spec.stages(t)},
            data=cell_data(spec, data, cell.intermediate_task),
            max_failures=spec.scheduling.max_failures,
        )
        jobs[cell.trial_key] = CellJob(config, cell_paths(layout, cell))
    return jobs
