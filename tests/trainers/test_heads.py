from __future__ import annotations

from pathlib import Path

import pytest
import torch
from synth_examples import CASES, span_examples, synthetic_texts, tagging_examples

from evaluation.tasks import Format, get_task
from evaluation.tasks.spec import Role, TaskSpec
from storage.errors import UserError
from trainers.formats import HEADS, head_for, num_labels
from trainers.loop import TaskData, TrainSpec, train
from trainers.span import decode as span_decode
from trainers.taskmodel import TaskModel, Tokenization, predictor, task_features
from trainers.tokenizer import tokenizer_digest


def spec(lr: float = 3e-3, steps: int = 60) -> TrainSpec:
    return TrainSpec(
        lr=lr,
        batch_size=8,
        grad_accum=1,
        warmup_ratio=0.0,
        eval_every=1000,
        patience=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        seed=0,
        max_steps=steps,
    )


def tokenization(tiny, max_len: int = 48) -> Tokenization:
    return Tokenization(tiny.tokenizer, tokenizer_digest(tiny.tokenizer), max_len, None)


@pytest.mark.parametrize("task", sorted(CASES))
def test_each_head_trains_and_its_loss_falls(task: str, tiny) -> None:
    task_spec = get_task(task)
    examples = CASES[task](synthetic_texts(32, seed=1))
    tok = tokenization(tiny)
    kind = head_for(task_spec)
    torch.manual_seed(0)
    head = kind.build(tiny.encoder.config.hidden_size, num_labels(task_spec, examples))
    model = TaskModel(tiny.encoder, {task: head})
    data = TaskData(task_spec, task_features(task_spec, examples, tok, "train", True), [], tok)
    losses: list[float] = []
    train(model, {task: data}, spec(), on_step=lambda _s, loss: losses.append(loss))
    assert sum(losses[-10:]) < 0.7 * sum(losses[:10])
    predictions = predictor(model, task_spec, tok, 16, False)(examples[:5])
    assert len(predictions) == 5


def test_every_format_but_retrieval_has_a_head() -> None:
    assert set(HEADS) >= {
        Format.CLASSIFICATION,
        Format.MULTIPLE_CHOICE,
        Format.SPAN_QA,
        Format.TAGGING,
    }


def test_unsupported_format_is_a_one_line_user_error() -> None:
    saved = HEADS.pop(Format.TAGGING)
    try:
        with pytest.raises(UserError, match=r"^task udpos: no head supports format tagging$"):
            head_for(get_task("udpos"))
    finally:
        HEADS[Format.TAGGING] = saved


def test_tagging_labels_only_the_first_subword(tiny) -> None:
    task_spec = get_task("udpos")
    example = tagging_examples(["kalomireto ka shinavuze"])[0]
    feat = task_features(task_spec, [example], tokenization(tiny), "x", True)[0]
    labelled = [lab for lab in feat["labels"] if lab != -100]
    assert labelled == list(example.tags)
    assert len(feat["first"]) == 3 and feat["labels"][0] == -100


def test_span_features_cover_long_contexts_with_windows(tiny) -> None:
    task_spec = get_task("xquad")
    text = " ".join(synthetic_texts(20, seed=2))
    example = span_examples([text])[0]
    feats = task_features(task_spec, [example], tokenization(tiny, 32), "x", True)
    assert len(feats) > 2
    answer = example.answers[0]
    hits = [f for f in feats if f["start"] > 0]
    assert hits, "the answer is inside some window"
    f = hits[0]
    begin, end = f["offsets"][f["start"]][0], f["offsets"][f["end"]][1]
    assert text[begin:end].strip() == answer.text


def test_span_decode_maps_the_best_span_back_to_text(tiny) -> None:
    task_spec = get_task("xquad")
    example = span_examples(["ka lo mi re to shi"])[0]
    feat = task_features(task_spec, [example], tokenization(tiny), "x", True)[0]
    logits = torch.full((len(feat["input_ids"]), 2), -5.0)
    logits[feat["start"], 0] = 5.0
    logits[feat["end"], 1] = 5.0
    eval_feat = task_features(task_spec, [example], tokenization(tiny), "x", False)
    assert span_decode([logits.numpy()], eval_feat, [example], task_spec) == {"q0": "re"}


def test_tagging_task_without_label_list_counts_tags(tmp_path: Path) -> None:
    ccg = TaskSpec(
        name="ccgx",
        role=Role.INTERMEDIATE,
        format=Format.TAGGING,
        languages=("en",),
        metrics=("accuracy",),
        headline="accuracy",
        scorer="token_accuracy",
        version=1,
    )
    assert num_labels(ccg, tagging_examples(["ka lo mi re to shi na"], 50)) == 4
