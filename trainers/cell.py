"""One grid cell, end to end: phase 2 once, then each target task (phase 3 + zero-shot).

The orchestrator calls `run_cell(job, hooks)` inside a Ray Tune trial; this module knows
nothing of Ray (a distributed model's Train runs and tasks are `trainers.distributed`'s and
`trainers.remote`'s). `CellJob` (`trainers.job`) holds plain values; `CellHooks` is how the cell
asks what is already done and hands over results (the orchestrator owns the ledger and the
store). Every checkpoint, encoder and prediction write goes through `job.runtime.fence`.
A phase's model and data come from `trainers.phase`, as on Ray Train workers.

- Phase 2 is skipped when `hooks.phase2_done()`: its final encoder is read from
  ``phase2/<key>/final``. Otherwise it trains (resuming from ``phase2/<key>/checkpoints``),
  publishes the encoder and tokenizer in Hugging Face format to ``phase2/<key>/final`` and
  calls `hooks.mark_phase2_done`. For ``none`` nothing trains: the pretrained model is
  published as it is.
- Each target task not yet `target_done`: the phase-2 encoder only, a fresh head, phase 3
  on English (resuming from ``cells/<key>/phase3/<task>/checkpoints``), then prediction on
  every language into ``cells/<key>/predictions/<task>/test-<lang>.<ext>`` and
  `hooks.record(task, rows)`. Tatoeba and BUCC are scored on the phase-2 encoder directly
  (BUCC's threshold tuned on its validation gold); Mewsli-X and LAReQA train a dual encoder
  (`trainers.dual`) in phase 3 and rank their whole candidate pool.
- A target task's stages (`trainers.stages`: SIQA before XCOPA, SQuAD before Tatoeba and
  BUCC under XTREME-R) train first, in the same order on both paths; its phase 3, or its
  retrieval, starts from the last stage's encoder.
- A distributed model (XL, XXL) trains on Ray Train workers, each phase and stage as its own
  Train run; its trial never loads it: publishing an encoder (phase 2's, each stage's) and
  predicting run as Ray tasks with a worker's bundle (`trainers.remote`), with the same code
  as in a one-process trial (`trainers.zeroshot`).
- Seeds derive from `job.config.seed` and the phase and task names. The phase-1 weights
  of a local (tiny) model are fixed per model (seed `PHASE1_SEED`), as a pretrained model is.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
from typing import Protocol

import torch

from evaluation.predict import Row
from evaluation.tasks import TaskSpec, get_task
from storage.errors import UserError
from storage.files import fetch_dir
from trainers import remote
from trainers.celldata import DataAccess, derive_seed
from trainers.checkpoint import CheckpointStore
from trainers.distributed import PhaseRun, fit_phase, phase2_run, phase3_run
from trainers.formats import head_for
from trainers.hparams import PhaseHparams
from trainers.job import CellJob
from trainers.loop import TaskData, train
from trainers.models import Pretrained, build_pretrained, load_dir
from trainers.phase import (
    PHASE1_SEED,
    device,
    phase_model,
    phase_tasks,
    publish_encoder,
    train_spec,
)
from trainers.placement import check_cell
from trainers.stages import Stage, clear_stages, run_stages
from trainers.taskmodel import TaskModel, Tokenization
from trainers.zeroshot import encoder_rows, model_rows, published

log = logging.getLogger("trainers")


class CellHooks(Protocol):
    def phase2_done(self) -> bool: ...

    def mark_phase2_done(self, checkpoint: str) -> None: ...

    def target_done(self, task: str) -> bool: ...

    def record(self, task: str, rows: list[dict]) -> None: ...

    def progress(self, phase: str, target_task: str | None, detail: dict) -> None: ...


def run_cell(job: CellJob, hooks: CellHooks) -> None:
    cfg = job.config
    if job.runtime.threads:
        torch.set_num_threads(job.runtime.threads)
    check_job(job)
    data = cfg.data
    encoder_dir = phase2(job, hooks, data)
    for task in cfg.target_tasks:
        if hooks.target_done(task):
            log.info("target %s done already in %s", task, cfg.trial_key)
            continue
        hooks.record(task, target(job, hooks, data, task, encoder_dir))
        phase3_store(job, task).clear()
        clear_stages(job, task)


def check_job(job: CellJob) -> None:
    """Fail before any training when a task has no head or a distributed cell cannot run."""
    cfg = job.config
    for name in (*cfg.phase2_tasks, *cfg.target_tasks):
        spec = get_task(name)
        if spec.needs_target_training:
            head_for(spec)
    if cfg.model.execution.compile and cfg.model.resources.zero_stage == 3:
        raise UserError(
            f"model {cfg.model.name}: compile is for one process and ZeRO-2 (ZeRO-3 gathers "
            "each parameter in hooks that torch.compile does not trace)"
        )
    if cfg.model.resources.distributed:
        check_cell(job)


# --- phase 2 --------------------------------------------------------------------------


def phase2(job: CellJob, hooks: CellHooks, data: DataAccess) -> str:
    """Where the phase-2 encoder is (trained now, or earlier): a local directory for a
    one-process model, its published URI for a distributed one (whose trial never holds it)."""
    cfg, paths = job.config, job.paths
    final = paths.phase2_final
    distributed = cfg.model.resources.distributed
    local = os.path.join(paths.cache_dir, "phase2", cfg.phase2_key)
    if hooks.phase2_done():
        log.info("phase2 reuse %s", cfg.phase2_key)
        return final if distributed else fetch_dir(final, local)
    store = CheckpointStore(paths.phase2_checkpoints, job.runtime.fence)
    seed = derive_seed(cfg.seed, "phase2", cfg.intermediate_task)
    if cfg.phase2_tasks:
        log.info("phase2 start %s", cfg.phase2_key)
        hooks.progress("phase2", None, {"tasks": list(cfg.phase2_tasks)})
    if distributed:
        remote_phase2(job, seed)
    else:
        key = data.corpus_key() if cfg.model.source == "local_config" else None
        pre = build_pretrained(cfg.model, seed=PHASE1_SEED, corpus=data.corpus,
                               cache_dir=paths.cache_dir, corpus_key=key)  # fmt: skip
        if cfg.phase2_tasks:
            run_phase(job, hooks, data, pre, cfg.phase2_tasks, cfg.phase2_hparams, seed, store,
                      "phase2")  # fmt: skip
        publish_encoder(pre, final, paths.cache_dir, job.runtime.fence)
    if cfg.phase2_tasks:
        log.info("phase2 done %s", cfg.phase2_key)
    hooks.mark_phase2_done(final)
    store.clear()
    return final if distributed else fetch_dir(final, local)


def remote_phase2(job: CellJob, seed: int) -> None:
    """Phase 2 of a distributed model: a Train run; Ray tasks publish its start (a model
    built from a config) and its result, or the pretrained model for `none`."""
    cfg, paths = job.config, job.paths
    if not cfg.phase2_tasks:
        remote.publish_pretrained(job, paths.phase2_final)
        return
    if cfg.model.source == "local_config":
        remote.publish_pretrained(job, paths.phase1_encoder)
    checkpoint = fit_phase(phase2_run(job, seed))
    remote.publish_trained(job, checkpoint, paths.phase2_final)


def phase3_store(job: CellJob, task: str) -> CheckpointStore:
    return CheckpointStore(job.paths.phase3_checkpoints(task), job.runtime.fence)


# --- one training phase (one process) ------------------------------------------------------


def run_phase(
    job: CellJob,
    hooks: CellHooks,
    data: DataAccess,
    pre: Pretrained,
    names: tuple[str, ...],
    hparams: Mapping[str, PhaseHparams],
    seed: int,
    store: CheckpointStore,
    phase: str,
    target_task: str | None = None,
) -> tuple[TaskModel, dict[str, TaskData]]:
    """Train the heads of `names` on `pre`'s encoder (in place); one phase of the protocol,
    in this process (a distributed model trains on Ray Train workers: `fit_phase`).
    `target_task`: the target task progress names (default: phase 3's task)."""
    run_as = job.config.model.execution
    model = phase_model(pre, names, data, seed, run_as)
    tasks = phase_tasks(data, pre, names, hparams, job.paths.cache_dir)
    run = train_spec(hparams[names[0]], seed, run_as)
    model.to(device())
    shown = target_task or (names[0] if phase == "phase3" else None)
    report, metrics = _reporter(hooks, phase, shown)
    train(model, tasks, run, checkpoints=store, resume=job.config.resume, on_step=report,
          on_metrics=metrics)  # fmt: skip
    return model, tasks


def _reporter(
    hooks: CellHooks, phase: str, task: str | None
) -> tuple[Callable[[int, float], None], Callable[[int, dict[str, float]], None]]:
    """(on_step, on_metrics) of `train`: each step's loss with its lr, samples/s and, at an
    evaluation, dev score (the loop gives them just before the step), as one progress."""
    latest: dict[str, float] = {}

    def metrics(step: int, values: dict[str, float]) -> None:
        latest.clear()
        latest.update(values)

    def report(step: int, loss: float) -> None:
        # Every step: the hooks keep it cheap (they act on phase changes, the tracker logs
        # every `tracking.log_every`), and fault injection and resume tracing need exact steps.
        hooks.progress(phase, task, {"step": step, "loss": loss, **latest})

    return report, metrics


# --- each target task ---------------------------------------------------------------------


def target(job: CellJob, hooks: CellHooks, data: DataAccess, task: str, encoder_dir: str):
    """Rows of one target task: phase 3 and prediction, or retrieval on the encoder. The
    prediction files are written in the node cache, then published (fenced) as a whole."""
    spec = get_task(task)
    hooks.progress("evaluate" if not spec.needs_target_training else "phase3", task, {})
    if job.config.model.resources.distributed:
        return remote_target(job, hooks, spec)
    pre = load_dir(encoder_dir, job.config.model)
    if not spec.needs_target_training:
        stages(job, hooks, data, spec, pre)
        hooks.progress("evaluate", task, {"languages": len(data.eval_languages(spec))})
        return published(job, task, lambda out: encoder_rows(job, data, spec, pre, out))
    model, tok = phase3(job, hooks, data, spec, pre)
    return published(job, task, lambda out: model_rows(job, data, spec, model, tok, out))


def phase3(
    job: CellJob, hooks: CellHooks, data: DataAccess, spec: TaskSpec, pre: Pretrained
) -> tuple[TaskModel, Tokenization]:
    """Phase 3 on English, in this process: the trained model and its tokenization."""
    task, cfg = spec.name, job.config
    store = phase3_store(job, task)
    if store.latest() is None:  # else its checkpoint holds the whole model, stages included
        stages(job, hooks, data, spec, pre)
    seed = derive_seed(cfg.seed, "phase3", task)
    log.info("phase3 start %s %s", cfg.trial_key, task)
    model, tasks = run_phase(job, hooks, data, pre, (task,), cfg.phase3_hparams, seed, store,
                             "phase3")  # fmt: skip
    log.info("phase3 done %s %s", cfg.trial_key, task)
    hooks.progress("evaluate", task, {"languages": len(data.eval_languages(spec))})
    return model, tasks[task].tok


def stages(job: CellJob, hooks: CellHooks, data: DataAccess, spec: TaskSpec, pre: Pretrained):
    """Train the stages of target task `spec` (`trainers.stages`) on `pre`'s encoder, in place
    and in order, each with a head of its own that is then dropped."""

    def one(stage: Stage, pre: Pretrained) -> Pretrained:
        run_phase(job, hooks, data, pre, (stage.task,), job.config.phase3_hparams, stage.seed,
                  CheckpointStore(stage.checkpoints, job.runtime.fence), "phase3",
                  target_task=stage.target)  # fmt: skip
        return pre

    run_stages(job, spec.name, pre, one)


def remote_target(job: CellJob, hooks: CellHooks, spec: TaskSpec) -> list[Row]:
    """A distributed model's target task: its stages and phase 3 as Train runs, each stage's
    model published as the next one's start, then prediction as a Ray task with a worker's
    bundle (`trainers.remote`); the trial loads no model."""
    task, cfg = spec.name, job.config
    encoder = run_stages(job, task, job.paths.phase2_final, functools.partial(remote_stage, job))
    checkpoint = None
    if spec.needs_target_training:
        seed = derive_seed(cfg.seed, "phase3", task)
        log.info("phase3 start %s %s", cfg.trial_key, task)
        checkpoint = fit_phase(phase3_run(job, task, seed, encoder))
        log.info("phase3 done %s %s", cfg.trial_key, task)
        hooks.progress("evaluate", task, {"languages": len(cfg.data.eval_languages(spec))})
    return remote.predict(job, task, checkpoint, encoder)


def remote_stage(job: CellJob, stage: Stage, source: str) -> str:
    """One stage as a Train run from the encoder at `source`; its encoder's URI."""
    cfg = job.config
    run = PhaseRun(job, "phase3", (stage.task,), cfg.phase3_hparams, stage.seed, source,
                   stage.run, stage.checkpoints)  # fmt: skip
    remote.publish_trained(job, fit_phase(run), stage.encoder)
    return stage.encoder
