"""Common-field rows -> a dataset's own columns, using the task's column mapping (the
inverse of what the loader does) and the declared schema for everything else."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datasets import ClassLabel, Features, List, Value

Row = dict[str, Any]
LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class RowContext:
    index: int
    language: str
    split: str
    id_prefix: str = ""
    hidden: bool = False  # the split withholds its labels


def label_value(index: int, labels: tuple[str, ...], feature: object, hidden: bool) -> object:
    """A label as the dataset stores it: ClassLabel id by name, int position, or string."""
    name = labels[index] if labels else str(index)
    if isinstance(feature, ClassLabel):
        return -1 if hidden else feature.names.index(name)
    if isinstance(feature, Value) and feature.dtype.startswith("int"):
        return -1 if hidden else index
    return "" if hidden else name


def to_hub(
    row: Row,
    columns: Mapping[str, str | tuple[str, ...]],
    labels: tuple[str, ...],
    features: Features,
    ctx: RowContext,
) -> Row:
    out: Row = {}
    row = {
        "id": f"{ctx.id_prefix}{ctx.split}-{ctx.index:05d}",
        "source_id": f"{ctx.language}-{ctx.index:09d}",
        "target_id": f"en-{ctx.index:09d}",
        **row,
    }
    for field, col in columns.items():
        if field not in row:
            continue
        value = row[field]
        if isinstance(col, tuple):
            out.update(zip(col, value, strict=True))
        elif "." in col:
            top, sub = col.split(".", 1)
            out.setdefault(top, {})[sub] = value
        elif field == "label":
            out[col] = label_value(value, labels, features[col], ctx.hidden)
        elif field == "tags":
            out[col] = [features[col].feature.names.index(t) for t in value]
        elif field == "answers":
            out[col] = _answers(value, features[col])
        else:
            out[col] = value
    for col, feature in features.items():
        out[col] = _fill(col, feature, out.get(col), row, ctx)
    return out


def _answers(answers: list[tuple[str, int]], feature: Mapping[str, Any]) -> Row:
    return {key: [a[0] if key == "text" else a[1] for a in answers] for key in feature}


def _fill(col: str, feature: object, have: object, row: Row, ctx: RowContext) -> object:
    """Columns a task does not map get plausible values, named by the column."""
    if isinstance(feature, dict):
        struct: Row = dict(have) if isinstance(have, dict) else {}
        if "label" in feature and "text" in struct:
            struct["label"] = list(LETTERS[: len(struct["text"])])
        return {k: struct.get(k, _default(v)) for k, v in feature.items()}
    if have is not None:
        return have
    n = len(row.get("tokens", ()))
    value = _named(col, row, ctx, n)
    if value is None:
        return ["_"] * n if isinstance(feature, List) else _default(feature)
    if isinstance(feature, Value) and feature.dtype == "string" and not isinstance(value, str):
        return str(value)
    if isinstance(feature, Value) and feature.dtype.startswith("int") and isinstance(value, str):
        return ctx.index
    return value


def _spans(row: Row) -> list[str]:
    """WikiANN's `spans`: "PER: Arun Costa" for each entity."""
    spans: list[str] = []
    for tok, tag in zip(row.get("tokens", ()), row.get("tags", ()), strict=False):
        if tag.startswith("B-"):
            spans.append(f"{tag[2:]}: {tok}")
        elif tag.startswith("I-") and spans:
            spans[-1] += f" {tok}"
    return spans


def _named(col: str, row: Row, ctx: RowContext, n: int) -> object:
    tokens = row.get("tokens", [])
    named: dict[str, object] = {
        "idx": ctx.index,
        "spans": _spans(row),
        "ind": ctx.index,
        "uid": f"{ctx.split}-{ctx.index:06x}",
        "id": f"{ctx.id_prefix}{ctx.split}-{ctx.index:05d}",
        "title": row.get("title", ""),
        "langs": [ctx.language] * n,
        "lemmas": [t.lower() for t in tokens],
        "text": " ".join(tokens),
        "activity_label": row.get("concept", ""),
        "question_concept": row.get("concept", ""),
        "ctx_a": row.get("context", ""),
        "source_id": f"synthetic~{ctx.index}",
        "split": ctx.split,
        "split_type": "indomain",
        "source_lang": ctx.language,
        "target_lang": "en",
        "head": ["0"] * n,
    }
    return named.get(col)


def _default(feature: object) -> object:
    if isinstance(feature, List):
        return []
    if isinstance(feature, Value):
        if feature.dtype == "bool":
            return False
        return 0 if feature.dtype.startswith("int") else ""
    return None
