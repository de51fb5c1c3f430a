"""Zero-shot prediction of a cell's trained models on every language of a target task.

`model_rows`: a phase-3 model (the encoder and the task's trained head) predicts every
language; `encoder_rows`: Tatoeba and BUCC are scored on the phase-2 encoder directly (BUCC
tunes its threshold on its `tune` split). Both write the prediction files under `out` and
return the rows; `published` publishes those files (fenced) as a whole. The same code runs
in the trial of a one-process cell (`trainers.cell`) and in the prediction task of a
distributed one (`trainers.remote`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace

from evaluation.data.examples import Entity
from evaluation.predict import Row, evaluate, evaluate_dual, evaluate_retrieval
from evaluation.tasks import Format, TaskSpec
from storage.files import publish_dir
from trainers.celldata import DataAccess
from trainers.dual import dual_encoder
from trainers.job import CellJob
from trainers.models import Pretrained
from trainers.phase import device
from trainers.taskmodel import TaskModel, Tokenization, embedder, scored_predictor

RETRIEVAL_MAX_LEN = 128
PREDICT_BATCH = 64


def published(job: CellJob, task: str, rows_of: Callable[[str], list[Row]]) -> list[Row]:
    """`rows_of(out)`, its prediction files written under a fresh folder `out` of the node
    cache, then published (fenced) as a whole as the cell's predictions of `task`."""
    os.makedirs(job.paths.cache_dir, exist_ok=True)
    out = tempfile.mkdtemp(prefix=".predictions-", dir=job.paths.cache_dir)
    try:
        rows = rows_of(out)
        publish_dir(os.path.join(out, task), job.paths.predictions(task), job.runtime.fence)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return rows


def model_rows(
    job: CellJob, data: DataAccess, spec: TaskSpec, model: TaskModel, tok: Tokenization, out: str
) -> list[Row]:
    """Every language of `spec` predicted by `model` (on its device, in the model's precision)."""
    bf16 = job.config.model.execution.precision == "bf16"
    if spec.format is Format.RETRIEVAL:
        head = model.heads[spec.name]
        towers = dual_encoder(model.encoder, head, tok.tokenizer, tok.max_len, PREDICT_BATCH, bf16)
        return evaluate_dual(spec, data.eval(spec), towers, out, candidate_entities(spec, data))
    predict = scored_predictor(model, spec, tok, PREDICT_BATCH, bf16)
    return evaluate(spec, data.eval(spec), predict, out)


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


def candidate_entities(spec: TaskSpec, data: DataAccess) -> tuple[Entity, ...] | None:
    """The entity pool of an entity-linking task (mentions, as the converter reads them:
    Mewsli-X); None where the candidates come from the examples themselves (LAReQA)."""
    if "mention" not in spec.columns:
        return None
    return data.entities(spec)
