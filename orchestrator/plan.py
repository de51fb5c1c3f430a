"""`xstilts plan`: the grid, the trainings it implies, and a GPU-hour estimate.

Cost model (documented in the README): a training step costs 6 x parameters FLOPs per
token, a forward pass for evaluation 2 x parameters per token. Tokens per example are the
phase's max sequence length (times the number of choices for multiple choice), unless
`cost.tokens_per_example` says otherwise. Examples seen in training are
min(max_steps x batch x accumulation, epochs x training examples), with training examples
capped by `data.max_examples` (`train`, and per task: `tasks` or an arm's `n=N`); phase-3
stages (SIQA before COPA) count as trainings. GPU-hours = FLOPs / `cost.sustained_flops_per_gpu`
/ 3600, summed over the GPUs a model uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.tasks import Format, TaskSpec, get_task
from orchestrator.arms import parse_intermediate
from orchestrator.grid import Cell, expand, model_entries, phase2_tasks, train_caps
from orchestrator.recipes import Phase
from orchestrator.spec import SweepSpec
from storage.errors import UserError
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


def train_tokens(
    spec: SweepSpec, task: TaskSpec, hp: PhaseHparams, cap: int | None = None, languages: int = 1
) -> float:
    """Tokens one training run of `task` reads; `cap`: its examples at most (an arm's n=N or
    `data.max_examples.tasks`); `languages`: versions of its data pooled (an arm's
    `translate-train` or `langs[...]`; a translation is as large as the English original)."""
    examples = task.train_examples * languages
    if spec.data.max_examples.train:
        examples = min(examples, spec.data.max_examples.train * max(1, len(task.train)))
    cap = cap or spec.data.max_examples.tasks.get(task.name)
    if cap:
        examples = min(examples, cap)
    seen = float(hp.epochs or 1.0) * examples  # resolved specs always set epochs
    if hp.max_steps:
        seen = min(seen, hp.max_steps * hp.batch_size * hp.grad_accum)
    return seen * _tokens(spec, task, hp)


def eval_tokens(spec: SweepSpec, task: TaskSpec, hp: PhaseHparams) -> float:
    per_language = task.eval_examples
    if spec.data.max_examples.eval:
        per_language = min(per_language, spec.data.max_examples.eval)
    return per_language * len(spec.eval_languages(task.name)) * _tokens(spec, task, hp)


def cell_flops(spec: SweepSpec, cell: Cell, params: int) -> float:
    flops = 0.0
    caps = train_caps(spec, cell.intermediate_task)
    pooled = parse_intermediate(cell.intermediate_task).train_languages()
    for name in phase2_tasks(cell.intermediate_task):
        hp2 = spec.hparams("phase2", name, cell.model)
        languages = len(pooled.get(name, ("en",)))
        flops += 6 * params * train_tokens(spec, get_task(name), hp2, caps.get(name), languages)
    for name in cell.target_tasks:
        task, hp = get_task(name), spec.hparams("phase3", name, cell.model)
        for stage in spec.stages(name):
            hp_s = spec.hparams("phase3", stage, cell.model)
            flops += 6 * params * train_tokens(spec, get_task(stage), hp_s)
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
                phase3_trainings=sum(
                    t.needs_target_training + len(spec.stages(t.name)) for t in targets
                ),
                languages=sum(len(spec.eval_languages(t.name)) for t in targets),
                gpu_hours=cell_flops(spec, cell, params) / spec.cost.sustained_flops_per_gpu / 3600,
                done_targets=done(cell) if done else 0,
            )
        )
    return out


@dataclass(frozen=True)
class RecipeRow:
    phase: str
    task: str  # a stage: "siqa (before xcopa)"
    model: str  # "" for every model; a model's name where `by_model` changes the value
    name: str
    value: object
    source: str


def recipe_rows(spec: SweepSpec) -> list[RecipeRow]:
    """Every hyperparameter of every task the sweep trains (and of retrieval's encoder
    pass), with where it comes from; a model's own rows where `by_model` changes a value."""
    trained: dict[Phase, list[tuple[str, str]]] = {
        "phase2": [(t, t) for i in spec.intermediate_tasks for t in phase2_tasks(i)],
        "phase3": [(s, f"{s} (before {t})") for t in spec.target_tasks for s in spec.stages(t)]
        + [(t, t) for t in spec.target_tasks],
    }
    rows = []
    for phase, tasks in trained.items():
        for task, label in dict.fromkeys(tasks):
            common = spec.hparam_sources(phase, task)
            if not get_task(task).train:  # retrieval on the encoder: only the length it reads
                common = {"max_seq_length": common["max_seq_length"]}
                label = f"{label} (encoder only)"
            rows += [RecipeRow(phase, label, "", k, c.value, c.source) for k, c in common.items()]
            for model in spec.models:
                own = spec.hparam_sources(phase, task, model)
                rows += [
                    RecipeRow(phase, label, model, k, c.value, c.source)
                    for k, c in own.items()
                    if k in common and c != common[k]
                ]
    return rows


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


# ----------------------------------------------------------------------------- power
# `xstilts plan SPEC --power` (issue 15, item 8): the minimum detectable slope of the
# dispersion effect per decade of parameters, before any GPU-hour is spent. The test is
# the report's own (`evaluation.analysis.scaling`: random-effects meta-regression, Knapp–
# Hartung t on k − 2 df, Holm over m tests); the analytic value is its
# `minimum_detectable_slope` at the expected slope SE, the simulated one runs its
# `fit_contrast` on `POWER_SIMULATIONS` stores without a trend and finds the planted slope
# that it detects in 80 % of them (adding a linear trend in log10(params) to every model
# shifts the fitted slope by exactly that much and leaves the SE unchanged, so one set of
# null fits gives the power at every slope).

DEFAULT_SEED_SD = 0.5  # points: SD of one seed's paired dispersion effect (T − none)
DEFAULT_MODEL_SD = 0.3  # points: between-model quirk SD (bench/calibration.py's quirk_sd)
POWER_SIMULATIONS = 500
POWER_SEED = 15


@dataclass(frozen=True)
class Noise:
    seed_sd: float
    model_sd: float
    source: str  # where each number comes from


@dataclass(frozen=True)
class PowerRow:
    change: str
    models: tuple[str, ...]
    params: tuple[int, ...]
    n_seeds: int
    gpu_hours: float
    se: float | None  # expected SE of the slope; None: the test cannot run
    formula: dict[int, float | None]  # family size → scaling.minimum_detectable_slope
    simulated: dict[int, float | None]  # family size → slope detected in 80 % of stores


def slope_se(params: Sequence[int], n_seeds: int, noise: Noise) -> float | None:
    """Expected SE of the meta-regression slope: per-model variance seed_sd² / n + model_sd²
    over Σ (x − x̄)², x = log10(params); None with < 3 sizes or one seed (no inference)."""
    if len(params) < 3 or n_seeds < 2:
        return None
    x = np.log10(np.asarray(params, dtype=np.float64))
    sxx = float(((x - x.mean()) ** 2).sum())
    return math.sqrt((noise.seed_sd**2 / n_seeds + noise.model_sd**2) / sxx)


def formula_mds(params: Sequence[int], n_seeds: int, noise: Noise, family: int) -> float | None:
    """The report's own `minimum_detectable_slope` at the expected slope SE."""
    from evaluation.analysis.scaling import minimum_detectable_slope

    se = slope_se(params, n_seeds, noise)
    return None if se is None else minimum_detectable_slope(se, len(params) - 2, family)


def null_fits(
    params: Sequence[int], n_seeds: int, noise: Noise, n: int = POWER_SIMULATIONS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Slopes and SEs the report's fit gives on `n` simulated stores without a size trend
    (per seed: model quirk + seed noise), and the test's df; None when it cannot test."""
    from evaluation.analysis.scaling import STATS, Unit, fit_contrast

    if slope_se(params, n_seeds, noise) is None:
        return None
    rng = np.random.default_rng([POWER_SEED, seed, len(params), n_seeds])
    slopes, ses = np.empty(n), np.empty(n)
    df = len(params) - 2
    for i in range(n):
        quirk = rng.standard_normal(len(params)) * noise.model_sd
        units = []
        for j, p in enumerate(params):
            d = quirk[j] + rng.standard_normal(n_seeds) * noise.seed_sd
            units.append(Unit(f"m{j}", int(p), {k: d for k in STATS}))
        fit = fit_contrast("T", "target", "metric", units).fits[STATS[0]]
        slopes[i], ses[i], df = fit.slope, fit.se or math.inf, fit.df
    return slopes, ses, df


def detection_rate(fits: tuple[np.ndarray, np.ndarray, int], slope: float, family: int) -> float:
    """Share of the null stores in which a planted `slope` is detected: the two-sided t test
    of the fit (p from t on its df) below Holm's first-step level α / m."""
    from scipy import stats as st

    from evaluation.analysis.scaling import ALPHA

    slopes, ses, df = fits
    p = 2 * st.t.sf(np.abs(slopes + slope) / ses, df)
    return float((p < ALPHA / max(family, 1)).mean())


def simulated_mds(fits: tuple[np.ndarray, np.ndarray, int] | None, family: int) -> float | None:
    """The smallest planted slope detected in ≥ 80 % of the simulated stores (bisection)."""
    from evaluation.analysis.scaling import POWER

    if fits is None:
        return None
    lo, hi = 0.0, 1.0
    while detection_rate(fits, hi, family) < POWER:
        lo, hi = hi, hi * 2
        if hi > 1e9:
            return math.inf
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if detection_rate(fits, mid, family) >= POWER else (mid, hi)
    return hi


def family_size(spec: SweepSpec) -> int:
    """Slope tests the headline is chosen among: one per (intermediate task ≠ none, target)."""
    treated = [t for t in spec.intermediate_tasks if t != "none"]
    return max(1, len(treated) * len(spec.target_tasks))


def extra_sizes(spec: SweepSpec) -> list[str]:
    """Ladder models of the spec's family (name up to its last '-') the spec leaves out."""
    from trainers.ladder import LADDER

    families = {m.rsplit("-", 1)[0] for m in spec.models}
    return [
        name for name in LADDER if name not in spec.models and name.rsplit("-", 1)[0] in families
    ]


def _with(spec: SweepSpec, models: list[str], seeds: list[int]) -> SweepSpec:
    return spec.model_copy(update={"models": models, "seeds": seeds})


def power_table(spec: SweepSpec, noise: Noise, n: int = POWER_SIMULATIONS) -> list[PowerRow]:
    """The plan as specified, +1 seed, +2 seeds, and +1 size when the ladder has one (the
    one that lowers the slope SE most)."""
    entries = model_entries(spec)
    params_of = {m: get_model(m, entries).params for m in spec.models}
    seeds = list(spec.seeds)
    more = [max(seeds) + i for i in (1, 2)]
    options: list[tuple[str, list[str], list[int]]] = [
        ("as specified", list(spec.models), seeds),
        ("+1 seed", list(spec.models), seeds + more[:1]),
        ("+2 seeds", list(spec.models), seeds + more),
    ]
    extra = extra_sizes(spec)
    if extra:
        for name in extra:
            params_of[name] = get_model(name, entries).params

        def spread(name: str) -> float:
            x = np.log10([params_of[m] for m in [*spec.models, name]])
            return float(((x - x.mean()) ** 2).sum())

        best = max(extra, key=spread)
        options.append((f"+1 size ({best})", [*spec.models, best], seeds))
    m = family_size(spec)
    families = sorted({1, m})
    rows = []
    for i, (change, models, run_seeds) in enumerate(options):
        models = sorted(models, key=lambda name: params_of[name])
        params = tuple(params_of[name] for name in models)
        fits = null_fits(params, len(run_seeds), noise, n, seed=i)
        hours = sum(p.gpu_hours for p in plan(_with(spec, models, run_seeds)))
        rows.append(
            PowerRow(
                change=change,
                models=tuple(models),
                params=params,
                n_seeds=len(run_seeds),
                gpu_hours=hours,
                se=slope_se(params, len(run_seeds), noise),
                formula={f: formula_mds(params, len(run_seeds), noise, f) for f in families},
                simulated={f: simulated_mds(fits, f) for f in families},
            )
        )
    return rows


def pilot_noise(storage: str, name: str) -> tuple[float | None, float | None, str]:
    """Seed SD and between-model SD of the dispersion effect, from an existing sweep.

    The store is read through its one reader (`ResultsStore.reading`, via
    `evaluation.analysis.analyze`); per (intermediate task, target task) contrast on the
    headline metric, the report's fit gives the within-model seed variance of the per-seed
    paired differences (T − none) and the DerSimonian–Laird between-model variance tau².
    Seed variances are pooled over contrasts by their df; tau² is averaged over contrasts
    with three sizes or more. None for what the pilot cannot estimate.
    """
    from evaluation.analysis import analyze
    from evaluation.analysis.scaling import ALL, STATS
    from storage.files import resolve_storage
    from storage.layout import SweepLayout

    results = resolve_storage(SweepLayout.of(storage, name).results)
    analysis = analyze(None if results.is_local else results.fs, results.root, name)
    ss, df, taus = 0.0, 0, []
    for s in analysis.scaling:
        if s.target_task == ALL:  # pooled contrasts are on another scale
            continue
        fit = s.fits[STATS[0]]
        if fit.seed_sd is not None and fit.seed_df > 0:
            ss += fit.seed_sd**2 * fit.seed_df
            df += fit.seed_df
        if fit.tau2 is not None:
            taus.append(fit.tau2)
    seed_sd = math.sqrt(ss / df) if df else None
    model_sd = math.sqrt(sum(taus) / len(taus)) if taus else None
    n_contrasts = sum(1 for s in analysis.scaling if s.target_task != ALL)
    where = f"pilot sweep {name!r} ({n_contrasts} contrasts, seed df {df}, {len(taus)} with tau²)"
    return seed_sd, model_sd, where


def resolve_noise(
    seed_sd: float | None,
    model_sd: float | None,
    pilot: tuple[float | None, float | None, str] | None = None,
) -> Noise:
    """Stated values first, then the pilot's estimates, then the documented defaults."""
    parts = []
    chosen = []
    for label, stated, flag, default, index in (
        ("seed SD", seed_sd, "--seed-sd", DEFAULT_SEED_SD, 0),
        ("model SD", model_sd, "--model-sd", DEFAULT_MODEL_SD, 1),
    ):
        estimate = pilot[index] if pilot else None
        if stated is not None:
            value, why = stated, f"stated ({flag})"
        elif estimate is not None:
            value, why = float(estimate), f"estimated from the {pilot[2] if pilot else ''}"
        else:
            missing = " (the pilot cannot estimate it)" if pilot else ""
            value, why = default, f"assumed, the {flag} default{missing}"
        if value < 0 or not math.isfinite(value):
            raise UserError(f"{flag} must be a finite number ≥ 0, not {value}")
        chosen.append(value)
        parts.append(f"{label} {value:.3g} points: {why}")
    return Noise(seed_sd=chosen[0], model_sd=chosen[1], source="; ".join(parts))
