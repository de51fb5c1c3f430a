"""Task heads on one shared encoder: `HeadKind` and the heads of the classification,
multiple-choice and tagging formats (`trainers.formats` maps every format to its head).

A `HeadKind` is plain functions, no inheritance: `build` the head module, `featurize`
examples into token ids (cached by `trainers.features`), `collate` features into a padded
batch, `forward` encoder + head to logits, `loss`, `decode` per-feature outputs back to
predictions in the scorer's in-memory form (`evaluation.scorers`), and `nll`: from the same
outputs, the negative log-likelihood of each example's gold under the head (the training
loss's terms, in nats, without dropout). Span extraction lives in `trainers.span`, the
retrieval dual encoder (no `nll`) in `trainers.dual`, masked-language modelling (`attach`ed
to the encoder) in `trainers.mlm`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import logsumexp
from torch import Tensor, nn

from evaluation.tasks import TaskSpec

Feature = dict[str, Any]
Batch = dict[str, Tensor]
IGNORE = -100
# Per example, (summed negative log-likelihood of its gold in nats, units summed): one unit
# per example, one per labelled first sub-word for tagging. The language's nll is
# sum / units over its examples (`evaluation.predict.Predicted`).
NllFn = Callable[[list[np.ndarray], list[Feature], Sequence[Any]], np.ndarray]


@dataclass(frozen=True)
class HeadKind:
    build: Callable[[int, int], nn.Module]  # (hidden size, number of labels) -> head
    featurize: Callable[[Sequence[Any], Any, int, bool], list[Feature]]
    collate: Callable[[list[Feature], int], Batch]
    forward: Callable[[nn.Module, nn.Module, Batch], Tensor]
    loss: Callable[[Tensor, Batch], Tensor]
    decode: Callable[[list[np.ndarray], list[Feature], Sequence[Any], TaskSpec], Any]
    nll: NllFn | None = None  # None: the head has no per-example likelihood (retrieval)
    # A head built on the encoder itself, in place of `build`: (encoder, where the pretrained
    # checkpoint is or None) -> head. The MLM head (`trainers.mlm`): tied to the encoder's
    # input embeddings, from the checkpoint's own pretrained head where it has one.
    attach: Callable[[nn.Module, str | None], nn.Module] | None = None


def gold_nll(logits: np.ndarray, gold: np.ndarray | int) -> np.ndarray:
    """-log softmax(logits)[gold] over the last axis, in float64: cross-entropy per row."""
    x = np.asarray(logits, dtype=np.float64)
    index = np.asarray(gold)[..., None]
    return logsumexp(x, axis=-1) - np.take_along_axis(x, index, axis=-1)[..., 0]


def _per_example(values: Sequence[float]) -> np.ndarray:
    out = np.ones((len(values), 2))
    out[:, 0] = values
    return out


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


def _label_nll(outputs: list[np.ndarray], features: list, examples: Sequence) -> np.ndarray:
    """Cross-entropy of the gold label (class or choice) per example."""
    del examples
    return _per_example(
        [float(gold_nll(o, f["label"])) for o, f in zip(outputs, features, strict=True)]
    )


CLASSIFICATION_HEAD = HeadKind(
    ClassificationHead,
    _classify_featurize,
    _label_collate,
    _cls_forward,
    _ce_loss,
    _argmax_decode,
    _label_nll,
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
    _label_nll,
)


# --- token classification ---------------------------------------------------------------


def _tag_featurize(examples: Sequence[Any], tok: Any, max_len: int, train: bool) -> list:
    """Label the first sub-word of each word; -100 on later sub-words and specials.

    A sentence longer than the window is cut at word boundaries into consecutive windows of
    at most `max_len` tokens (specials included), each a feature of its own, as XTREME's
    preprocessing of UD-POS and PAN-X cuts long sentences; `_tag_decode` joins their tags
    back. A single word longer than a whole window keeps only its first sub-words.
    """
    del train
    words = [list(e.tokens) for e in examples]
    spans = _tag_windows(words, tok, max(1, max_len - tok.num_special_tokens_to_add()))
    enc = tok(
        [words[i][a:b] for i, a, b in spans],
        is_split_into_words=True,
        truncation=True,
        max_length=max_len,
    )
    features = []
    for k, (i, a, b) in enumerate(spans):
        labels, first, previous = [], [-1] * (b - a), None
        for pos, word in enumerate(enc.word_ids(k)):
            is_first = word is not None and word != previous
            labels.append(examples[i].tags[a + word] if is_first else IGNORE)
            if is_first:
                first[word] = pos
            previous = word
        features.append(
            {"input_ids": enc["input_ids"][k], "labels": labels, "first": first,
             "example": i, "word_offset": a}
        )  # fmt: skip
    return features


def _tag_windows(words: list[list[str]], tok: Any, room: int) -> list[tuple[int, int, int]]:
    """(sentence, first word, end word) of each window: words are added while their
    sub-words fit in `room`; a word that does not fit starts the next window."""
    if not words:
        return []
    pieces = tok(words, is_split_into_words=True, add_special_tokens=False)
    spans = []
    for i, sentence in enumerate(words):
        counts = Counter(w for w in pieces.word_ids(i) if w is not None)
        start, used = 0, 0
        for j in range(len(sentence)):
            if used + counts[j] > room and j > start:
                spans.append((i, start, j))
                start, used = j, 0
            used += counts[j]
        spans.append((i, start, len(sentence)))
    return spans


def _tag_collate(features: list[Feature], pad_id: int) -> Batch:
    batch = _ids_batch(features, pad_id)
    batch["labels"] = pad([f["labels"] for f in features], IGNORE)
    return batch


def _tag_loss(logits: Tensor, batch: Batch) -> Tensor:
    return nn.functional.cross_entropy(
        logits.float().flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE
    )


def _tag_decode(outputs: list[np.ndarray], features: list, examples: Sequence, spec: TaskSpec):
    """Tags per word, joined over each sentence's windows; a word without a sub-word of its
    own (a lone zero-width or control character) gets the first label (``O`` for NER)."""
    ids = [[0] * len(ex.tokens) for ex in examples]
    for out, feat in zip(outputs, features, strict=True):
        row = ids[feat["example"]]
        for j, pos in enumerate(feat["first"]):
            if 0 <= pos < len(out):
                row[feat["word_offset"] + j] = int(np.argmax(out[pos]))
    return [[label_name(spec, i) for i in row] for row in ids]


def _tag_nll(outputs: list[np.ndarray], features: list, examples: Sequence) -> np.ndarray:
    """Per sentence: the summed cross-entropy of the gold tags of its labelled (first)
    sub-words, and their number; words cut off by truncation have no logits and no term."""
    out = np.zeros((len(examples), 2))
    for logits, feat in zip(outputs, features, strict=True):  # a sentence's windows add up
        labels = np.asarray(feat["labels"][: len(logits)])
        keep = labels != IGNORE
        out[feat["example"]] += float(gold_nll(logits[keep], labels[keep]).sum()), int(keep.sum())
    return out


TAGGING_HEAD = HeadKind(
    TokenHead, _tag_featurize, _tag_collate, _cls_forward, _tag_loss, _tag_decode, _tag_nll
)
