"""The one path from a `datasets.Dataset` to a task's example form, driven by the spec.

Columns come from the source's mapping (else the task's); every mapped column is checked
before any row is read, so a schema drift fails with one line naming dataset, config,
split and column instead of a guess. Labels are mapped by name where the dataset stores
a ClassLabel (UD's UPOS order differs from xtreme's), by position where it stores an
int, and by value where it stores a string (HellaSwag's "0"-"3", SocialIQA's "1"-"3",
CommonsenseQA's "A"-"E"); -1 / "" mean "no gold label".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import datasets
from datasets import ClassLabel, List

from evaluation.data.examples import (
    Answer,
    ClassificationExample,
    Entity,
    Example,
    MentionExample,
    MultipleChoiceExample,
    QuestionExample,
    RetrievalPair,
    SpanQAExample,
    TaggingExample,
)
from evaluation.data.sources import describe
from evaluation.tasks.spec import Format, Source, TaskSpec
from storage.errors import UserError

Row = dict[str, Any]
Columns = Mapping[str, str | tuple[str, ...]]
SENTENCE_END = re.compile(r"(?<=[.!?。।؟])\s+")


class Converter:
    """Rows of one split -> examples of one task; raises UserError on bad input."""

    def __init__(self, task: TaskSpec, ds: datasets.Dataset, src: Source, language: str) -> None:
        self.task, self.src, self.language = task, src, language
        self.features = ds.features
        self.columns: Columns = src.columns or task.columns
        self.labels = task.labels
        self._check_columns()

    def where(self, column: str) -> str:
        return f"{describe(self.src)} column {column!r}"

    def _check_columns(self) -> None:
        for col in self.columns.values():
            for name in col if isinstance(col, tuple) else (col,):
                top = name.split(".")[0]
                if top not in self.features:
                    have = ", ".join(self.features)
                    raise UserError(f"{self.where(top)}: missing (columns: {have})")

    def get(self, row: Row, field: str, default: Any = None) -> Any:
        col = self.columns.get(field)
        if col is None:
            return default
        if isinstance(col, tuple):
            return tuple(row[c] for c in col)
        top, _, sub = col.partition(".")
        if top not in row:
            return default
        return row[top][sub] if sub else row[top]

    def label(self, value: Any, column: str) -> int | None:
        """Index into the task's labels; None for "no gold label"."""
        if value is None or value == -1 or (isinstance(value, str) and not value.strip()):
            return None
        feature = self.features[column]
        feature = feature.feature if isinstance(feature, List) else feature
        if isinstance(feature, ClassLabel):
            if not self.labels:
                return int(value)
            value = feature.int2str(int(value)) if 0 <= int(value) < feature.num_classes else value
        elif isinstance(value, int) and 0 <= value < len(self.labels):
            return value
        if isinstance(value, str) and value.strip() in self.labels:
            return self.labels.index(value.strip())
        raise UserError(f"{self.where(column)}: label {value!r} not in {list(self.labels)}")

    def row_id(self, row: Row, index: int) -> str:
        rid = self.get(row, "id")
        return (
            str(rid)
            if rid is not None
            else f"{self.src.dataset}/{self.src.config}/{self.src.split}/{index}"
        )


def rows(ds: datasets.Dataset) -> Iterator[Row]:
    for batch in ds.iter(batch_size=1000):
        keys = list(batch)
        for i in range(len(batch[keys[0]]) if keys else 0):
            yield {k: batch[k][i] for k in keys}


def to_examples(task: TaskSpec, ds: datasets.Dataset, src: Source, language: str) -> list[Example]:
    conv = Converter(task, ds, src, language)
    make = _MAKERS[task.format]
    out: list[Example] = []
    for i, row in enumerate(rows(ds)):
        if src.where_prefix and not str(row[src.where_prefix[0]]).startswith(src.where_prefix[1]):
            continue
        ex = make(conv, row, i)
        if ex is not None:
            out.append(ex)
    return out


def _label_col(conv: Converter) -> str:
    col = conv.columns["label"]
    assert isinstance(col, str)
    return col.split(".")[0]


def _keep(conv: Converter, label: int | None) -> bool:
    if label is None and not conv.src.drop_unlabeled:
        raise UserError(f"{conv.where(_label_col(conv))}: row without a gold label (-1 or empty)")
    return label is not None


def _classification(conv: Converter, row: Row, i: int) -> Example | None:
    label = conv.label(conv.get(row, "label"), _label_col(conv))
    if not _keep(conv, label):
        return None
    assert label is not None
    return ClassificationExample(
        conv.row_id(row, i), conv.get(row, "text_a"), conv.get(row, "text_b"), label
    )


def _multiple_choice(conv: Converter, row: Row, i: int) -> Example | None:
    label = conv.label(conv.get(row, "label"), _label_col(conv))
    if not _keep(conv, label):
        return None
    assert label is not None
    return MultipleChoiceExample(
        conv.row_id(row, i),
        conv.get(row, "context", "") or "",
        conv.get(row, "question", "") or "",
        tuple(conv.get(row, "choices")),
        label,
    )


def _answers(value: Mapping[str, list[Any]]) -> tuple[Answer, ...]:
    return tuple(
        Answer(t, int(s)) for t, s in zip(value["text"], value["answer_start"], strict=True)
    )


def _span_qa(conv: Converter, row: Row, i: int) -> Example:
    return SpanQAExample(
        conv.row_id(row, i),
        conv.get(row, "context"),
        conv.get(row, "question"),
        _answers(conv.get(row, "answers")),
    )


def _tagging(conv: Converter, row: Row, i: int) -> Example:
    tokens = conv.get(row, "tokens")
    tokens = tokens.split(" ") if isinstance(tokens, str) else tokens
    col = conv.columns["tags"]
    assert isinstance(col, str)
    raw = conv.get(row, "tags")
    names = _names(conv.features[col])
    pairs = [
        (tok, tag)
        for tok, tag in zip(tokens, raw, strict=True)
        if not (names and names[tag] in conv.src.skip_tags) and tag not in conv.src.skip_tags
    ]
    tags = tuple(conv.label(tag, col) for _, tag in pairs)
    if any(t is None for t in tags):
        raise UserError(f"{conv.where(col)}: token without a tag")
    return TaggingExample(conv.row_id(row, i), tuple(t for t, _ in pairs), tags)  # type: ignore[arg-type]


def _names(feature: Any) -> list[str]:
    inner = feature.feature if isinstance(feature, List) else feature
    return list(inner.names) if isinstance(inner, ClassLabel) else []


def _retrieval(conv: Converter, row: Row, i: int) -> Example | None:
    if "mention" in conv.columns:
        return _mention(conv, row, i)
    if "question" in conv.columns:
        return _question(conv, row, i)
    return RetrievalPair(
        conv.row_id(row, i),
        str(conv.get(row, "source")).strip(),
        str(conv.get(row, "target")).strip(),
        str(conv.get(row, "source_id", "") or ""),
        str(conv.get(row, "target_id", "") or ""),
    )


def _mention(conv: Converter, row: Row, i: int) -> Example:
    span = conv.get(row, "mention")
    ent = row.get("entity") or {}
    entity = Entity(ent["id"], ent["title"], ent["description"]) if ent.get("id") else None
    return MentionExample(
        conv.row_id(row, i),
        row.get("language") or conv.language,
        row["context"],
        Answer(span["text"], int(span["start"])),
        conv.get(row, "entity") or "",
        entity,
    )


def split_sentences(context: str) -> tuple[str, ...]:
    return tuple(s for s in SENTENCE_END.split(context.strip()) if s)


def _question(conv: Converter, row: Row, i: int) -> Example | None:
    context = conv.get(row, "context")
    answers = _answers(conv.get(row, "answers"))
    if not answers:
        return None
    sentences = split_sentences(context)
    start, at = answers[0].start, 0
    for k, sentence in enumerate(sentences):
        at = context.find(sentence, at)
        if at <= start < at + len(sentence):
            return QuestionExample(
                conv.row_id(row, i), conv.language, conv.get(row, "question"), context, sentences, k
            )
        at += len(sentence)
    raise UserError(f"{conv.where('answers')}: answer start {start} outside the context")


_MAKERS: dict[Format, Callable[[Converter, Row, int], Example | None]] = {
    Format.CLASSIFICATION: _classification,
    Format.MULTIPLE_CHOICE: _multiple_choice,
    Format.SPAN_QA: _span_qa,
    Format.TAGGING: _tagging,
    Format.RETRIEVAL: _retrieval,
}
