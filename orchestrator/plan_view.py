"""Rendering of `xstilts plan`: groups by default, every cell on request."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.table import Table

from orchestrator.plan import (
    POWER_SIMULATIONS,
    CellPlan,
    Noise,
    family_size,
    plan,
    power_table,
    recipe_rows,
)
from orchestrator.spec import SweepSpec
from trainers.hparams import EVAL_AT_END


def done_counts(spec: SweepSpec) -> dict[str, int]:
    """Target tasks scored per cell (trial key), from the ledger; {} for a sweep never run."""
    from orchestrator.grid import expand
    from orchestrator.ledger import Ledger, cell_view
    from storage.errors import UserError

    try:
        states = Ledger(spec.storage, spec.name).all_states()
    except UserError:
        return {}
    views = {c.trial_key: cell_view(states, c.trial_key, c.target_keys) for c in expand(spec)}
    return {key: len(view.targets) for key, view in views.items() if view is not None}


def _hours(h: float) -> str:
    return f"{h:,.1f}" if h >= 0.1 else f"{h:.3f}"


def show_plan(
    spec: SweepSpec, show_cells: bool = False, done: dict[str, int] | None = None
) -> None:
    plans = plan(spec, (lambda c: done.get(c.trial_key, 0)) if done else None)
    console = Console()
    console.print(_cells_table(plans) if show_cells else _groups_table(plans))
    if show_cells:
        console.print(_recipe_table(spec))
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


def _recipe_table(spec: SweepSpec) -> Table:
    """Every hyperparameter per phase and task, with its source (`recipe_rows`)."""
    table = Table(title=f"recipe {spec.recipe!r} under the spec (protocol {spec.protocol})")
    for col in ("phase", "task", "model", "setting", "value", "source"):
        table.add_column(col, overflow="fold")
    last = None
    for r in recipe_rows(spec):
        first = (r.phase, r.task) != last
        last = (r.phase, r.task)
        table.add_row(
            r.phase if first else "",
            r.task if first else "",
            r.model or "all",
            r.name,
            _setting(r.name, r.value),
            r.source,
            end_section=False,
        )
    return table


def _setting(name: str, value: object) -> str:
    if value is None:
        return "—"
    if name == "eval_every" and value == EVAL_AT_END:
        return "at the end"
    return str(value)


def _slope(value: float | None) -> str:
    if value is None:
        return "—"
    return "∞" if value == float("inf") else f"{value:.2f}"


def show_power(spec: SweepSpec, noise: Noise) -> None:
    """The minimum detectable slope of the plan, and what more seeds or sizes buy."""
    rows = power_table(spec, noise)
    m = family_size(spec)
    families = sorted(rows[0].formula)
    console = Console()
    table = Table(title="power: minimum detectable slope of delta_disp, points per decade")
    for col in ("change", "sizes", "seeds", "GPU-h", "SE(slope)"):
        table.add_column(col, justify="left" if col == "change" else "right")
    for f in families:
        label = "m = 1 (primary)" if f == 1 else f"m = {f} (Holm)"
        table.add_column(f"MDS {label}", justify="right")
    for r in rows:
        table.add_row(
            r.change,
            str(len(r.models)),
            str(r.n_seeds),
            _hours(r.gpu_hours),
            _slope(r.se),
            *(f"{_slope(r.simulated[f])} ({_slope(r.formula[f])})" for f in families),
        )
    console.print(table)
    if not any(r.change.startswith("+1 size") for r in rows):
        console.print("+1 size: the model ladder has no other size of this family")
    sizes = ", ".join(
        f"{name} {p / 1e9:.3g}B" if p >= 1e9 else f"{name} {p / 1e6:.3g}M"
        for name, p in zip(rows[0].models, rows[0].params, strict=True)
    )
    console.print(
        f"sweep {spec.name!r}: sizes {sizes}; {len(spec.seeds)} seeds; m = {m} slope tests "
        f"(intermediate tasks other than none x target tasks)\n"
        f"noise: {noise.source}\n"
        "test: the report's (random-effects meta-regression on log10(params), Knapp-Hartung t "
        "on k - 2 df, two-sided at 0.05 / m); MDS = the true slope it detects with 80 % power.\n"
        "MDS cells: simulated (formula). Simulated: the report's own fit over "
        f"{POWER_SIMULATIONS} stores; formula: scaling.minimum_detectable_slope at the "
        "expected SE (noncentral t on k - 2 df: the slope / SE at which |t| exceeds "
        "t(1 - 0.05/2m) with 80 % power, times SE).\n"
        "SE(slope) = sqrt((seed_sd^2 / seeds + model_sd^2) / sum (x - mean x)^2), "
        "x = log10(params); '—': no test (< 3 sizes or 1 seed)."
    )
