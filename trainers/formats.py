"""The head of every task format: a registry with teeth, built in one place.

`head_for(spec)` is the head that trains and decodes a task of `spec.format`; a format
without a head is a `UserError` naming the task. Registering a format twice is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evaluation.tasks import Format, TaskSpec
from storage.errors import UserError
from trainers.dual import DUAL_HEAD
from trainers.heads import CHOICE_HEAD, CLASSIFICATION_HEAD, TAGGING_HEAD, HeadKind
from trainers.mlm import MASKED_LM_HEAD
from trainers.span import SPAN_HEAD


def _registry(*entries: tuple[Format, HeadKind]) -> dict[Format, HeadKind]:
    heads: dict[Format, HeadKind] = {}
    for fmt, kind in entries:
        if fmt in heads:
            raise ValueError(f"a head for {fmt} is registered twice")
        heads[fmt] = kind
    return heads


HEADS = _registry(
    (Format.CLASSIFICATION, CLASSIFICATION_HEAD),
    (Format.MULTIPLE_CHOICE, CHOICE_HEAD),
    (Format.TAGGING, TAGGING_HEAD),
    (Format.SPAN_QA, SPAN_HEAD),
    (Format.RETRIEVAL, DUAL_HEAD),
    (Format.MASKED_LM, MASKED_LM_HEAD),
)


def head_for(spec: TaskSpec) -> HeadKind:
    try:
        return HEADS[spec.format]
    except KeyError:
        raise UserError(f"task {spec.name}: no head supports format {spec.format}") from None


def num_labels(spec: TaskSpec, examples: Sequence[Any]) -> int:
    """Label count: the spec's label list, or the largest tag id seen (CCG's tag map)."""
    if spec.labels:
        return len(spec.labels)
    if spec.format is Format.TAGGING:
        return 1 + max(max(ex.tags, default=0) for ex in examples)
    return 0
