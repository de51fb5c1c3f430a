"""`xstilts plan`: the grid, the trainings it implies, and a GPU-hour estimate.

Cost model (documented in the README): a training step costs 6 x parameters FLOPs per
token, a forward pass for evaluation 2 x parameters per token. Tokens per example are the
phase's max sequence length (times the number of choices for multiple choice), unless
`cost.tokens_per_example` says otherwise. Examples seen in training are
min(max_steps x batch x accumulation, epochs x training examples), with training examples
capped by `data.max_examples.train`. GPU-hours = FLOPs / `cost.sustained_flops_per_gpu`
/ 3600, summed over the GPUs a model uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from evaluation.tasks import Format, TaskSpec, get_task
from orchestrator.grid import Cell, expand, model_entries, phase2_tasks
from orchestrator.spec import SweepSpec
from trainers.hparams import PhaseHparams
from trainers.ladder import get_model


@dataclass(frozen=True)
class CellPlan:
    cell: Cell
    params: int
    phase2_trainings: int  # 0 for `none`, else 1 (multitask trains once, over nine tasks)
    phase3_trainings: int
    languages: int
    gpu_hours: float
    done_targets: int = 0


def _tokens(spec: SweepSpec, task: TaskSpec, hp: PhaseHparams) -> int:
    per_example = spec.cost.tokens_per_example or hp.max_seq_length
    if task.format is Format.MULTIPLE_CHOICE:
        per_example *= max(2, len(task.labels))
    return int(per_example)


def train_tokens(spec: SweepSpec, task: TaskSpec, hp: PhaseHparams) -> float:
    examples = task.train_examples
    if spec.data.max_examples.train:
        examples = min(examples, spec.data.max_examples.train * max(1, len(task.train)))
    seen = float(hp.epochs or 1.0) * examples  # resolved specs always set epochs
    if hp.max_steps:
        seen = min(seen, hp.max_steps * hp.batch_size * hp.grad_accum)
    return seen * _tokens(spec, task, hp)


def eval_tokens(spec: SweepSpec, task: TaskSpec, hp: PhaseHparams) -> float:
    per_language = task.eval_examples
    if spec.data.max_examples.eval:
        per_language = min(per_language, spec.data.max_examples.eval)
    return per_language * len(task.languages) * _tokens(spec, task, hp)


def cell_flops(spec: SweepSpec, cell: Cell, params: int) -> float:
    flops = 0.0
    for name in phase2_tasks(cell.intermediate_task):
        flops += 6 * params * train_tokens(spec, get_task(name), spec.phase2.resolve(name))
    for name in cell.target_tasks:
        task, hp = get_task(name), spec.phase3.resolve(name)
        flops += 6 * params * train_tokens(spec, task, hp) + 2 * params * eval_tokens(
            spec, task, hp
        )
    return flops


def plan(spec: SweepSpec, done: Callable[[Cell], int] | None = None) -> list[CellPlan]:
    """One CellPlan per cell; `done(cell)` counts target tasks already scored."""
    entries = model_entries(spec)
    out = []
    for cell in expand(spec):
        params = get_model(cell.model, entries).params
        targets = [get_task(t) for t in cell.target_tasks]
        out.append(
            CellPlan(
                cell=cell,
                params=params,
                phase2_trainings=0 if cell.intermediate_task == "none" else 1,
                phase3_trainings=sum(t.needs_target_training for t in targets),
                languages=sum(len(t.languages) for t in targets),
                gpu_hours=cell_flops(spec, cell, params) / spec.cost.sustained_flops_per_gpu / 3600,
                done_targets=done(cell) if done else 0,
            )
        )
    return out


def longest_first(spec: SweepSpec, plans: list[CellPlan]) -> list[Cell]:
    """Cells in the order to schedule them: longest estimated wall time first.

    Longest-first list scheduling keeps the tail of a sweep short: simulated without
    start-up costs, the `scaling` grid on 8 x 8 GPUs packs within ~3 % of the lower bound,
    where ordering by model size alone gives ~9 % (`scheduling` keeps this order on Ray).
    """
    wall = wall_seconds(spec, plans)
    return [p.cell for p in sorted(plans, key=lambda p: wall[p.cell.trial_key], reverse=True)]


def wall_seconds(spec: SweepSpec, plans: list[CellPlan]) -> dict[str, float]:
    """Each cell's estimated wall time: its GPU-hours over the GPUs (or workers) it holds."""
    entries = model_entries(spec)
    out = {}
    for p in plans:
        res = get_model(p.cell.model, entries).resources
        gpus = max(1.0, res.workers * max(res.gpus_per_worker, 1.0))
        out[p.cell.trial_key] = p.gpu_hours * 3600 / gpus
    return out
