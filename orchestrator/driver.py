"""`xstilts run`: plan what remains, then one Ray Tune trial per unfinished cell.

The ledger, checked against the store (`orchestrator.verify`), decides what runs: every
run builds a new `Tuner` over the cells it does not show done, never restoring Tune's
saved state (which would bring finished trials back as TERMINATED and never run them
again, e.g. after a fragment was moved aside). Within a cell the ledger and the cell's
own checkpoints decide what is left. The exit code is 0 when every cell finished, 1 with
a per-cell failure summary otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console

from orchestrator import guard, raycluster, stopping, terminal, tracking
from orchestrator.data_check import prepare_data
from orchestrator.grid import Cell, digest, expand
from orchestrator.jobs import build_jobs
from orchestrator.lease import Lease, LeaseFence
from orchestrator.ledger import CellState, Ledger, cell_view
from orchestrator.plan import longest_first, plan, wall_seconds
from orchestrator.progress import Progress, lines_from_states
from orchestrator.spec import SweepSpec
from orchestrator.splits import check_splits
from orchestrator.verify import damaged
from storage.files import Storage, resolve_storage
from storage.layout import SweepLayout
from storage.results import ResultsStore
from trainers.job import CellJob

if TYPE_CHECKING:
    from orchestrator.scheduling import Gang

FORWARDED_ENV = (
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TOKENIZERS_PARALLELISM",
    "DS_ACCELERATOR",
)


@dataclass(frozen=True)
class Outcome:
    done: list[Cell]
    failed: dict[str, str]  # label -> cause
    unfinished: list[Cell]

    @property
    def exit_code(self) -> int:
        return 0 if not self.failed and not self.unfinished else 1


def run_sweep(
    spec: SweepSpec,
    console: Console | None = None,
    runner: Callable | None = None,
    verbose: bool = False,
) -> Outcome:
    """Run what remains of `spec`. Ray's and Tune's output goes to a log file under the
    sweep (its path printed once), or, `verbose`, to the terminal as it comes."""
    console = console or Console(stderr=True)
    storage = resolve_storage(spec.storage)
    storage.check_reachable()
    cells = expand(spec)
    check_splits(spec)  # a step no model's workers can share out: refused before Ray starts
    with Lease(spec.storage, spec.name, ttl_s=spec.scheduling.lease_ttl_s) as lease:
        fence = lease.fence()  # every write of this run checks it first
        ledger = Ledger(spec.storage, spec.name, fence)
        guard.check_or_record(SweepLayout.of(spec.storage, spec.name), spec, fence)
        prepare_data(spec, console)
        reconcile(ledger, ResultsStore(spec.storage, spec.name), console)
        states = ledger.all_states()
        remaining = [c for c in cells if _status(states, c) != "done"]
        console.print(
            f"sweep {spec.name!r}: {len(cells) - len(remaining)} of {len(cells)} cells done"
        )
        if remaining:
            layout = SweepLayout.of(spec.storage, spec.name)
            log_file = None if verbose else run_log(layout)
            if log_file is not None:
                console.print(f"Ray and Tune log to {log_file} (-v: to the terminal)")
            with terminal.quiet(log_file):
                tracked = start_tracking(spec, layout)
                _fit(spec, storage, cells, remaining, ledger, runner, fence, tracked, log_file)
        lease.check()
    return outcome(ledger, cells)


def reconcile(ledger: Ledger, store: ResultsStore, console: Console) -> None:
    """A target task whose recorded fragment is gone (moved aside), unreadable or holds
    other rows than were written is scored again; the file is left where it is."""
    for damage in damaged(ledger.all_states(), store):
        console.print(f"{damage}; {damage.target_task} will be scored again")
        ledger.forget_target(damage.trial_key, damage.target_task)


def _status(states: Mapping[str, CellState], cell: Cell) -> str:
    s = cell_view(states, cell.trial_key, cell.target_keys)
    return s.status(cell.target_tasks) if s else "pending"


def outcome(ledger: Ledger, cells: list[Cell]) -> Outcome:
    states = ledger.all_states()
    done, failed, unfinished = [], {}, []
    for c in cells:
        s = cell_view(states, c.trial_key, c.target_keys)
        status = s.status(c.target_tasks) if s else "pending"
        if status == "done":
            done.append(c)
        elif status == "failed" and s is not None:
            failed[c.label] = s.failed or "failed"
        else:
            unfinished.append(c)
    return Outcome(done, failed, unfinished)


def _job_env_vars() -> dict[str, str]:
    """The env vars of the runtime env of the Ray job this driver runs in, if any."""
    raw = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")  # set by Ray's job supervisor
    runtime_env = (json.loads(raw).get("runtime_env") or {}) if raw else {}
    return dict(runtime_env.get("env_vars") or {})


def _fit(
    spec: SweepSpec,
    storage: Storage,
    cells: list[Cell],
    remaining: list[Cell],
    ledger: Ledger,
    runner: Callable | None,
    fence: LeaseFence,
    tracked: tracking.Targets,
    log_file: str | None = None,
) -> None:
    from ray import tune

    from orchestrator.trainable import run_trial

    env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # In a Ray job (`ray job submit`), ray.init refuses an env var that the job's runtime
    # env also sets (cluster/runtime_env.yaml); the workers get the job's value anyway.
    env = {k: v for k, v in env.items() if k not in _job_env_vars()}
    temp_dir = os.environ.get("XSTILTS_RAY_TEMP_DIR") or None
    started = raycluster.connect(temp_dir, env)
    try:
        if os.environ.get("RAY_ADDRESS") and raycluster.dashboard_url():
            terminal.say(f"Ray dashboard: {raycluster.dashboard_url()}")
        shape = raycluster.shape()
        raycluster.require_shared_storage(
            storage.root if storage.is_local else None, shape, storage.uri
        )
        layout = SweepLayout.of(spec.storage, spec.name)
        jobs = build_jobs(spec, layout, remaining)
        trainable = tune.with_resources(
            tune.with_parameters(
                run_trial,
                jobs=jobs,
                # Trials run in other working directories: a local root must be absolute.
                storage_uri=storage.root if storage.is_local else spec.storage,
                fence=fence,
                tracking=tracked,
                **({"runner": runner} if runner else {}),
            ),
            lambda config: trial_resources(jobs[config["trial_key"]], spec),
        )
        tuner = make_tuner(spec, layout, trainable, jobs, concurrency(spec, jobs, shape))
        labels = {c.trial_key: c.label for c in cells}
        stopping.reset(spec.name)
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # ours stops the run (`stopping`)
        snapshot = lambda: lines_from_states(labels, _display_states(ledger, cells, spec))  # noqa: E731
        try:
            with Progress(snapshot, file=terminal.out(), redirect=log_file is None):
                stopping.fit_or_stop(tuner.fit, spec.name, spec.scheduling.stop_grace_s)
        finally:
            tracking.finish_sweep(tracked, outcome(ledger, cells).exit_code == 0)
    finally:
        if started:
            import ray

            ray.shutdown()


def run_log(layout: SweepLayout) -> str:
    """This run's log file of Ray's and Tune's output (a local path)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return os.path.join(layout.logs, f"run-{stamp}-{os.getpid()}.log")


def start_tracking(spec: SweepSpec, layout: SweepLayout) -> tracking.Targets:
    """The sweep's trackers, each tried once (`tracking.start_sweep`); where they log and
    any that is off, on the terminal."""
    found, notices = tracking.targets(spec, layout)
    found, more = tracking.start_sweep(found)
    for line in [*notices, *more, *tracking.where(found)]:
        terminal.say(line)
    return found


def _display_states(ledger: Ledger, cells: list[Cell], spec: SweepSpec) -> dict[str, Any]:
    from types import SimpleNamespace

    out = {}
    states = ledger.all_states()
    for c in cells:
        s = cell_view(states, c.trial_key, c.target_keys)
        if s is None:
            continue
        out[c.trial_key] = SimpleNamespace(
            state=s.status(c.target_tasks),
            phase=s.running.phase if s.running else "",
            target_task=(s.running.target_task or "") if s.running else "",
            languages_scored=sum(len(spec.eval_languages(t)) for t in s.targets),
        )
    return out


def trial_resources(job: CellJob, spec: SweepSpec) -> Any:
    """One bundle for a single-process cell: its CPUs and GPUs (+ the pinning resource).

    A distributed cell's trial only drives its Ray Train workers, which ask for their own
    bundles: it holds no CPU (one held here can starve the workers' gang), a token of memory.
    `job.config.model.resources` already carries the spec's per-model overrides (`jobs.py`).
    """
    from ray.tune import PlacementGroupFactory

    res = job.config.model.resources
    bundle = res.worker_bundle()
    if res.distributed:
        bundle = {"CPU": 0.0, "memory": float(2**20)}
    override = spec.resources.get(job.config.model.name)
    if override and override.trial_resource:
        bundle[override.trial_resource] = 0.01
    return PlacementGroupFactory([bundle])


def concurrency(spec: SweepSpec, jobs: dict[str, CellJob], shape: Any) -> int:
    """Concurrent trials: the spec's cap, never more than the cluster can gang-schedule.

    The bound is how many of the smallest cells (in GPUs, else CPUs, over all workers)
    fit in the cluster at once; a trial beyond it would only hold a slot while it waits.
    """
    resources = [j.config.model.resources for j in jobs.values()]
    needs = [(r.workers * r.gpus_per_worker, r.workers * r.cpus_per_worker) for r in resources]
    gpu_need = min((g for g, _ in needs if g > 0), default=0.0)
    cpu_need = min((c for _, c in needs if c > 0), default=0.0)
    fit = len(jobs)
    if gpu_need:
        fit = min(fit, int(shape.gpus // gpu_need))
    if cpu_need:
        fit = min(fit, int(shape.cpus // cpu_need))
    cap = spec.scheduling.max_concurrent_trials or fit
    return max(1, min(cap, fit))


def make_tuner(
    spec: SweepSpec,
    layout: SweepLayout,
    trainable: Any,
    jobs: dict[str, CellJob],
    max_concurrent: int,
) -> Any:
    """A new Tuner over `jobs` (the cells left to run), longest first, each started once
    its gang fits. Its state goes to a new folder under `tune/` per run."""
    from ray import tune

    from orchestrator import scheduling

    plans = plan(spec)
    keys = [c.trial_key for c in longest_first(spec, plans) if c.trial_key in jobs]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    name = f"tune-{stamp}-{digest(sorted(keys), 8)}-{os.getpid()}"
    path = layout.tune
    gangs = {k: job_gang(jobs[k]) for k in keys}
    tune_config, param_space = scheduling.tuner_settings(
        keys, gangs, max_concurrent, wall_seconds(spec, plans)
    )
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune_config,
        run_config=tune.RunConfig(
            name=name,
            storage_path=path,
            failure_config=tune.FailureConfig(max_failures=spec.scheduling.max_failures),
            stop=stopping.tune_stopper(),
            verbose=0,
        ),
    )


def job_gang(job: CellJob) -> Gang:
    from orchestrator import scheduling

    return scheduling.cell_gang(job.config.model.resources)
