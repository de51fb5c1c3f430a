"""One grid cell, end to end: phase 2 once, then each target task (phase 3 + zero-shot).

The orchestrator calls `run_cell(job, hooks)` inside a Ray Tune trial; this module knows
nothing of Ray. `CellJob` holds plain values; `CellHooks` is how the cell asks what is
already done and hands over results (the orchestrator owns the ledger and the store).

- Phase 2 is skipped when `hooks.phase2_done()`: its final encoder is read from
  ``<phase2_dir>/final``. Otherwise it trains (resuming from ``<phase2_dir>/checkpoints``),
  publishes the encoder and tokenizer in Hugging Face format to ``<phase2_dir>/final`` and
  calls `hooks.mark_phase2_done`. For ``none`` nothing trains: the pretrained model is
  published as it is.
- Each target task not yet `target_done`: the phase-2 encoder only, a fresh head, phase 3
  on English (resuming from ``<cell_dir>/phase3/<task>/checkpoints``), then prediction on
  every language into ``<cell_dir>/predictions/<task>/test-<lang>.<ext>`` and
  `hooks.record(task, rows)`. Tatoeba and BUCC are scored on the phase-2 encoder directly
  (BUCC's threshold tuned on its validation gold); Mewsli-X and LAReQA train a dual encoder
  (`trainers.dual`) in phase 3 and rank their whole candidate pool.
- Seeds derive from `job.seed` and the phase and task names. The phase-1 weights of a
  local (tiny) model are fixed per model (seed `PHASE1_SEED`), as a pretrained model is.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from evaluation.data.examples import Entity
from evaluation.data.loaders import entity_pool
from evaluation.predict import Row, evaluate, evaluate_dual, evaluate_retrieval
from evaluation.tasks import Format, TaskSpec, get_task
from storage.errors import UserError
from storage.files import fetch_dir, is_remote, join, publish_dir
from trainers.celldata import DataAccess, derive_seed
from trainers.checkpoint import CheckpointStore, Resume
from trainers.dual import dual_encoder
from trainers.heads import head_for, num_labels
from trainers.ladder import ModelEntry
from trainers.loop import TaskData, TrainSpec, bf16_autocast, train
from trainers.models import Pretrained, build_pretrained, load_dir, save_pretrained
from trainers.taskmodel import TaskModel, Tokenization, embedder, predictor, task_features
from trainers.tokenizer import tokenizer_digest

log = logging.getLogger("trainers")
PHASE1_SEED = 0
RETRIEVAL_MAX_LEN = 128


@dataclass(frozen=True)
class CellJob:
    sweep: str
    trial_key: str
    phase2_key: str
    model: ModelEntry
    intermediate_task: str
    phase2_tasks: tuple[str, ...]  # () for none; the nine for multitask
    seed: int
    target_tasks: tuple[str, ...]
    phase2_hparams: Mapping[str, Mapping[str, Any]]  # task -> resolved hyperparameters
    phase3_hparams: Mapping[str, Mapping[str, Any]]
    data_source: str  # "hub" | "local"
    local_dir: str | None
    native_dir: str | None
    max_train: int | None
    max_dev: int | None
    max_eval: int | None
    phase2_dir: str  # URI or absolute path, shared by the cells with the same phase2_key
    cell_dir: str  # URI or absolute path of this cell
    cache_dir: str  # local directory for tokenizers and features
    attempt: int
    fail: bool = False  # test-only fault injection
    threads: int | None = None  # torch.set_num_threads for this process, when given
    resume: str = "if_available"  # trainers.checkpoint.Resume
    train_storage: str | None = None  # Ray Train runs (distributed models); None: <cell_dir>/train
    max_failures: int = 2  # Ray Train worker-group restarts per run (distributed models)


class CellHooks(Protocol):
    def phase2_done(self) -> bool: ...

    def mark_phase2_done(self, checkpoint: str) -> None: ...

    def target_done(self, task: str) -> bool: ...

    def record(self, task: str, rows: list[dict]) -> None: ...

    def progress(self, phase: str, target_task: str | None, detail: dict) -> None: ...


def run_cell(job: CellJob, hooks: CellHooks) -> None:
    if job.fail:
        raise RuntimeError(f"injected failure in cell {job.trial_key} (attempt {job.attempt})")
    if job.threads:
        torch.set_num_threads(job.threads)
    check_job(job)
    data = data_access(job)
    encoder_dir = phase2(job, hooks, data)
    for task in job.target_tasks:
        if hooks.target_done(task):
            log.info("target %s done already in %s", task, job.trial_key)
            continue
        hooks.record(task, target(job, hooks, data, task, encoder_dir))
        CheckpointStore(join(job.cell_dir, "phase3", task, "checkpoints")).clear()


def check_job(job: CellJob) -> None:
    """Fail before any training when a task has no head or the resume policy is unknown."""
    Resume(job.resume)
    for name in (*job.phase2_tasks, *job.target_tasks):
        spec = get_task(name)
        if spec.needs_target_training:
            head_for(spec)
    if job.model.resources.distributed:
        from trainers.placement import check_cell

        check_cell(job)


def data_access(job: CellJob) -> DataAccess:
    if job.data_source not in ("hub", "local"):
        raise UserError(f"data source {job.data_source!r} is not 'hub' or 'local'")
    source: Literal["hub", "local"] = "local" if job.data_source == "local" else "hub"
    return DataAccess(source, job.local_dir, job.native_dir, job.max_train, job.max_dev,
                      job.max_eval)  # fmt: skip


# --- phase 2 --------------------------------------------------------------------------


def phase2(job: CellJob, hooks: CellHooks, data: DataAccess) -> str:
    """A local directory holding the phase-2 encoder (trained now, or earlier)."""
    final = join(job.phase2_dir, "final")
    if hooks.phase2_done():
        log.info("phase2 reuse %s", job.phase2_key)
        return fetch_dir(final, os.path.join(job.cache_dir, "phase2", job.phase2_key))
    key = data.corpus_key() if job.model.source == "local_config" else None
    pre = build_pretrained(job.model, seed=PHASE1_SEED, corpus=data.corpus,
                           cache_dir=job.cache_dir, corpus_key=key)  # fmt: skip
    store = CheckpointStore(join(job.phase2_dir, "checkpoints"))
    if job.phase2_tasks:
        log.info("phase2 start %s", job.phase2_key)
        hooks.progress("phase2", None, {"tasks": list(job.phase2_tasks)})
        seed = derive_seed(job.seed, "phase2", job.intermediate_task)
        run_phase(
            job, hooks, data, pre, job.phase2_tasks, job.phase2_hparams, seed, store, "phase2"
        )
        log.info("phase2 done %s", job.phase2_key)
    publish_encoder(pre, final, job.cache_dir)
    hooks.mark_phase2_done(final)
    store.clear()
    return fetch_dir(final, os.path.join(job.cache_dir, "phase2", job.phase2_key))


def publish_encoder(pre: Pretrained, uri: str, cache_dir: str) -> None:
    parent = cache_dir if is_remote(uri) else os.path.dirname(uri.removeprefix("file://"))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".final-", dir=parent)
    try:
        save_pretrained(pre, tmp)
        if is_remote(uri) or not os.path.isdir(uri.removeprefix("file://")):
            publish_dir(tmp, uri)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- one training phase -----------------------------------------------------------------


def label_count(spec: TaskSpec, data: DataAccess) -> int:
    if spec.format is Format.TAGGING and not spec.labels:
        return len(data.labels(spec))
    return num_labels(spec, [])


def tokenization(pre: Pretrained, hparams: Mapping[str, Any], cache_dir: str) -> Tokenization:
    tok = pre.tokenizer
    return Tokenization(tok, tokenizer_digest(tok), int(hparams["max_seq_length"]), cache_dir)  # type: ignore[arg-type]


def phase_model(pre: Pretrained, names: tuple[str, ...], data: DataAccess, seed: int) -> TaskModel:
    """The encoder of `pre` with a fresh, seeded head per task."""
    torch.manual_seed(seed)
    hidden = pre.encoder.config.hidden_size
    heads = {}
    for name in names:
        spec = get_task(name)
        heads[name] = head_for(spec).build(hidden, label_count(spec, data))
    return TaskModel(pre.encoder, heads)


def run_phase(
    job: CellJob,
    hooks: CellHooks,
    data: DataAccess,
    pre: Pretrained,
    names: tuple[str, ...],
    hparams: Mapping[str, Mapping[str, Any]],
    seed: int,
    store: CheckpointStore,
    phase: str,
) -> tuple[TaskModel, dict[str, TaskData]]:
    """Train the heads of `names` on `pre`'s encoder (in place); one phase of the protocol.

    A model whose resources are `distributed` trains on Ray Train workers with DeepSpeed
    (`trainers.distributed`); its consolidated weights are then loaded into `model` here.
    """
    model = phase_model(pre, names, data, seed)
    tasks = phase_tasks(job, data, pre, names, hparams)
    if job.model.resources.distributed:
        from trainers.distributed import fit_phase

        fit_phase(job, pre, model, names, hparams, seed, phase)
        return model, tasks
    run = TrainSpec.from_hparams(hparams[names[0]], seed)
    model.to(device())
    report = _reporter(hooks, phase, names[0] if phase == "phase3" else None, run.eval_every)
    train(model, tasks, run, checkpoints=store, resume=Resume(job.resume), on_step=report)
    return model, tasks


def phase_tasks(
    job: CellJob,
    data: DataAccess,
    pre: Pretrained,
    names: tuple[str, ...],
    hparams: Mapping[str, Mapping[str, Any]],
) -> dict[str, TaskData]:
    tasks = {}
    for name in names:
        spec = get_task(name)
        tok = tokenization(pre, hparams[name], job.cache_dir)
        features = task_features(spec, data.train(spec), tok, "train", True)
        tasks[name] = TaskData(spec, features, data.dev(spec), tok)
    return tasks


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _reporter(
    hooks: CellHooks, phase: str, task: str | None, every: int
) -> Callable[[int, float], None]:
    def report(step: int, loss: float) -> None:
        # Every step: the hooks keep it cheap (they act on phase changes), and fault
        # injection and resume tracing need exact steps.
        hooks.progress(phase, task, {"step": step, "loss": loss})

    return report


# --- each target task ---------------------------------------------------------------------


def predictions_dir(job: CellJob) -> str:
    if is_remote(job.cell_dir):
        return os.path.join(job.cache_dir, "predictions", job.trial_key)
    return os.path.join(job.cell_dir.removeprefix("file://"), "predictions")


def target(job: CellJob, hooks: CellHooks, data: DataAccess, task: str, encoder_dir: str):
    """Rows of one target task: phase 3 and prediction, or retrieval on the encoder."""
    spec = get_task(task)
    pre = load_dir(encoder_dir, job.model)
    out = predictions_dir(job)
    hooks.progress("evaluate" if not spec.needs_target_training else "phase3", task, {})
    if spec.needs_target_training:
        rows = phase3_rows(job, hooks, data, spec, pre, out)
    else:
        rows = encoder_rows(job, data, spec, pre, out)
    if is_remote(job.cell_dir):
        publish_dir(os.path.join(out, task), join(job.cell_dir, "predictions", task))
    return rows


def encoder_rows(
    job: CellJob, data: DataAccess, spec: TaskSpec, pre: Pretrained, out: str
) -> list[Row]:
    """Tatoeba and BUCC on the phase-2 encoder; BUCC tunes on its `tune` (validation) split."""
    max_len = int(job.phase3_hparams.get(spec.name, {}).get("max_seq_length", RETRIEVAL_MAX_LEN))
    pre.encoder.to(device())  # type: ignore[arg-type]
    embed = embedder(pre.encoder, pre.tokenizer, job.model.retrieval_layer, max_len)
    tune = data.eval(replace(spec, eval=spec.tune)) if spec.tune else None
    return evaluate_retrieval(spec, data.eval(spec), embed, out, tune)


def phase3_rows(
    job: CellJob, hooks: CellHooks, data: DataAccess, spec: TaskSpec, pre: Pretrained, out: str
) -> list[Row]:
    """Phase 3 on English, then zero-shot prediction on every language."""
    task = spec.name
    store = CheckpointStore(join(job.cell_dir, "phase3", task, "checkpoints"))
    seed = derive_seed(job.seed, "phase3", task)
    log.info("phase3 start %s %s", job.trial_key, task)
    model, tasks = run_phase(
        job, hooks, data, pre, (task,), job.phase3_hparams, seed, store, "phase3"
    )
    log.info("phase3 done %s %s", job.trial_key, task)
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
