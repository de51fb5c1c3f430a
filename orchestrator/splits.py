"""Before anything trains: every step of every (model, trained task) splits among the
model's workers.

A distributed model's workers share each optimizer step's micro-batches out, as many each,
so that its numbers are those of one process (issue 16; `trainers.loop`). A task whose step
has a number of micro-batches the worker count does not divide can never run on that model:
`split_problems(spec)` names each one (`PhaseHparams.split_problem`, the check
`trainers.placement` repeats for each cell), without building anything, so that
`xstilts validate`, `plan` and `run` refuse the spec before Ray starts.
"""

from __future__ import annotations

from evaluation.tasks import get_task
from orchestrator.grid import model_entries, model_resources, phase2_tasks
from orchestrator.recipes import Phase
from orchestrator.spec import SweepSpec
from storage.errors import UserError
from trainers.ladder import get_model


def trained_tasks(spec: SweepSpec) -> dict[Phase, list[str]]:
    """The tasks each phase trains: phase 2's of every intermediate task; the target tasks
    that train in phase 3 and every stage before a target task."""
    phase2 = [t for i in spec.intermediate_tasks for t in phase2_tasks(i)]
    phase3 = [s for t in spec.target_tasks for s in (*spec.stages(t), t)]
    return {
        "phase2": list(dict.fromkeys(phase2)),
        "phase3": [t for t in dict.fromkeys(phase3) if get_task(t).needs_target_training],
    }


def split_problems(spec: SweepSpec) -> list[str]:
    """One line per (model, phase, task) whose steps do not split among the model's workers."""
    entries = model_entries(spec)
    tasks = trained_tasks(spec)
    out = []
    for model in spec.models:
        workers = model_resources(spec, get_model(model, entries)).workers
        for phase, names in tasks.items():
            for task in names:
                problem = spec.hparams(phase, task, model).split_problem(task, workers, model)
                if problem:
                    out.append(f"{phase}: {problem}")
    return out


def check_splits(spec: SweepSpec) -> None:
    problems = split_problems(spec)
    if problems:
        raise UserError("\n".join(problems))
