"""Experiment tracking: what the cells of a sweep log to MLflow (default), W&B and TensorBoard.

The spec's `tracking:` section (`orchestrator.spec.Tracking`) picks the backends; `targets`
turns it into plain values (`Targets`) that travel to every trial. Runs:

- MLflow: experiment = the sweep name; one parent run per sweep, under it one run per cell
  (tags: sweep, trial_key = cell_key, model, intermediate_task, seed, phase2_key) and under
  that one run per phase: ``phase2``, and per target task ``phase3`` (its training, then its
  scores) or ``evaluate`` (a target scored on the phase-2 encoder); a phase run adds the tags
  phase and target_task, and a target's run has the target's own key as trial_key (the key
  of its rows in the results store). Params: the phase's resolved hyperparameters.
  Metrics: ``loss``, ``lr``, ``samples_per_s`` every `log_every` training steps,
  ``dev_score`` at every evaluation, and ``<split>/<metric>/<language>`` for every final
  score (step 0).
- W&B: one run per phase run (id: trial key, phase, target task), grouped by cell.
- TensorBoard: one event folder per phase run, ``<tensorboard>/<trial_key>/<phase>[-<target>]``.

Exactly once across kill -9: a run is found again, never made twice (MLflow's by its tags,
W&B's by its id, TensorBoard's by its folder), and a resumed phase logs only steps after
the last one its backend holds (MLflow: the metric histories; TensorBoard: the event files;
W&B drops a step below its run's current one itself). A final score a run holds is not
logged again.

Tracking never fails a cell: a backend that raises warns once (in the trial's log) and is
off for the rest of that attempt; the driver tries each backend first (`start_sweep`) and
names on the terminal any that is off, and why.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from orchestrator.spec import SweepSpec
from storage.files import Fence, redact
from storage.layout import SweepLayout
from trainers.hparams import PhaseHparams
from trainers.job import CellConfig

log = logging.getLogger("orchestrator.tracking")
STEP_METRICS = ("loss", "lr", "samples_per_s", "dev_score")
FENCE_EVERY_S = 1.0  # below the shortest lease time-to-live (2 s)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class WandbTarget:
    project: str
    mode: Literal["offline", "online"]
    entity: str | None
    directory: str


@dataclass(frozen=True)
class Targets:
    """Where the cells of a sweep log (plain values, shipped to every trial)."""

    sweep: str
    experiment: str
    mlflow_uri: str | None = None
    sweep_run: str | None = None  # the sweep's MLflow run, found or made by `start_sweep`
    wandb: WandbTarget | None = None
    tensorboard: str | None = None
    log_every: int = 1


def targets(spec: SweepSpec, layout: SweepLayout) -> tuple[Targets, list[str]]:
    """The spec's trackers as plain values, and a notice for each one that cannot be used."""
    cfg, notices = spec.tracking, []
    uri = None
    if cfg.mlflow.enabled:
        uri = mlflow_uri(cfg.mlflow.uri, layout.mlruns)
        if uri is None:
            notices.append(
                f"tracking: no MLflow store for {spec.storage} (set tracking.mlflow.uri: a "
                "server or database); cells log without MLflow"
            )
    wandb = None
    if cfg.wandb is not None:
        w = cfg.wandb
        wandb = WandbTarget(w.project, w.mode, w.entity, layout.wandb)
    found = Targets(
        sweep=spec.name,
        experiment=cfg.mlflow.experiment or spec.name,
        mlflow_uri=uri,
        wandb=wandb,
        tensorboard=layout.tensorboard if cfg.tensorboard else None,
        log_every=cfg.log_every,
    )
    return found, notices


def mlflow_uri(configured: str | None, default_store: str | None) -> str | None:
    """A tracking URI as given (``http://``, ``sqlite:///``, ``file:``...), a local folder as
    an absolute ``file:`` URI (trials run elsewhere); unset: the sweep's file store."""
    if configured is None:
        return None if default_store is None else Path(default_store).as_uri()
    if _SCHEME.match(configured):
        return configured
    return Path(configured).expanduser().resolve().as_uri()


def start_sweep(found: Targets) -> tuple[Targets, list[str]]:
    """Try every backend once, before any trial: MLflow's experiment and the sweep's run are
    found or made here (trials only find them). A backend that fails is dropped, with a
    one-line notice; the returned targets are what the trials use."""
    notices = []
    if (uri := found.mlflow_uri) is not None:
        try:
            sweep_run = _Mlflow(found).sweep_run()
            found = replace(found, sweep_run=sweep_run)
        except Exception as exc:
            shown = redact(uri)
            notices.append(f"tracking: MLflow at {shown} is off: {redact(_cause(exc))}")
            found = replace(found, mlflow_uri=None)
    if found.wandb is not None:
        try:
            _check_wandb(found.wandb)
        except Exception as exc:
            notices.append(f"tracking: W&B is off: {_cause(exc)}")
            found = replace(found, wandb=None)
    if found.tensorboard is not None:
        try:
            import tensorboardX  # noqa: F401
        except Exception as exc:
            notices.append(f"tracking: TensorBoard is off: {_cause(exc)}")
            found = replace(found, tensorboard=None)
    return found, notices


def finish_sweep(found: Targets, ok: bool) -> None:
    """Mark the sweep's MLflow run finished (every cell done) or failed."""
    if found.mlflow_uri is None or found.sweep_run is None:
        return
    try:
        _Mlflow(found).client.set_terminated(found.sweep_run, "FINISHED" if ok else "FAILED")
    except Exception as exc:
        log.warning("tracking: MLflow: %s", _cause(exc))


def where(found: Targets) -> list[str]:
    """One line per backend in use: where to look."""
    lines = []
    if found.mlflow_uri is not None:
        shown = redact(found.mlflow_uri)
        lines.append(f"tracking: MLflow at {shown} (experiment {found.experiment!r})")
    if found.wandb is not None:
        lines.append(f"tracking: W&B {found.wandb.mode}, {found.wandb.directory}")
    if found.tensorboard is not None:
        lines.append(f"tracking: TensorBoard {found.tensorboard}")
    return lines


def _cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _check_wandb(target: WandbTarget) -> None:
    import wandb

    if target.mode == "online":
        wandb.login(verify=False)  # raises without a key (no prompt without a terminal)


# --- one cell's tracker (in its trial) -------------------------------------------------------


@dataclass(frozen=True)
class PhaseRun:
    """One phase of one cell: how every backend names, tags and finds its run."""

    trial_key: str
    phase: str  # phase2 | phase3 | evaluate
    target_task: str | None
    name: str
    tags: Mapping[str, str]
    params: Mapping[str, str]

    @property
    def slug(self) -> str:
        return f"{self.phase}-{self.target_task}" if self.target_task else self.phase


class Backend(Protocol):
    name: str

    def open(self, run: PhaseRun) -> None: ...  # find (and continue) or make the run

    def log(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def finals(self, metrics: Mapping[str, float]) -> None: ...

    def close(self, status: str) -> None: ...  # FINISHED | FAILED | KILLED

    def close_cell(self, status: str) -> None: ...


class CellTracker:
    """What one attempt of a cell logs: `progress` (phase changes and steps, from the cell
    runner's hooks), `scores` (a target task's rows) and `close`.

    `fence` (the sweep lease's) is checked before logging, at most once a second: a run that
    was paused past the lease's time-to-live and taken over logs nothing after it wakes (its
    next checkpoint write then stops it)."""

    def __init__(self, found: Targets, job: CellConfig, fence: Fence | None = None) -> None:
        self.job, self.log_every, self.fence = job, found.log_every, fence
        self._checked = time.monotonic()
        self.cell_tags = cell_tags(job)
        self.backends: list[Backend] = []
        self._failed: set[str] = set()
        for name, make in _makers(found, self.cell_tags, job).items():
            backend = self._safely(name, make)
            if backend is not None:
                self.backends.append(backend)
        self.current: tuple[str, str | None] | None = None

    def progress(self, phase: str, target_task: str | None, detail: Mapping[str, Any]) -> None:
        key = run_key(phase, target_task)
        if key != self.current:
            self._switch(key)
        step = detail.get("step")
        if step is None:
            return
        metrics = {}
        if step % self.log_every == 0:
            metrics = {k: float(detail[k]) for k in STEP_METRICS[:3] if k in detail}
        if detail.get("dev_score") is not None:
            metrics["dev_score"] = float(detail["dev_score"])
        if metrics:
            self._each("log", int(step), metrics)

    def scores(self, task: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """A target task's final per-language scores, into its run; the run is done."""
        if self.current is None or self.current[1] != task:
            self._switch(run_key("evaluate", task))
        self._each("finals", final_metrics(rows))
        self._each("close", "FINISHED")
        self.current = None

    def close(self, status: str = "FINISHED") -> None:
        if self.current is not None:
            self._each("close", status)
            self.current = None
        self._each("close_cell", status)

    def _switch(self, key: tuple[str, str | None]) -> None:
        if self.current is not None:
            self._each("close", "FINISHED")
        self.current = key
        self._each("open", phase_run(self.job, self.cell_tags, *key))

    def _each(self, method: str, *args: Any) -> None:
        if self.backends and not self._fenced():
            return
        for backend in list(self.backends):
            self._safely(backend.name, functools.partial(getattr(backend, method), *args))

    def _fenced(self) -> bool:
        now = time.monotonic()
        if self.fence is None or now - self._checked < FENCE_EVERY_S:
            return True
        self._checked = now
        try:
            self.fence()
        except Exception as exc:
            log.warning("tracking: stops for cell %s: %s", self.job.trial_key, _cause(exc))
            self.backends = []
            return False
        return True

    def _safely(self, name: str, call: Callable[[], Any]) -> Any:
        if name in self._failed:
            return None
        try:
            return call()
        except Exception as exc:
            self._failed.add(name)
            self.backends = [b for b in self.backends if b.name != name]
            log.warning("tracking: %s is off for cell %s: %s", name, self.job.trial_key,
                        _cause(exc))  # fmt: skip
            return None


def run_key(phase: str, target_task: str | None) -> tuple[str, str | None]:
    """The run a phase reported by the cell runner logs into: a target task's training and
    its evaluation share one run (``phase3``); a target without training has ``evaluate``."""
    if target_task is None:
        return phase, None
    from evaluation.tasks import get_task

    trained = get_task(target_task).needs_target_training
    return ("phase3" if trained else "evaluate"), target_task


def cell_tags(job: CellConfig) -> dict[str, str]:
    return {
        "sweep": job.sweep,
        "trial_key": job.trial_key,
        "cell_key": job.trial_key,
        "phase2_key": job.phase2_key,
        "model": job.model.name,
        "intermediate_task": job.intermediate_task,
        "seed": str(job.seed),
    }


def cell_name(job: CellConfig) -> str:
    return f"{job.model.name}/{job.intermediate_task}/{job.seed}"


def phase_run(job: CellConfig, tags: Mapping[str, str], phase: str, target: str | None) -> PhaseRun:
    hparams: Mapping[str, PhaseHparams] = {}
    if phase == "phase2":
        hparams = job.phase2_hparams
    elif phase == "phase3" and target is not None:
        hparams = {target: job.phase3_hparams[target]}
    # A target task's run carries its own key, as its rows in the results store do.
    key = job.target_keys[target] if target else job.trial_key
    run_tags = {**tags, "trial_key": key, "phase": phase}
    run_tags |= {"target_task": target} if target else {}
    name = f"{cell_name(job)} {phase}" + (f" {target}" if target else "")
    return PhaseRun(key, phase, target, name, run_tags, flat_params(hparams))


def flat_params(hparams: Mapping[str, PhaseHparams]) -> dict[str, str]:
    """One task's hyperparameters by field name; several tasks' as ``<task>.<field>``."""
    out: dict[str, str] = {}
    for task, h in hparams.items():
        prefix = f"{task}." if len(hparams) > 1 else ""
        out |= {f"{prefix}{k}": str(v) for k, v in h.as_dict().items()}
    return out


def final_metrics(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    return {f"{r['split']}/{r['metric']}/{r['language']}": float(r["value"]) for r in rows}


def _makers(found: Targets, tags: Mapping[str, str], job: CellConfig) -> dict[str, Callable]:
    makers: dict[str, Callable[[], Backend]] = {}
    wandb, tensorboard = found.wandb, found.tensorboard
    if found.mlflow_uri is not None:
        makers["MLflow"] = functools.partial(MlflowBackend, found, tags, cell_name(job))
    if wandb is not None:
        makers["W&B"] = functools.partial(WandbBackend, wandb)
    if tensorboard is not None:
        makers["TensorBoard"] = functools.partial(TensorboardBackend, tensorboard)
    return makers


# --- MLflow ------------------------------------------------------------------------------


class _Mlflow:
    """The client and the sweep's experiment."""

    def __init__(self, found: Targets) -> None:
        # The file store (``<sweep>/mlruns``) is what a researcher browses without a server;
        # MLflow 3 keeps it behind this switch. An unreachable server fails fast.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        from mlflow import MlflowClient

        self.found = found
        self.client = MlflowClient(tracking_uri=found.mlflow_uri)
        experiment = self.client.get_experiment_by_name(found.experiment)
        if experiment is None:
            self.experiment_id = self.client.create_experiment(found.experiment)
        else:
            self.experiment_id = experiment.experiment_id

    def sweep_run(self) -> str:
        run = self.find_or_make({"level": "sweep", "sweep": self.found.sweep}, self.found.sweep)
        self.client.update_run(run, status="RUNNING")
        return run

    def find_or_make(self, tags: Mapping[str, str], name: str, parent: str | None = None,
                     params: Mapping[str, str] | None = None) -> str:  # fmt: skip
        """The run with exactly these tags (the oldest, should a crash have left two), or a
        new one with them and `params`."""
        query = " and ".join(f"tags.{k} = '{v}'" for k, v in sorted(tags.items()))
        found = self.client.search_runs(
            [self.experiment_id], query, max_results=1, order_by=["attributes.start_time ASC"]
        )
        if found:
            return str(found[0].info.run_id)
        extra = {"mlflow.parentRunId": parent} if parent else {}
        run = self.client.create_run(self.experiment_id, run_name=name, tags={**tags, **extra})
        run_id = str(run.info.run_id)
        if params:
            from mlflow.entities import Param

            self.client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
        return run_id


class MlflowBackend:
    name = "MLflow"

    def __init__(self, found: Targets, cell_tags: Mapping[str, str], cell_name: str) -> None:
        self.store = _Mlflow(found)
        self.client = self.store.client
        self.cell_tags, self.cell_name = dict(cell_tags), cell_name
        self.cell: str | None = None
        self.run: str | None = None
        self.last, self.logged = -1, set[str]()

    def _cell(self) -> str:
        if self.cell is None:
            tags = {**self.cell_tags, "level": "cell"}
            self.cell = self.store.find_or_make(tags, self.cell_name, self.store.found.sweep_run)
            self.client.update_run(self.cell, status="RUNNING")
        return self.cell

    def open(self, run: PhaseRun) -> None:
        tags = {**run.tags, "level": "phase"}
        self.run = self.store.find_or_make(tags, run.name, self._cell(), run.params)
        self.client.update_run(self.run, status="RUNNING")
        steps = [m.step for k in STEP_METRICS for m in self.client.get_metric_history(self.run, k)]
        self.last = max(steps, default=-1)
        self.logged = set(self.client.get_run(self.run).data.metrics) - set(STEP_METRICS)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.run is None or step <= self.last:
            return
        self._batch(metrics, step)
        self.last = step

    def finals(self, metrics: Mapping[str, float]) -> None:
        new = {k: v for k, v in metrics.items() if k not in self.logged}
        if self.run is not None and new:
            self._batch(new, 0)
            self.logged |= set(new)

    def _batch(self, metrics: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, step) for k, v in metrics.items()]
        self.client.log_batch(str(self.run), metrics=batch)

    def close(self, status: str) -> None:
        if self.run is not None:
            self.client.set_terminated(self.run, status)
            self.run = None

    def close_cell(self, status: str) -> None:
        if self.cell is not None:
            self.client.set_terminated(self.cell, status)
            self.cell = None


# --- W&B ---------------------------------------------------------------------------------


class WandbBackend:
    """W&B directly: Ray's `setup_wandb` / `WandbLoggerCallback` make one run per trial
    attempt from what Tune reports, where a phase's run must outlive attempts."""

    name = "W&B"

    def __init__(self, target: WandbTarget) -> None:
        import wandb

        self.wandb, self.target = wandb, target
        os.makedirs(target.directory, exist_ok=True)
        self.run: Any = None
        self.last = -1

    def open(self, run: PhaseRun) -> None:
        t = self.target
        self.run = self.wandb.init(
            project=t.project, entity=t.entity, mode=t.mode, dir=t.directory,
            id=f"{run.trial_key}-{run.slug}", resume="allow", name=run.name,
            group=run.tags["cell_key"], job_type=run.phase, config=dict(run.params),
            tags=[f"{k}={v}" for k, v in run.tags.items()][:20],
            settings=self.wandb.Settings(console="off", silent=True, x_disable_stats=True),
            reinit="finish_previous",
        )  # fmt: skip
        self.last = int(self.run.starting_step) - 1 if self.run.resumed else -1

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.run is not None and step > self.last:
            self.run.log(dict(metrics), step=step)
            self.last = step

    def finals(self, metrics: Mapping[str, float]) -> None:
        if self.run is not None:
            self.run.summary.update(dict(metrics))

    def close(self, status: str) -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if status == "FINISHED" else 1)
            self.run = None

    def close_cell(self, status: str) -> None:
        self.wandb.teardown()  # W&B's service writes its run files out before it exits


# --- TensorBoard -------------------------------------------------------------------------


class TensorboardBackend:
    name = "TensorBoard"

    def __init__(self, root: str) -> None:
        from tensorboardX import SummaryWriter

        self.root, self.writer_type = root, SummaryWriter
        self.writer: Any = None
        self.last, self.logged = -1, set[str]()

    def open(self, run: PhaseRun) -> None:
        folder = os.path.join(self.root, run.trial_key, run.slug)
        self.last, self.logged = logged_events(folder)
        # A file of its own per attempt (the default name has only the second and the host).
        self.writer = self.writer_type(folder, filename_suffix=f".{time.time_ns()}")

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.writer is None or step <= self.last:
            return
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()  # to the OS now: a kill -9 loses no logged step
        self.last = step

    def finals(self, metrics: Mapping[str, float]) -> None:
        # At the run's last step: steps in an event folder never go back.
        for k, v in metrics.items():
            if self.writer is not None and k not in self.logged:
                self.writer.add_scalar(k, v, max(self.last, 0))
        if self.writer is not None:
            self.writer.flush()

    def close(self, status: str) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def close_cell(self, status: str) -> None:
        pass


def logged_events(folder: str) -> tuple[int, set[str]]:
    """(the last step of a step metric, the other scalar tags) in a folder's event files."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    last, tags = -1, set()
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag in STEP_METRICS:
                    last = max(last, int(event.step))
                else:
                    tags.add(value.tag)
    return last, tags
