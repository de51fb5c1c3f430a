"""A distributed model's work outside its Train runs, each step as its own Ray task.

The trial that drives a distributed cell (XL, XXL: Ray Train workers with ZeRO) holds no
GPU and a token of memory (`orchestrator.driver.trial_resources`): it never builds or loads
the model. Each step that needs the weights outside a Train run is one Ray task with one
worker's bundle (`Resources.worker_bundle`: a GPU and its CPUs), in its own process on a
node that has them, and hands back plain values:

- `publish_pretrained`: the pretrained model published as an encoder folder (phase 1 of a
  model built from a config, where the Train workers start; phase 2 of `none`).
- `publish_trained`: the phase-2 Train run's consolidated model published as the phase-2
  encoder.
- `publish_trained`: also a phase-3 stage's consolidated model, published as the encoder the
  next stage or the target task starts from (`trainers.stages`).
- `predict`: one target task on every language (`trainers.zeroshot`), from the phase-3 Train
  run's consolidated model, or (Tatoeba, BUCC) from an encoder: the phase-2 one, or the last
  stage's (the SQuAD encoder under XTREME-R); the prediction files are published (fenced)
  and the rows returned.

The tasks run the code the one-process path runs in its trial. They are scheduled outside
the trial's placement group (which reserves nothing for them) and retried by Ray if their
node dies; every write is create-only, so a retry writes nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from typing import Any

import torch

from evaluation.predict import Row
from evaluation.tasks import get_task
from storage.files import fetch_dir
from trainers.celldata import derive_seed
from trainers.distributed import load_consolidated
from trainers.job import CellJob
from trainers.models import build_pretrained, load_dir
from trainers.phase import PHASE1_SEED, device, phase_model, publish_encoder, tokenization
from trainers.zeroshot import encoder_rows, model_rows, published

log = logging.getLogger("trainers")


def publish_pretrained(job: CellJob, uri: str) -> None:
    _call(job, _publish_pretrained, uri)


def publish_trained(job: CellJob, checkpoint: Any, uri: str) -> None:
    """`checkpoint`: a phase-2 Train run's last `ray.train.Checkpoint` (the consolidated model)."""
    _call(job, _publish_trained, checkpoint, uri)


def predict(job: CellJob, task: str, checkpoint: Any | None, encoder: str) -> list[Row]:
    """Rows of `task`: from the phase-3 run's `checkpoint`, or (None) from the encoder
    published at `encoder`."""
    rows: list[Row] = _call(job, _predict, task, checkpoint, encoder)
    return rows


def _call(job: CellJob, fn: Callable[..., Any], *args: Any) -> Any:
    import ray

    bundle = job.config.model.resources.worker_bundle()
    task = ray.remote(fn).options(
        num_cpus=bundle["CPU"],
        num_gpus=bundle.get("GPU", 0.0),
        scheduling_strategy="DEFAULT",  # not the trial's placement group
        name=f"{job.config.trial_key}-{fn.__name__.lstrip('_')}",
    )
    return ray.get(task.remote(job, *args))


# --- inside the task --------------------------------------------------------------------------


def _threads(job: CellJob) -> None:
    threads = job.runtime.threads or job.config.model.resources.cpus_per_worker
    torch.set_num_threads(max(1, int(threads)))


def _publish_pretrained(job: CellJob, uri: str) -> None:
    _threads(job)
    cfg, cache = job.config, job.paths.cache_dir
    key = cfg.data.corpus_key() if cfg.model.source == "local_config" else None
    pre = build_pretrained(cfg.model, seed=PHASE1_SEED, corpus=cfg.data.corpus,
                           cache_dir=cache, corpus_key=key)  # fmt: skip
    publish_encoder(pre, uri, cache, job.runtime.fence)


def _publish_trained(job: CellJob, checkpoint: Any, uri: str) -> None:
    _threads(job)
    with checkpoint.as_directory() as final:
        pre = load_dir(final, job.config.model)
    publish_encoder(pre, uri, job.paths.cache_dir, job.runtime.fence)


def _predict(job: CellJob, task: str, checkpoint: Any | None, encoder: str) -> list[Row]:
    _threads(job)
    cfg, cache = job.config, job.paths.cache_dir
    spec = get_task(task)
    log.info("evaluate %s %s in process %d", cfg.trial_key, task, os.getpid())
    if checkpoint is None:
        name = hashlib.sha256(encoder.encode()).hexdigest()[:16]  # a folder per encoder
        pre = load_dir(fetch_dir(encoder, os.path.join(cache, "encoders", name)), cfg.model)
        return published(job, task, lambda out: encoder_rows(job, cfg.data, spec, pre, out))
    with checkpoint.as_directory() as final:
        pre = load_dir(final, cfg.model)
        model = phase_model(pre, (task,), cfg.data, derive_seed(cfg.seed, "phase3", task))
        load_consolidated(final, model)
    model.to(device())
    tok = tokenization(pre, cfg.phase3_hparams[task], cache)
    return published(job, task, lambda out: model_rows(job, cfg.data, spec, model, tok, out))
