"""Task heads on one shared encoder: `HeadKind` and the heads of the classification,
multiple-choice and tagging formats (`trainers.formats` maps every format to its head).

A `HeadKind` is plain functions, no inheritance: `build` the head module, `featurize`
examples into token ids (cached by `trainers.features`), `collate` features into a padded
batch, `forward` encoder + head to logits, `loss`, and `decode` per-feature outputs back to
predictions in the scorer's in-memory form (`evaluation.scorers`). Span extraction lives
in `trainers.span`, the retrieval dual encoder in `trainers.dual`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from evaluation.tasks import TaskSpec

Feature = dict[str, Any]
Batch = dict[str, Tensor]
IGNORE = -100


@dataclass(frozen=True)
class HeadKind:
    build: Callable[[int, int], nn.Module]  # (hidden size, number of labels) -> head
    featurize: Callable[[Sequence[Any], Any, int, bool], list[Feature]]
    collate: Callable[[list[Feature], int], Batch]
    forward: Callable[[nn.Module, nn.Module, Batch], Tensor]
    loss: Callable[[Tensor, Batch], Tensor]
    decode: Callable[[list[np.ndarray], list[Feature], Sequence[Any], TaskSpec], Any]


def label_name(spec: TaskSpec, index: int) -> str | int:
    return spec.labels[index] if spec.labels else index


class ClassificationHead(nn.Module):
    """RoBERTa's: dense + tanh over the <s> state, then a projection."""

    def __init__(self, hidden: int, n_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden, n_labels)

    def forward(self, states: Tensor) -> Tensor:
        x = self.dropout(states[:, 0])
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out_proj(x)


class TokenHead(nn.Module):
    def __init__(self, hidden: int, n_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden, n_labels)

    def forward(self, states: Tensor) -> Tensor:
        return self.out_proj(self.dropout(states))


def pad(rows: Sequence[Sequence[int]], value: int) -> Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    return out


def encode(encoder: nn.Module, batch: Batch) -> Tensor:
    return encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]


def _ids_batch(features: list[Feature], pad_id: int) -> Batch:
    ids = pad([f["input_ids"] for f in features], pad_id)
    return {"input_ids": ids, "attention_mask": (ids != pad_id).long()}


# --- sequence classification ----------------------------------------------------------


def _classify_featurize(examples: Sequence[Any], tok: Any, max_len: int, train: bool) -> list:
    del train
    pairs = [ex.text_b is not None for ex in examples]
    if all(pairs):
        enc = tok(
            [e.text_a for e in examples],
            [e.text_b for e in examples],
            truncation=True,
            max_length=max_len,
        )
    else:
        enc = tok([e.text_a for e in examples], truncation=True, max_length=max_len)
    return [
        {"input_ids": ids, "label": ex.label}
        for ids, ex in zip(enc["input_ids"], examples, strict=True)
    ]


def _label_collate(features: list[Feature], pad_id: int) -> Batch:
    batch = _ids_batch(features, pad_id)
    batch["labels"] = torch.tensor([f["label"] for f in features], dtype=torch.long)
    return batch


def _cls_forward(encoder: nn.Module, head: nn.Module, batch: Batch) -> Tensor:
    return head(encode(encoder, batch))


def _ce_loss(logits: Tensor, batch: Batch) -> Tensor:
    return nn.functional.cross_entropy(logits.float(), batch["labels"])


def _argmax_decode(outputs: list[np.ndarray], features: list, examples: Sequence, spec: TaskSpec):
    del features, examples
    return [label_name(spec, int(np.argmax(out))) for out in outputs]


CLASSIFICATION_HEAD = HeadKind(
    ClassificationHead,
    _classify_featurize,
    _label_collate,
    _cls_forward,
    _ce_loss,
    _argmax_decode,
)


# --- multiple choice --------------------------------------------------------------------


def _choice_featurize(examples: Sequence[Any], tok: Any, max_len: int, train: bool) -> list:
    del train
    firsts = [" ".join(p for p in (e.context, e.question) if p) for e in examples]
    flat_a = [a for a, e in zip(firsts, examples, strict=True) for _ in e.choices]
    flat_b = [c for e in examples for c in e.choices]
    enc = tok(flat_a, flat_b, truncation=True, max_length=max_len)["input_ids"]
    features, at = [], 0
    for ex in examples:
        n = len(ex.choices)
        features.append({"input_ids": enc[at : at + n], "label": ex.label})
        at += n
    return features


def _choice_collate(features: list[Feature], pad_id: int) -> Batch:
    n = len(features[0]["input_ids"])
    if any(len(f["input_ids"]) != n for f in features):
        raise ValueError("multiple-choice examples in one batch differ in their choice count")
    flat = [ids for f in features for ids in f["input_ids"]]
    batch = _ids_batch([{"input_ids": ids} for ids in flat], pad_id)
    batch["labels"] = torch.tensor([f["label"] for f in features], dtype=torch.long)
    batch["n_choices"] = torch.tensor(n)
    return batch


def _choice_forward(encoder: nn.Module, head: nn.Module, batch: Batch) -> Tensor:
    scores = head(encode(encoder, batch))
    return scores.view(-1, int(batch["n_choices"]))


CHOICE_HEAD = HeadKind(
    lambda hidden, _n: ClassificationHead(hidden, 1),
    _choice_featurize,
    _choice_collate,
    _choice_forward,
    _ce_loss,
    _argmax_decode,
)


# --- token classification ---------------------------------------------------------------


def _tag_featurize(examples: Sequence[Any], tok: Any, max_len: int, train: bool) -> list:
    """Label the first sub-word of each word; -100 on later sub-words and specials."""
    del train
    enc = tok(
        [list(e.tokens) for e in examples],
        is_split_into_words=True,
        truncation=True,
        max_length=max_len,
    )
    features = []
    for i, ex in enumerate(examples):
        labels, first, previous = [], [], None
        for pos, word in enumerate(enc.word_ids(i)):
            is_first = word is not None and word != previous
            labels.append(ex.tags[word] if is_first else IGNORE)
            if is_first:
                first.append(pos)
            previous = word
        features.append({"input_ids": enc["input_ids"][i], "labels": labels, "first": first})
    return features


def _tag_collate(features: list[Feature], pad_id: int) -> Batch:
    batch = _ids_batch(features, pad_id)
    batch["labels"] = pad([f["labels"] for f in features], IGNORE)
    return batch


def _tag_loss(logits: Tensor, batch: Batch) -> Tensor:
    return nn.functional.cross_entropy(
        logits.float().flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE
    )


def _tag_decode(outputs: list[np.ndarray], features: list, examples: Sequence, spec: TaskSpec):
    """Tags per word; words cut off by truncation get the first label (``O`` for NER)."""
    result = []
    for out, feat, ex in zip(outputs, features, examples, strict=True):
        ids = [int(np.argmax(out[pos])) for pos in feat["first"]]
        ids += [0] * (len(ex.tokens) - len(ids))
        result.append([label_name(spec, i) for i in ids])
    return result


TAGGING_HEAD = HeadKind(
    TokenHead, _tag_featurize, _tag_collate, _cls_forward, _tag_loss, _tag_decode
)
