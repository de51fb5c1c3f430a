"""The head's negative log-likelihood (issue 15, item 6): what `scored_predictor` returns
beside the predictions equals torch's cross-entropy computed here, independently, on the
logits of a plain forward pass (no length sorting, no numpy), for every head format."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from synth_examples import CASES, synthetic_texts, tagging_examples
from torch.nn import functional as F

from evaluation.predict import evaluate
from evaluation.tasks import Format, get_task
from storage.schema import METRICS
from trainers.formats import HEADS, head_for, num_labels
from trainers.heads import IGNORE, gold_nll
from trainers.taskmodel import TaskModel, Tokenization, scored_predictor, task_features
from trainers.tokenizer import tokenizer_digest


def _model(task: str, tiny, examples) -> TaskModel:  # type: ignore[no-untyped-def]
    spec = get_task(task)
    torch.manual_seed(3)
    head = head_for(spec).build(tiny.encoder.config.hidden_size, num_labels(spec, examples))
    with torch.no_grad():  # a head far from uniform, so the likelihood is not trivial
        for p in head.parameters():
            p.mul_(20.0)
    return TaskModel(tiny.encoder, {task: head}).eval()


def _expected(task: str, model: TaskModel, tok: Tokenization, examples) -> float:  # type: ignore[no-untyped-def]
    """Mean nll per unit, from torch.cross_entropy on each feature's own forward pass; the
    targets from the *training* features (start/end of the span head come from there)."""
    spec = get_task(task)
    kind = head_for(spec)
    features = task_features(spec, examples, tok, "test-train", train=True)
    pad = tok.tokenizer.pad_token_id
    total, units = 0.0, 0
    per_window: dict[int, list[float]] = {}
    with torch.no_grad():
        for feat in features:
            batch = kind.collate([feat], pad)
            logits = kind.forward(model.encoder, model.heads[task], batch).float()
            if task == "udpos":
                ce = F.cross_entropy(logits[0], batch["labels"][0], ignore_index=IGNORE,
                                     reduction="sum")  # fmt: skip
                total += float(ce)
                units += int((batch["labels"] != IGNORE).sum())
            elif task == "xquad":
                start = F.cross_entropy(logits[..., 0], batch["start"])
                end = F.cross_entropy(logits[..., 1], batch["end"])
                per_window.setdefault(feat["example"], []).append(float(start + end) / 2)
            else:
                total += float(F.cross_entropy(logits, batch["labels"]))
                units += 1
    if task == "xquad":
        return float(np.mean([np.mean(v) for v in per_window.values()]))
    return total / units


@pytest.mark.parametrize("task", sorted(CASES))
def test_nll_is_the_cross_entropy_of_the_same_logits(task: str, tiny) -> None:  # type: ignore[no-untyped-def]
    examples = CASES[task](synthetic_texts(12, seed=4))
    tok = Tokenization(tiny.tokenizer, tokenizer_digest(tiny.tokenizer), 20, None)
    model = _model(task, tiny, examples)
    found = scored_predictor(model, get_task(task), tok, 5, False)(examples)
    assert found.nll is not None and found.nll.shape == (len(examples), 2)
    value = found.nll[:, 0].sum() / found.nll[:, 1].sum()
    expected = _expected(task, model, tok, examples)
    assert value == pytest.approx(expected, rel=1e-5)
    assert value > 0.05  # not a degenerate zero
    if task == "xquad":  # the window of 20 tokens splits these contexts
        windows = task_features(get_task(task), examples, tok, "eval", train=False)
        assert len(windows) > len(examples)


def test_evaluate_writes_nll_and_sampling_se_rows(tiny) -> None:  # type: ignore[no-untyped-def]
    examples = tagging_examples(synthetic_texts(12, seed=5))
    tok = Tokenization(tiny.tokenizer, tokenizer_digest(tiny.tokenizer), 32, None)
    spec = get_task("udpos")
    model = _model("udpos", tiny, examples)
    rows = evaluate(spec, {"de": examples}, scored_predictor(model, spec, tok, 4, False), None)
    by_metric = {r["metric"]: r for r in rows}
    assert {"f1", "f1_se", "nll", "nll_se"} <= set(by_metric)
    assert all(METRICS[r["metric"]].contains(r["value"]) for r in rows)
    assert 0 < by_metric["nll_se"]["value"] < by_metric["nll"]["value"]
    assert by_metric["nll"]["n_examples"] == len(examples)


def test_gold_nll_golden_values() -> None:
    assert float(gold_nll(np.array([1.0, 2.0, 3.0]), 0)) == pytest.approx(
        math.log(1 + math.e + math.e**2)
    )
    rows = gold_nll(np.array([[0.0, 0.0], [10.0, -10.0]]), np.array([1, 0]))
    assert rows == pytest.approx([math.log(2), math.log1p(math.exp(-20))])


def test_retrieval_has_no_head_likelihood() -> None:
    assert HEADS[Format.RETRIEVAL].nll is None
    assert all(kind.nll is not None for f, kind in HEADS.items() if f is not Format.RETRIEVAL)
