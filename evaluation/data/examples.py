"""The common example forms every loader yields, one per task format.

Loaders turn a `datasets` split into these; trainers and predictors consume only these.
Label fields are integer ids into the task spec's `labels` (tags likewise).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClassificationExample:
    id: str
    text_a: str
    text_b: str | None
    label: int


@dataclass(frozen=True)
class MultipleChoiceExample:
    id: str
    context: str
    question: str
    choices: tuple[str, ...]
    label: int


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset into the context


@dataclass(frozen=True)
class SpanQAExample:
    id: str
    context: str
    question: str
    answers: tuple[Answer, ...]  # empty for SQuAD v2 unanswerable questions


@dataclass(frozen=True)
class TaggingExample:
    id: str
    tokens: tuple[str, ...]
    tags: tuple[int, ...]


@dataclass(frozen=True)
class RetrievalPair:
    """One aligned pair: a non-English sentence (or mention) and its English (or entity) side."""

    id: str
    source: str
    target: str


Example = (
    ClassificationExample | MultipleChoiceExample | SpanQAExample | TaggingExample | RetrievalPair
)
