"""One grid cell, end to end: phase 2 once, then each target task (phase 3 + zero-shot).

The orchestrator calls `run_cell(job, hooks)` inside a Ray Tune trial; this module knows
nothing of Ray. `CellJob` (`trainers.job`) holds plain values; `CellHooks` is how the cell
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
- Seeds derive from `job.config.seed` and the phase and task names. The phase-1 weights
  of a local (tiny) model are fixed per model (seed `PHASE1_SEED`), as a pretrained model is.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import torch

from evaluation.data.examples import Entity
from evaluation.data.loaders import entity_pool
from evaluation.predict import Row, evaluate, evaluate_dual, evaluate_retrieval
from evaluation.tasks import Format, TaskSpec, get_task
from storage.files import fetch_dir, publish_dir
from trainers.celldata import DataAccess, derive_seed
from trainers.checkpoint import CheckpointStore
from trainers.distributed import fit_phase
from trainers.dual import dual_encoder
from trainers.formats import head_for
from trainers.hparams import PhaseHparams
from trainers.job import CellJob
from trainers.loop import TaskData, TrainSpec, bf16_autocast, train
from trainers.models import Pretrained, build_pretrained, load_dir
from trainers.phase import PHASE1_SEED, device, phase_model, phase_tasks, publish_encoder
from trainers.placement import check_cell
from trainers.taskmodel import TaskModel, embedder, predictor

log = logging.getLogger("trainers")
RETRIEVAL_MAX_LEN = 128


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


def check_job(job: CellJob) -> None:
    """Fail before any training when a task has no head or a distributed cell cannot run."""
    cfg = job.config
    for name in (*cfg.phase2_tasks, *cfg.target_tasks):
        spec = get_task(name)
        if spec.needs_target_training:
            head_for(spec)
    if cfg.model.resources.distributed:
        check_cell(job)


# --- phase 2 --------------------------------------------------------------------------


def phase2(job: CellJob, hooks: CellHooks, data: DataAccess) -> str:
    """A local directory holding the phase-2 encoder (trained now, or earlier)."""
    cfg, paths = job.config, job.paths
    final = paths.phase2_final
    local = os.path.join(paths.cache_dir, "phase2", cfg.phase2_key)
    if hooks.phase2_done():
        log.info("phase2 reuse %s", cfg.phase2_key)
        return fetch_dir(final, local)
    key = data.corpus_key() if cfg.model.source == "local_config" else None
    pre = build_pretrained(cfg.model, seed=PHASE1_SEED, corpus=data.corpus,
                           cache_dir=paths.cache_dir, corpus_key=key)  # fmt: skip
    store = CheckpointStore(paths.phase2_checkpoints, job.runtime.fence)
    if cfg.phase2_tasks:
        log.info("phase2 start %s", cfg.phase2_key)
        hooks.progress("phase2", None, {"tasks": list(cfg.phase2_tasks)})
        seed = derive_seed(cfg.seed, "phase2", cfg.intermediate_task)
        run_phase(
            job, hooks, data, pre, cfg.phase2_tasks, cfg.phase2_hparams, seed, store, "phase2"
        )
        log.info("phase2 done %s", cfg.phase2_key)
    publish_encoder(pre, final, paths.cache_dir, job.runtime.fence)
    hooks.mark_phase2_done(final)
    store.clear()
    return fetch_dir(final, local)


def phase3_store(job: CellJob, task: str) -> CheckpointStore:
    return CheckpointStore(job.paths.phase3_checkpoints(task), job.runtime.fence)


# --- one training phase -----------------------------------------------------------------


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
) -> tuple[TaskModel, dict[str, TaskData]]:
    """Train the heads of `names` on `pre`'s encoder (in place); one phase of the protocol.

    A model whose resources are `distributed` trains on Ray Train workers with DeepSpeed
    (`trainers.distributed`); its consolidated weights are then loaded into `model` here.
    """
    model = phase_model(pre, names, data, seed)
    tasks = phase_tasks(data, pre, names, hparams, job.paths.cache_dir)
    if job.config.model.resources.distributed:
        fit_phase(job, pre, model, names, hparams, seed, phase)
        return model, tasks
    run = TrainSpec.from_hparams(hparams[names[0]], seed)
    model.to(device())
    report = _reporter(hooks, phase, names[0] if phase == "phase3" else None, run.eval_every)
    train(model, tasks, run, checkpoints=store, resume=job.config.resume, on_step=report)
    return model, tasks


def _reporter(
    hooks: CellHooks, phase: str, task: str | None, every: int
) -> Callable[[int, float], None]:
    def report(step: int, loss: float) -> None:
        # Every step: the hooks keep it cheap (they act on phase changes), and fault
        # injection and resume tracing need exact steps.
        hooks.progress(phase, task, {"step": step, "loss": loss})

    return report


# --- each target task ---------------------------------------------------------------------


def target(job: CellJob, hooks: CellHooks, data: DataAccess, task: str, encoder_dir: str):
    """Rows of one target task: phase 3 and prediction, or retrieval on the encoder. The
    prediction files are written in the node cache, then published (fenced) as a whole."""
    spec = get_task(task)
    pre = load_dir(encoder_dir, job.config.model)
    os.makedirs(job.paths.cache_dir, exist_ok=True)
    out = tempfile.mkdtemp(prefix=".predictions-", dir=job.paths.cache_dir)
    try:
        hooks.progress("evaluate" if not spec.needs_target_training else "phase3", task, {})
        if spec.needs_target_training:
            rows = phase3_rows(job, hooks, data, spec, pre, out)
        else:
            rows = encoder_rows(job, data, spec, pre, out)
        publish_dir(os.path.join(out, task), job.paths.predictions(task), job.runtime.fence)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return rows


def encoder_rows(
    job: CellJob, data: DataAccess, spec: TaskSpec, pre: Pretrained, out: str
) -> list[Row]:
    """Tatoeba and BUCC on the phase-2 encoder; BUCC tunes on its `tune` (validation) split."""
    hparams = job.config.phase3_hparams.get(spec.name)
    max_len = hparams.max_seq_length if hparams else RETRIEVAL_MAX_LEN
    pre.encoder.to(device())  # type: ignore[arg-type]
    embed = embedder(pre.encoder, pre.tokenizer, job.config.model.retrieval_layer, max_len)
    tune = data.eval(replace(spec, eval=spec.tune)) if spec.tune else None
    return evaluate_retrieval(spec, data.eval(spec), embed, out, tune)


def phase3_rows(
    job: CellJob, hooks: CellHooks, data: DataAccess, spec: TaskSpec, pre: Pretrained, out: str
) -> list[Row]:
    """Phase 3 on English, then zero-shot prediction on every language."""
    task, cfg = spec.name, job.config
    store = phase3_store(job, task)
    seed = derive_seed(cfg.seed, "phase3", task)
    log.info("phase3 start %s %s", cfg.trial_key, task)
    model, tasks = run_phase(
        job, hooks, data, pre, (task,), cfg.phase3_hparams, seed, store, "phase3"
    )
    log.info("phase3 done %s %s", cfg.trial_key, task)
    hooks.progress("evaluate", task, {"languages": len(spec.languages)})
    tok = tasks[task].tok
    if spec.format is Format.RETRIEVAL:
        towers = dual_encoder(
            model.encoder, model.heads[task], tok.tokenizer, tok.max_len, 64, bf16_autocast()
        )
        return evaluate_dual(spec, data.eval(spec), towers, out, candidate_entities(spec, data))
    predict = predictor(model, spec, tok, 64, bf16_autocast())
    return evaluate(spec, data.eval(spec), predict, out)


def candidate_entities(spec: TaskSpec, data: DataAccess) -> tuple[Entity, ...] | None:
    """The entity pool of an entity-linking task (mentions, as the converter reads them:
    Mewsli-X); None where the candidates come from the examples themselves (LAReQA)."""
    if "mention" not in spec.columns:
        return None
    local = Path(data.local_dir) if data.local_dir else None
    native = Path(data.native_dir) if data.native_dir else None
    return entity_pool(spec, local_dir=local, native_dir=native)
