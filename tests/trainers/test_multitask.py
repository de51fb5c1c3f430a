from __future__ import annotations

from collections import Counter

import torch
from synth_examples import classification_examples, synthetic_texts

from evaluation.data.multitask import MultitaskSampler
from evaluation.tasks import get_task
from trainers.formats import head_for
from trainers.ladder import LADDER
from trainers.loop import TaskData, TrainSpec, train
from trainers.taskmodel import TaskModel, Tokenization, task_features
from trainers.tokenizer import tokenizer_digest


def test_multitask_draws_batches_in_the_samplers_proportions(tiny) -> None:
    tok = Tokenization(tiny.tokenizer, tokenizer_digest(tiny.tokenizer), 16, None)
    sizes = {"mnli": 30, "qqp": 90}
    tasks, heads = {}, {}
    for i, (name, n) in enumerate(sizes.items()):
        spec = get_task(name)
        examples = classification_examples(synthetic_texts(n, seed=i))
        examples = [
            e.__class__(e.id, e.text_a, e.text_b, e.label % len(spec.labels)) for e in examples
        ]
        tasks[name] = TaskData(spec, task_features(spec, examples, tok, "train", True), [], tok)
        heads[name] = head_for(spec).build(LADDER["tiny-s"].hidden, len(spec.labels))
    model = TaskModel(tiny.encoder, heads)
    spec = TrainSpec(
        lr=1e-3,
        batch_size=2,
        grad_accum=10,
        warmup_ratio=0.0,
        eval_every=100,
        patience=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        seed=3,
        max_steps=15,
    )
    before = {n: h.out_proj.weight.clone() for n, h in heads.items()}
    result = train(model, tasks, spec)
    sampler = MultitaskSampler(sizes, seed=3)
    assert result.drawn == dict(Counter(sampler.schedule(150)))
    assert abs(result.drawn["qqp"] / 150 - sampler.probabilities()["qqp"]) < 0.1
    for name, head in heads.items():  # one head per task, each trained
        assert not torch.equal(before[name], head.out_proj.weight)
