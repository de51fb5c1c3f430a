"""The model and data of one training phase, built the same way by the one-process path
(`trainers.cell`) and by each Ray Train worker (`trainers.distributed`).

A phase trains the heads of some tasks on one encoder: `phase_model` puts a fresh, seeded
head per task on the encoder (the MLM head starts from the checkpoint's own pretrained head
where it has one: `trainers.mlm`) (compiled in place when the model's `Execution` says so),
`phase_tasks` tokenises each task's English training examples (cached under the cell's
cache directory) beside its dev examples, `train_spec` is the loop's `TrainSpec` of a task's
hyperparameters with the model's precision and optimizer kernel. The encoder
itself is published in Hugging Face format by `publish_encoder`, through the write fence.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping

import torch

from evaluation.tasks import Format, TaskSpec, get_task
from storage.files import Fence, is_remote, publish_dir
from trainers.celldata import DataAccess
from trainers.formats import head_for, num_labels
from trainers.hparams import PhaseHparams
from trainers.ladder import FP32, Execution
from trainers.loop import TaskData, TrainSpec
from trainers.models import Pretrained, save_pretrained
from trainers.taskmodel import TaskModel, Tokenization, task_features
from trainers.tokenizer import tokenizer_digest

PHASE1_SEED = 0  # the phase-1 weights of a local (tiny) model are fixed per model


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def label_count(spec: TaskSpec, data: DataAccess) -> int:
    if spec.format is Format.TAGGING and not spec.labels:
        return len(data.labels(spec))
    return num_labels(spec, [])


def tokenization(pre: Pretrained, hparams: PhaseHparams, cache_dir: str) -> Tokenization:
    tok = pre.tokenizer
    return Tokenization(tok, tokenizer_digest(tok), hparams.max_seq_length, cache_dir)  # type: ignore[arg-type]


def phase_model(
    pre: Pretrained,
    names: tuple[str, ...],
    data: DataAccess,
    seed: int,
    execution: Execution = FP32,
) -> TaskModel:
    """The encoder of `pre` with a fresh, seeded head per task.

    With `execution.compile` the encoder is `torch.compile`d in place (`compile_encoder`): its
    parameter names, state dict and checkpoints stay those of the plain module.
    """
    torch.manual_seed(seed)
    hidden = pre.encoder.config.hidden_size
    heads = {}
    for name in names:
        spec = get_task(name)
        kind = head_for(spec)
        if kind.attach is not None:  # on the encoder itself (MLM: tied, pretrained head)
            heads[name] = kind.attach(pre.encoder, pre.location)
        else:
            heads[name] = kind.build(hidden, label_count(spec, data))
    if execution.compile:
        compile_encoder(pre.encoder)
    return TaskModel(pre.encoder, heads)


def compile_encoder(encoder: torch.nn.Module) -> None:
    """`torch.compile` in place, random ops drawn as eager torch draws them.

    Inductor would otherwise generate its own dropout masks: the same cell would train on
    other masks compiled than not. With `fallback_random` compiled and eager training agree to
    reduction noise (dropout is then not fused into its neighbours).
    """
    import torch._inductor.config as inductor

    inductor.fallback_random = True
    encoder.compile()


def train_spec(hparams: PhaseHparams, seed: int, execution: Execution) -> TrainSpec:
    """The loop's `TrainSpec`: `hparams`, the seed, and how the model runs."""
    return TrainSpec.from_hparams(
        hparams, seed, precision=execution.precision, fused_optimizer=execution.fused_optimizer
    )


def phase_tasks(
    data: DataAccess,
    pre: Pretrained,
    names: tuple[str, ...],
    hparams: Mapping[str, PhaseHparams],
    cache_dir: str,
) -> dict[str, TaskData]:
    """Each task's tokenised training features, English dev examples and tokenization."""
    tasks = {}
    for name in names:
        spec = get_task(name)
        tok = tokenization(pre, hparams[name], cache_dir)
        features = task_features(spec, data.train(spec), tok, "train", True)
        tasks[name] = TaskData(spec, features, data.dev(spec), tok)
    return tasks


def publish_encoder(pre: Pretrained, uri: str, cache_dir: str, fence: Fence | None = None) -> None:
    """`pre`'s encoder and tokenizer in Hugging Face format at `uri` (kept if already there)."""
    if fence is not None:
        fence()  # before the temporary directory beside a local `uri`, too
    parent = cache_dir if is_remote(uri) else os.path.dirname(uri.removeprefix("file://"))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".final-", dir=parent)
    try:
        save_pretrained(pre, tmp)
        if is_remote(uri) or not os.path.isdir(uri.removeprefix("file://")):
            publish_dir(tmp, uri, fence)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
