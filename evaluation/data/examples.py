"""The common example forms every loader yields, one per task format.

Loaders turn a `datasets` split into these; trainers and predictors consume only these.
Label fields are integer ids into the task spec's `labels` (tags likewise; for a task whose
spec declares no labels, such as CCG, ids index the corpus' own tag list, see
`evaluation.data.task_labels`).

Retrieval tasks come in three shapes:

- aligned sentence pairs (Tatoeba, BUCC): `RetrievalPair`, with the corpus' sentence ids
  where the dataset has them (BUCC);
- mentions linked to an entity pool (Mewsli-X): `MentionExample` + `Entity`;
- questions answered by a sentence of a multilingual candidate pool (LAReQA):
  `QuestionExample`, pooled across languages by `evaluation.data.retrieval.answer_pool`.
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
    """One aligned pair: a non-English sentence (or mention) and its English (or entity) side.

    `source_id`/`target_id` are the corpus' own sentence ids where it has them (BUCC's
    ``de-000000123``), else empty.
    """

    id: str
    source: str
    target: str
    source_id: str = ""
    target_id: str = ""


@dataclass(frozen=True)
class Entity:
    """One entry of an entity pool: a WikiData-style id and its English description."""

    id: str
    title: str
    description: str


@dataclass(frozen=True)
class MentionExample:
    """An entity mention in context (Mewsli-X).

    `mention` holds the mention text and its character offset into `context`.
    `entity_id` is the gold entity ("" where the split's labels are withheld); `entity`
    is the paired entity where the file carries it (the Wikipedia training pairs).
    """

    id: str
    language: str
    context: str
    mention: Answer
    entity_id: str
    entity: Entity | None = None


@dataclass(frozen=True)
class QuestionExample:
    """A question whose answer is one sentence of its context (LAReQA, SQuAD as retrieval).

    `id` is shared by the question's translations, which is what makes the parallel
    answers in other languages relevant too. `sentences` are the context's sentences
    (the candidates it adds to the pool); `answer_sentence` indexes the one holding the
    answer.
    """

    id: str
    language: str
    question: str
    context: str
    sentences: tuple[str, ...]
    answer_sentence: int


Example = (
    ClassificationExample
    | MultipleChoiceExample
    | SpanQAExample
    | TaggingExample
    | RetrievalPair
    | MentionExample
    | QuestionExample
)
