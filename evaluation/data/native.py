"""Readers for the datasets that are not on the Hub, each turning its native files into a
`datasets.Dataset` of the shape declared in `schemas.py`, so that the same conversion
path serves them as serves Hub splits.

- **mewslix**: the layout google-research/xtreme's download script leaves:
  `candidate_set_entities.jsonl`, `wikipedia_pairs-{train,dev}.jsonl` (English training
  pairs, config None) and `wikinews_mentions/{dev,test}-<lang>.jsonl` with gold labels in
  `wikinews_labels/{dev,test}-<lang>.json` (config = language).
- **ccg**: jiant's format, `<split>.tsv` lines of `space-tokenised text<TAB>supertags`,
  plus `tags_to_id.json`.
- **fever_nli**: Nie et al.'s NLI-FEVER, `<split>_fitems.jsonl` (or `<split>.jsonl`) with
  `context`, `query` and `label` in SUPPORTS / NOT ENOUGH INFO / REFUTES.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import datasets

from evaluation.data.examples import Entity
from evaluation.data.schemas import schema_for
from evaluation.tasks.spec import Source
from storage.errors import UserError

FEVER_LABELS = {"SUPPORTS": "entailment", "NOT ENOUGH INFO": "neutral", "REFUTES": "contradiction"}
ENTITIES = "candidate_set_entities.jsonl"


def _where(src: Source) -> str:
    return f"dataset {src.dataset!r} config {src.config!r} split {src.split!r}"


def _need(src: Source, path: Path) -> Path:
    if not path.is_file():
        raise UserError(f"{_where(src)}: native file {path} missing")
    return path


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def read(src: Source, folder: Path) -> datasets.Dataset:
    readers: dict[str, Callable[[Source, Path], datasets.Dataset]] = {
        "mewslix": _mewslix,
        "ccg": _ccg,
        "fever_nli": _fever,
    }
    if src.native not in readers:
        raise UserError(f"{_where(src)}: unknown native format {src.native!r}")
    return readers[src.native](src, folder)


def _features(src: Source) -> datasets.Features:
    return schema_for(src.dataset, src.config).features


# --- Mewsli-X -------------------------------------------------------------------------


def _mewslix(src: Source, folder: Path) -> datasets.Dataset:
    if src.config is None:
        rows = [
            _pair_row(p) for p in _jsonl(_need(src, folder / f"wikipedia_pairs-{src.split}.jsonl"))
        ]
    else:
        stem = f"{src.split}-{src.config}"
        mentions = _need(src, folder / "wikinews_mentions" / f"{stem}.jsonl")
        labels_file = folder / "wikinews_labels" / f"{stem}.json"
        labels = json.loads(labels_file.read_text()) if labels_file.is_file() else {}
        rows = [r for doc in _jsonl(mentions) for r in _news_rows(doc, labels)]
    return datasets.Dataset.from_list(rows, features=_features(src))


def _span(context: str, span: dict[str, Any]) -> dict[str, Any]:
    return {"text": span["text"], "start": span["start"]}


def _entity(e: dict[str, Any] | None) -> dict[str, str]:
    e = e or {}
    return {
        k: e.get(j, "")
        for k, j in (("id", "entity_id"), ("title", "title"), ("description", "description"))
    }


def _pair_row(pair: dict[str, Any]) -> dict[str, Any]:
    cm = pair["contextual_mention"]
    context, mention = cm["context"], cm["mention"]
    return {
        "id": mention["example_id"],
        "language": context["language"],
        "context": context["text"],
        "mention": _span(context["text"], mention["mention_span"]),
        "entity_id": mention["entity_id"],
        "entity": _entity(pair["entity"]),
    }


def _news_rows(doc: dict[str, Any], labels: dict[str, list[str]]) -> Iterator[dict[str, Any]]:
    context = doc["context"]
    for m in doc["mentions"]:
        gold = m["entity_id"] or (labels.get(m["example_id"]) or [""])[0]
        yield {
            "id": m["example_id"],
            "language": context["language"],
            "context": context["text"],
            "mention": _span(context["text"], m["mention_span"]),
            "entity_id": gold,
            "entity": _entity(None),
        }


def read_entities(folder: Path) -> tuple[Entity, ...]:
    """Mewsli-X's candidate entity pool."""
    path = Path(folder) / ENTITIES
    if not path.is_file():
        raise UserError(f"dataset 'mewslix' config None split 'candidates': {path} missing")
    return tuple(Entity(e["entity_id"], e["title"], e["description"]) for e in _jsonl(path))


# --- CCG and FEVER-NLI ----------------------------------------------------------------


def read_tag_map(folder: Path) -> tuple[str, ...]:
    path = Path(folder) / "tags_to_id.json"
    if not path.is_file():
        raise UserError(f"dataset 'ccg' config None split 'tags': {path} missing")
    mapping = {k: int(v) for k, v in json.loads(path.read_text()).items()}
    return tuple(sorted(mapping, key=mapping.__getitem__))


def _ccg(src: Source, folder: Path) -> datasets.Dataset:
    names = read_tag_map(folder)
    known = set(names)
    texts, tags = [], []
    lines = _need(src, folder / f"{src.split}.tsv").read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        text, tag_str = line.split("\t")
        row_tags = tag_str.split()
        unknown = [t for t in row_tags if t not in known]
        if unknown or len(row_tags) != len(text.split(" ")):
            raise UserError(
                f"{_where(src)} column 'tags' line {n + 1}: tags do not match the text "
                f"or tags_to_id.json ({unknown[:3] or 'length'})"
            )
        texts.append(text)
        tags.append(row_tags)
    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "tags": datasets.List(datasets.ClassLabel(names=list(names))),
        }
    )
    return datasets.Dataset.from_dict(
        {"text": texts, "tags": [[names.index(t) for t in r] for r in tags]}, features=features
    )


def _fever(src: Source, folder: Path) -> datasets.Dataset:
    path = folder / f"{src.split}_fitems.jsonl"
    path = path if path.is_file() else _need(src, folder / f"{src.split}.jsonl")
    rows = []
    for n, item in enumerate(_jsonl(path)):
        if item.get("label") not in FEVER_LABELS:
            raise UserError(
                f"{_where(src)} column 'label': {item.get('label')!r} not in {list(FEVER_LABELS)}"
            )
        rows.append(
            {
                "uid": str(item.get("cid", item.get("id", n))),
                "premise": item["context"],
                "hypothesis": item["query"],
                "label": FEVER_LABELS[item["label"]],
            }
        )
    features = _features(src)
    for row in rows:
        row["label"] = features["label"].str2int(row["label"])
    return datasets.Dataset.from_list(rows, features=features)
