"""Span extraction (SQuAD-style): windowed features and n-best answer post-processing.

Contexts longer than the window are split into overlapping windows (`doc_stride` tokens
of overlap); each window keeps the offset mapping of its context tokens so predicted token
spans map back to character spans of the original context. A training window whose answer
lies outside it points at <s> (index 0), as for SQuAD 2.0's unanswerable questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from evaluation.tasks import TaskSpec
from trainers.heads import Batch, Feature, HeadKind, _ids_batch, encode, gold_nll

N_BEST = 20
MAX_ANSWER_TOKENS = 30


def doc_stride(max_len: int) -> int:
    return min(128, max_len // 4)


def _questions(examples: Sequence[Any], tok: Any, max_len: int) -> list[str]:
    """Questions cut to at most a quarter of the window (in tokens), as max_query_length."""
    limit = max(4, max_len // 4)
    enc = tok([e.question for e in examples], add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for ex, offsets in zip(examples, enc["offset_mapping"], strict=True):
        out.append(ex.question[: offsets[limit - 1][1]] if len(offsets) > limit else ex.question)
    return out


def _positions(offsets: list, answer: Any) -> tuple[int, int]:
    """Token start/end of `answer` in one window, or (0, 0) when it is not inside.
    `offsets` are the window's character offsets, None for tokens outside the context."""
    if answer is None:
        return 0, 0
    start_char, end_char = answer.start, answer.start + len(answer.text)
    ctx = [i for i, o in enumerate(offsets) if o is not None]
    if not ctx or offsets[ctx[0]][0] > start_char or offsets[ctx[-1]][1] < end_char:
        return 0, 0
    start = next(i for i in ctx if offsets[i][1] > start_char)
    end = next(i for i in reversed(ctx) if offsets[i][0] < end_char)
    return start, end


def featurize(examples: Sequence[Any], tok: Any, max_len: int, train: bool) -> list[Feature]:
    enc = tok(
        _questions(examples, tok, max_len),
        [e.context for e in examples],
        truncation="only_second",
        max_length=max_len,
        stride=doc_stride(max_len),
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    features = []
    for i, ids in enumerate(enc["input_ids"]):
        index = enc["overflow_to_sample_mapping"][i]
        seq = enc.sequence_ids(i)
        offsets = [
            o if s == 1 else None for o, s in zip(enc["offset_mapping"][i], seq, strict=True)
        ]
        feat: Feature = {"input_ids": ids, "example": index, "offsets": offsets}
        if train:
            feat["start"], feat["end"] = _positions(offsets, first_answer(examples[index]))
        features.append(feat)
    return features


def first_answer(example: Any) -> Any:
    """The answer a window is trained (and its likelihood measured) on: the first gold."""
    return example.answers[0] if example.answers else None


def collate(features: list[Feature], pad_id: int) -> Batch:
    batch = _ids_batch(features, pad_id)
    if "start" in features[0]:
        batch["start"] = torch.tensor([f["start"] for f in features], dtype=torch.long)
        batch["end"] = torch.tensor([f["end"] for f in features], dtype=torch.long)
    return batch


def forward(encoder: nn.Module, head: nn.Module, batch: Batch) -> Tensor:
    return head(encode(encoder, batch))  # (batch, length, 2): start and end logits


def loss(logits: Tensor, batch: Batch) -> Tensor:
    logits = logits.float()
    start = nn.functional.cross_entropy(logits[..., 0], batch["start"])
    end = nn.functional.cross_entropy(logits[..., 1], batch["end"])
    return (start + end) / 2


def _best_span(out: np.ndarray, offsets: list) -> tuple[float, int, int] | None:
    starts = np.argsort(-out[:, 0], kind="stable")[:N_BEST]
    ends = np.argsort(-out[:, 1], kind="stable")[:N_BEST]
    best = None
    for s in starts:
        if s >= len(offsets) or offsets[s] is None:
            continue
        for e in ends:
            if e < s or e - s + 1 > MAX_ANSWER_TOKENS or e >= len(offsets) or offsets[e] is None:
                continue
            score = float(out[s, 0] + out[e, 1])
            if best is None or score > best[0]:
                best = (score, offsets[s][0], offsets[e][1])
    return best


def decode(
    outputs: list[np.ndarray], features: list[Feature], examples: Sequence[Any], spec: TaskSpec
) -> dict[str, str]:
    """{question id: answer text}: the best valid span over the example's windows.

    Where unanswerable questions exist (SQuAD 2.0), the empty answer wins when the <s>
    score beats every span.
    """
    del spec
    nullable = any(not ex.answers for ex in examples)
    best: dict[int, tuple[float, int, int]] = {}
    null: dict[int, float] = {}
    for out, feat in zip(outputs, features, strict=True):
        index = feat["example"]
        null[index] = min(null.get(index, np.inf), float(out[0, 0] + out[0, 1]))
        span = _best_span(out, feat["offsets"])
        if span is not None and (index not in best or span[0] > best[index][0]):
            best[index] = span
    predictions = {}
    for i, ex in enumerate(examples):
        span = best.get(i)
        empty = span is None or (nullable and null.get(i, -np.inf) > span[0])
        predictions[ex.id] = "" if empty or span is None else ex.context[span[1] : span[2]].strip()
    return predictions


def nll(outputs: list[np.ndarray], features: list[Feature], examples: Sequence[Any]) -> np.ndarray:
    """Per question: the mean over its windows of the training loss's term, (start + end
    cross-entropy) / 2, the targets as in training (the first gold answer's tokens; <s>
    where the window does not hold it); one unit per question."""
    sums, windows = np.zeros(len(examples)), np.zeros(len(examples))
    for out, feat in zip(outputs, features, strict=True):
        index = feat["example"]
        start, end = _positions(feat["offsets"], first_answer(examples[index]))
        sums[index] += float(gold_nll(out[:, 0], start) + gold_nll(out[:, 1], end)) / 2
        windows[index] += 1
    return np.column_stack([sums / np.maximum(windows, 1), np.ones(len(examples))])


SPAN_HEAD = HeadKind(
    lambda hidden, _n: nn.Linear(hidden, 2), featurize, collate, forward, loss, decode, nll
)
