"""Chunk F1, precision and recall with the chunking rules of seqeval 0.0.12 (UD-POS, PAN-X).

The official XTREME scorer calls seqeval, and its published mock numbers are reproduced only
by version 0.0.12's behaviour, implemented here from its rules (no seqeval dependency):

- Every label is split into a *tag*, its **first character**, and a *type*, the text after
  its **last** "-" (the whole label when there is none). "B-PER" is tag "B", type "PER";
  the POS label "NOUN" is tag "N", type "NOUN"; "SCONJ" is tag "S" (a singleton chunk).
- Sentences are concatenated with an "O" after each, and chunks are (type, start, end)
  triples with offsets into that concatenation, so a sentence whose predicted length differs
  from the gold one shifts every later offset (the official scorer does not check lengths).
- A chunk ends before the current label when the previous tag is "E" or "S"; when the
  previous tag is "B" or "I" and the current tag is "B", "S" or "O"; or when the previous
  tag is neither "O" nor "." and the type changes. A chunk starts at the current label when
  its tag is "B" or "S"; when the previous tag is "E", "S" or "O" and the current tag is "E"
  or "I"; or when the current tag is neither "O" nor "." and the type changes.
  Consequence for POS tags: a run of equal tags ("NOUN NOUN") is one chunk.
- precision = correct / predicted chunks, recall = correct / gold chunks (0 when there are
  none), F1 = 2PR / (P + R) (0 when P + R = 0); all times 100. Chunks are compared as sets.

In-memory form: `score(predictions, golds, *, language)` takes two equally long sequences
of sentences, each a sequence of tag strings (``spec.labels[id]`` for predicted ids) and
returns ``{"f1", "precision", "recall"}``. `language` is unused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from itertools import chain

import numpy as np

from evaluation.scorers.base import Scorer, check_parallel, combine_prf

Chunk = tuple[str, int, int]

_NEUTRAL = frozenset("O.")


@cache
def _split(label: str) -> tuple[str, str]:
    if not label:
        raise ValueError("empty tag")
    return label[0], label.rpartition("-")[2]


@cache
def _boundaries(prev_tag: str, tag: str, same_type: bool) -> tuple[bool, bool]:
    """(a chunk ends before this label, a chunk starts at this label)."""
    ends = (
        prev_tag in ("E", "S")
        or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
        or (prev_tag not in _NEUTRAL and not same_type)
    )
    starts = (
        tag in ("B", "S")
        or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
        or (tag not in _NEUTRAL and not same_type)
    )
    return ends, starts


def get_entities(labels: Iterable[str]) -> list[Chunk]:
    """Chunks of one flat label sequence, as (type, first offset, last offset)."""
    prev_tag, prev_type, begin = "O", "", 0
    chunks: list[Chunk] = []
    for i, label in enumerate(chain(labels, ("O",))):  # seqeval appends a closing "O"
        tag, type_ = _split(label)
        ends, starts = _boundaries(prev_tag, tag, prev_type == type_)
        if ends:
            chunks.append((prev_type, begin, i - 1))
        if starts:
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def sentence_entities(sentences: Iterable[Sequence[str]]) -> list[Chunk]:
    """Chunks of a list of sentences, joined with an "O" after each as seqeval 0.0.12 does."""
    return get_entities(label for sentence in sentences for label in chain(sentence, ("O",)))


def score(
    predictions: Sequence[Sequence[str]], golds: Sequence[Sequence[str]], *, language: str
) -> dict[str, float]:
    del language
    check_parallel(predictions, golds, "sentences")
    gold = set(sentence_entities(golds))
    pred = set(sentence_entities(predictions))
    correct = len(gold & pred)
    p = correct / len(pred) if pred else 0
    r = correct / len(gold) if gold else 0
    f1 = 2 * p * r / (p + r) if p + r > 0 else 0
    return {"f1": float(f1 * 100), "precision": float(p * 100), "recall": float(r * 100)}


def per_example(
    predictions: Sequence[Sequence[str]], golds: Sequence[Sequence[str]], *, language: str
) -> np.ndarray:
    """Per sentence (correct, predicted, gold) chunks: `score`'s counts when every predicted
    sentence is as long as its gold one (chunks never cross the "O" between sentences)."""
    del language
    check_parallel(predictions, golds, "sentences")
    rows = np.zeros((len(golds), 3))
    for i, (pred, gold) in enumerate(zip(predictions, golds, strict=True)):
        p, g = set(sentence_entities([pred])), set(sentence_entities([gold]))
        rows[i] = len(p & g), len(p), len(g)
    return rows


SCORER = Scorer(
    "seqeval",
    score,
    ("f1", "precision", "recall"),
    "chunk F1 with seqeval 0.0.12 chunking",
    per_example,
    combine_prf,
)
