"""Rendering of `xstilts plan`: groups by default, every cell on request."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.table import Table

from orchestrator.plan import CellPlan, plan
from orchestrator.spec import SweepSpec


def done_counts(spec: SweepSpec) -> dict[str, int]:
    """Target tasks scored per trial key, from the ledger; {} for a sweep never run."""
    from orchestrator.ledger import Ledger
    from storage.errors import UserError

    try:
        states = Ledger(spec.storage, spec.name).all_states()
    except UserError:
        return {}
    return {key: len(state.targets) for key, state in states.items()}


def _hours(h: float) -> str:
    return f"{h:,.1f}" if h >= 0.1 else f"{h:.3f}"


def show_plan(
    spec: SweepSpec, show_cells: bool = False, done: dict[str, int] | None = None
) -> None:
    plans = plan(spec, (lambda c: done.get(c.trial_key, 0)) if done else None)
    console = Console()
    console.print(_cells_table(plans) if show_cells else _groups_table(plans))
    n_targets = len(spec.target_tasks)
    finished = sum(p.done_targets for p in plans)
    console.print(
        f"sweep {spec.name!r}: {len(plans)} cells = {len(spec.models)} models x "
        f"{len(spec.intermediate_tasks)} intermediate tasks x {len(spec.seeds)} seeds; "
        f"{n_targets} target tasks, {plans[0].languages} language evaluations per cell\n"
        f"phase-2 trainings: {sum(p.phase2_trainings for p in plans)} "
        f"(once per model, intermediate task and seed; none for 'none')\n"
        f"phase-3 trainings: {sum(p.phase3_trainings for p in plans)}\n"
        f"done: {finished} of {len(plans) * n_targets} (cell, target task) pairs\n"
        f"estimated GPU-hours: {_hours(sum(p.gpu_hours for p in plans))} "
        f"(6 x params x tokens / {spec.cost.sustained_flops_per_gpu:.3g} FLOP/s)"
    )


def _groups_table(plans: list[CellPlan]) -> Table:
    groups: dict[tuple[str, str], list[CellPlan]] = defaultdict(list)
    for p in plans:
        groups[(p.cell.model, p.cell.intermediate_task)].append(p)
    table = Table(title="grid")
    for col in ("model", "params", "intermediate", "seeds", "phase 2", "phase 3", "done", "GPU-h"):
        table.add_column(col, justify="left" if col in ("model", "intermediate") else "right")
    for (model, task), ps in groups.items():
        table.add_row(
            model,
            f"{ps[0].params:,}",
            task,
            ",".join(str(p.cell.seed) for p in ps),
            str(sum(p.phase2_trainings for p in ps)),
            str(sum(p.phase3_trainings for p in ps)),
            f"{sum(p.done_targets for p in ps)}/{len(ps) * len(ps[0].cell.target_tasks)}",
            _hours(sum(p.gpu_hours for p in ps)),
        )
    return table


def _cells_table(plans: list[CellPlan]) -> Table:
    table = Table(title="cells")
    for col in ("trial key", "model", "intermediate", "seed", "targets", "languages", "GPU-h"):
        table.add_column(col)
    for p in plans:
        c = p.cell
        table.add_row(
            c.trial_key,
            c.model,
            c.intermediate_task,
            str(c.seed),
            f"{p.done_targets}/{len(c.target_tasks)} done",
            str(p.languages),
            _hours(p.gpu_hours),
        )
    return table
