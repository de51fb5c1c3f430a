"""A small deterministic training run, used in-process and as a subprocess to kill.

As a script: ``python resume_job.py CKPT_DIR OUT_JSON`` trains (resuming from CKPT_DIR when
it holds a checkpoint), prints ``STEP <n>`` after each step's checkpoint is written, and
writes a digest of the final weights and the dev predictions to OUT_JSON.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Callable

import torch
from synth_examples import classification_examples, synthetic_texts

from evaluation.tasks import get_task
from trainers.checkpoint import CheckpointStore
from trainers.formats import head_for
from trainers.ladder import LADDER
from trainers.loop import TaskData, TrainResult, TrainSpec, train
from trainers.models import build_pretrained
from trainers.taskmodel import TaskModel, Tokenization, predictor, task_features
from trainers.tokenizer import tokenizer_digest

STEPS = 12
SPEC = TrainSpec(
    lr=3e-3,
    batch_size=8,
    grad_accum=2,
    warmup_ratio=0.2,
    eval_every=3,
    patience=0,
    weight_decay=0.01,
    max_grad_norm=1.0,
    seed=7,
    max_steps=STEPS,
    checkpoint_every=1,
)


def build(cache_dir: str) -> tuple[TaskModel, TaskData]:
    torch.set_num_threads(1)
    texts = synthetic_texts()
    pre = build_pretrained(LADDER["tiny-s"], seed=0, corpus=lambda: texts, cache_dir=cache_dir)
    spec = get_task("xnli")
    torch.manual_seed(1)
    model = TaskModel(pre.encoder, {"xnli": head_for(spec).build(LADDER["tiny-s"].hidden, 3)})
    tok = Tokenization(pre.tokenizer, tokenizer_digest(pre.tokenizer), 48, None)
    train_ex = classification_examples(synthetic_texts(40, seed=1))
    dev = classification_examples(synthetic_texts(12, seed=2))
    return model, TaskData(spec, task_features(spec, train_ex, tok, "train", True), dev, tok)


def run(
    ckpt_dir: str, cache_dir: str, on_step: Callable[[int, float], None] | None = None
) -> tuple[TaskModel, TaskData, TrainResult]:
    model, data = build(cache_dir)
    result = train(
        model, {"xnli": data}, SPEC, checkpoints=CheckpointStore(ckpt_dir), on_step=on_step
    )
    return model, data, result


def outcome(model: TaskModel, data: TaskData, result: TrainResult) -> dict:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.numpy().tobytes())
    preds = predictor(model, data.spec, data.tok, 16, False)(data.dev)
    return {
        "weights": h.hexdigest(),
        "predictions": preds,
        "best": result.best_score,
        "history": result.history,
    }


def main(ckpt_dir: str, out: str) -> None:
    def report(step: int, _loss: float) -> None:
        print(f"STEP {step}", flush=True)

    with tempfile.TemporaryDirectory() as cache:
        model, data, result = run(ckpt_dir, cache, report)
        with open(out, "w") as f:
            json.dump(outcome(model, data, result), f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
