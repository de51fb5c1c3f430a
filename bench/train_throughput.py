"""Throughput of our training loop and evaluation, against the obvious alternatives.

    .venv/bin/python bench/train_throughput.py [--model tiny-m] [--steps 30] [--threads 1]

1. Training samples/s: `trainers.loop.train` vs `transformers.Trainer`, same model
   (XLM-R encoder + RoBERTa classification head, same init), same data, batch size and
   maximum sequence length, both with dynamic padding, no evaluation, no checkpoints.
2. Evaluation examples/s over every language of a task: `evaluation.predict.evaluate` with
   our predictor (tokenise once, length-sorted batches, inference mode) vs a plain loop
   that tokenises each batch in input order and calls `model(...)` under `no_grad`.
3. Peak resident memory of a phase-3 training of tiny-l (batch 16, length 128,
   checkpoints on), measured in a child process.
Prints the two ratios (ours / theirs; target >= 1.0) and the peak memory (target < 2 GiB).
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time

import torch
from transformers import (
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    XLMRobertaForSequenceClassification,
)

from evaluation.data.examples import ClassificationExample
from evaluation.predict import evaluate
from evaluation.tasks import get_task
from trainers.checkpoint import CheckpointStore
from trainers.heads import ClassificationHead
from trainers.ladder import LADDER
from trainers.loop import TaskData, TrainSpec, train
from trainers.models import build_pretrained, tiny_config
from trainers.taskmodel import TaskModel, Tokenization, scored_predictor, task_features
from trainers.tokenizer import tokenizer_digest

SYLLABLES = "ka lo mi re to shi na vu ze pa ri qo el an un os".split()
BATCH, MAX_LEN = 16, 64


def texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))) for _ in range(500)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(4, 40))) for _ in range(n)]


def examples(n: int, seed: int) -> list[ClassificationExample]:
    a, b = texts(n, seed), texts(n, seed + 1)
    return [ClassificationExample(f"e{i}", a[i], b[i], i % 3) for i in range(n)]


def hf_model(name: str) -> XLMRobertaForSequenceClassification:
    config = tiny_config(LADDER[name])
    config.num_labels = 3
    torch.manual_seed(0)
    return XLMRobertaForSequenceClassification(config)


def ours_model(name: str) -> TaskModel:
    reference = hf_model(name)
    head = ClassificationHead(reference.config.hidden_size, 3)
    head.load_state_dict(reference.classifier.state_dict())
    return TaskModel(reference.roberta, {"xnli": head})


def bench_training(name: str, steps: int, tok, cache: str) -> float:
    data = examples(BATCH * steps, 0)
    spec = get_task("xnli")
    tokn = Tokenization(tok, tokenizer_digest(tok), MAX_LEN, cache)
    feats = task_features(spec, data, tokn, "train", True)
    run = TrainSpec(
        lr=1e-4,
        batch_size=BATCH,
        grad_accum=1,
        warmup_ratio=0.1,
        eval_every=10**9,
        patience=0,
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=0,
        max_steps=steps,
    )
    model = ours_model(name)
    start = time.perf_counter()
    train(model, {"xnli": TaskData(spec, feats, [], tokn)}, run)
    ours = BATCH * steps / (time.perf_counter() - start)

    rows = [{"input_ids": f["input_ids"], "labels": f["label"]} for f in feats]
    args = TrainingArguments(
        output_dir=cache + "/hf",
        per_device_train_batch_size=BATCH,
        max_steps=steps,
        learning_rate=1e-4,
        warmup_steps=max(1, steps // 10),
        weight_decay=0.01,
        max_grad_norm=1.0,
        report_to=[],
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        use_cpu=not torch.cuda.is_available(),
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=hf_model(name),
        args=args,
        train_dataset=rows,
        data_collator=DataCollatorWithPadding(tok),
    )
    start = time.perf_counter()
    trainer.train()
    theirs = BATCH * steps / (time.perf_counter() - start)
    print(f"train samples/s: ours {ours:.1f}  transformers.Trainer {theirs:.1f}")
    return ours / theirs


def bench_eval(name: str, tok, languages: int, per_language: int) -> float:
    spec = get_task("xnli")
    by_lang = {
        lang: examples(per_language, 10 + i) for i, lang in enumerate(spec.languages[:languages])
    }
    model = ours_model(name).eval()
    tokn = Tokenization(tok, tokenizer_digest(tok), MAX_LEN, None)
    n = languages * per_language
    start = time.perf_counter()
    evaluate(spec, by_lang, scored_predictor(model, spec, tokn, 64, False), None)
    ours = n / (time.perf_counter() - start)

    plain = hf_model(name).eval()
    start = time.perf_counter()
    with torch.no_grad():
        for exs in by_lang.values():
            for i in range(0, len(exs), 64):
                chunk = exs[i : i + 64]
                enc = tok(
                    [e.text_a for e in chunk],
                    [e.text_b for e in chunk],
                    padding=True,
                    truncation=True,
                    max_length=MAX_LEN,
                    return_tensors="pt",
                )
                plain(**enc).logits.argmax(-1).tolist()
    theirs = n / (time.perf_counter() - start)
    print(f"eval examples/s:  ours {ours:.1f}  plain model(...) loop {theirs:.1f}")
    return ours / theirs


def peak_child(cache: str) -> None:
    """Phase-3 training of tiny-l; prints this process's peak RSS in MiB."""
    tok = build_pretrained(
        LADDER["tiny-l"], seed=0, corpus=lambda: texts(2000, 5), cache_dir=cache
    ).tokenizer
    spec = get_task("xnli")
    tokn = Tokenization(tok, tokenizer_digest(tok), 128, cache)
    feats = task_features(spec, examples(512, 0), tokn, "train", True)
    run = TrainSpec(
        lr=1e-4,
        batch_size=16,
        grad_accum=1,
        warmup_ratio=0.1,
        eval_every=20,
        patience=2,
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=0,
        max_steps=40,
    )
    model = ours_model("tiny-l")
    dev = examples(64, 99)
    train(
        model,
        {"xnli": TaskData(spec, feats, dev, tokn)},
        run,
        checkpoints=CheckpointStore(cache + "/ckpt"),
    )
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peak_memory_mib() -> float:
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run(
            [sys.executable, __file__, "--peak-child", cache],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-m")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--peak-child", metavar="CACHE_DIR")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.peak_child:
        peak_child(args.peak_child)
        return
    with tempfile.TemporaryDirectory() as cache:
        tok = build_pretrained(
            LADDER[args.model], seed=0, corpus=lambda: texts(2000, 5), cache_dir=cache
        ).tokenizer
        train_ratio = bench_training(args.model, args.steps, tok, cache)
        eval_ratio = bench_eval(args.model, tok, languages=15, per_language=128)
    peak = peak_memory_mib()
    print(f"train ratio (ours / Trainer): {train_ratio:.2f}  (target >= 1.0)")
    print(f"eval ratio (ours / plain loop): {eval_ratio:.2f}  (target >= 1.0)")
    print(f"peak RSS, tiny-l phase-3 training: {peak:.0f} MiB  (target < 2048)")


if __name__ == "__main__":
    main()
