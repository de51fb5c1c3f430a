"""Phase-3 stages: tasks trained on a target task's encoder, in order, before it (SIQA before
XCOPA, SQuAD before Tatoeba and BUCC under XTREME-R), each with a head of its own that is
then dropped; the target task's own phase 3 (or retrieval) starts from the last one's encoder.

One sequence for both paths (`trainers.cell`): `stage_plan` names each stage of a target task
(its task, seed, checkpoint directory, published encoder and Ray Train run), `run_stages`
trains them in that order, each from the encoder the one before it left. A one-process model
trains them in place on one `Pretrained`; a distributed one trains each as its own Train run
from the encoder URI the one before published (``.../stages/<stage>/encoder``). Every file of
a target task's stages lives under ``cells/<key>/phase3/<task>/stages/<stage>``;
`clear_stages` deletes them once the target task's rows are recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from storage.files import resolve_storage
from trainers.celldata import derive_seed
from trainers.checkpoint import CheckpointStore
from trainers.distributed import run_name
from trainers.job import CellJob

log = logging.getLogger("trainers")
Start = TypeVar("Start")  # what a stage starts from: a model in place, or an encoder URI


@dataclass(frozen=True)
class Stage:
    task: str  # the task trained (siqa)
    target: str  # the target task it comes before (xcopa)
    seed: int
    checkpoints: str  # its `CheckpointStore` (and, distributed, its layout)
    encoder: str  # where a distributed stage publishes its encoder: the next one's start
    run: str  # its Ray Train run name (distributed)


def stage_plan(job: CellJob, target: str) -> tuple[Stage, ...]:
    """The stages of target task `target`, in the order they train."""
    cfg, layout = job.config, job.paths.layout
    key = cfg.target_keys[target]
    out = []
    for task in cfg.stages.get(target, ()):
        root = ("phase3", target, "stages", task)
        out.append(
            Stage(
                task=task,
                target=target,
                seed=derive_seed(cfg.seed, "phase3", target, task),
                checkpoints=layout.cell(key, *root),
                encoder=layout.cell(key, *root, "encoder"),
                run=run_name(key, "phase3", f"{target}-stage-{task}"),
            )
        )
    return tuple(out)


def run_stages(
    job: CellJob, target: str, start: Start, train: Callable[[Stage, Start], Start]
) -> Start:
    """Train the stages of `target` in order, each by `train(stage, start)` from what the one
    before returned; what the last one returned (`start` when there are none)."""
    for stage in stage_plan(job, target):
        log.info("phase3 stage %s before %s %s", stage.task, target, job.config.trial_key)
        start = train(stage, start)
    return start


def clear_stages(job: CellJob, target: str) -> None:
    """Delete the checkpoints and published encoders of `target`'s stages."""
    for stage in stage_plan(job, target):
        CheckpointStore(stage.checkpoints, job.runtime.fence).clear()
        storage = resolve_storage(stage.encoder, job.runtime.fence)
        for name in storage.list_files(storage.root):
            storage.delete(storage.path(name))
