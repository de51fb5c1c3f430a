"""Native-format fixtures (Mewsli-X JSONL/JSON, CCG TSV + tag map, FEVER-NLI JSONL),
written in the formats `evaluation.data.native` reads."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from evaluation.data.synth import content as c
from evaluation.data.synth import grammar as g
from evaluation.data.synth.languages import Transform, language, span_of, text_of
from evaluation.tasks.spec import TaskSpec

NLI_TO_FEVER = ("SUPPORTS", "NOT ENOUGH INFO", "REFUTES")


def write_all(
    root: Path,
    tasks: Iterable[TaskSpec],
    seed: int,
    n: int,
    progress: Callable[[str], None] | None = None,
) -> None:
    natives: dict[str, list[TaskSpec]] = {}
    for task in tasks:
        for src in (*task.train, *task.dev, *task.eval.values()):
            if src.native:
                natives.setdefault(src.native, []).append(task)
    writers = {"mewslix": _mewslix, "ccg": _ccg, "fever_nli": _fever}
    for name in sorted(natives):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        writers[name](folder, natives[name][0], seed, n)
        if progress:
            progress(f"{name} (native)")


def _lines(path: Path, rows: Iterable[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _ccg(folder: Path, task: TaskSpec, seed: int, n: int) -> None:
    english = Transform(language("en"), seed)
    splits = {}
    for split in ("train", "dev", "test"):
        rng = random.Random(f"{seed}/ccg/{split}")
        splits[split] = [c.tagging_row(c.tagged_item(rng), english, "ccg") for _ in range(n)]
    tags = sorted({t for rows in splits.values() for r in rows for t in r["tags"]})
    (folder / "tags_to_id.json").write_text(
        json.dumps({t: i for i, t in enumerate(tags)}, indent=1)
    )
    for split, rows in splits.items():
        text = "".join(f"{' '.join(r['tokens'])}\t{' '.join(r['tags'])}\n" for r in rows)
        (folder / f"{split}.tsv").write_text(text, encoding="utf-8")


def _fever(folder: Path, task: TaskSpec, seed: int, n: int) -> None:
    english = Transform(language("en"), seed)
    for split in ("train", "dev", "test"):
        rng = random.Random(f"{seed}/fever/{split}")
        rows = []
        for i in range(n):
            row = c.nli_row(c.nli_item(rng), english)
            label = NLI_TO_FEVER[row["label"]]
            rows.append(
                {
                    "cid": i,
                    "fid": f"{split}-{i}",
                    "context": row["text_a"],
                    "query": row["text_b"],
                    "label": label,
                }
            )
        _lines(folder / f"{split}_fitems.jsonl", rows)


# --- Mewsli-X -------------------------------------------------------------------------


def _entities(rng: random.Random, count: int) -> list[tuple[str, g.Event]]:
    """(QID, defining event) per entity: a named person who did something somewhere."""
    out: list[tuple[str, g.Event]] = []
    seen: set[tuple[g.Token, ...]] = set()
    while len(out) < count:
        ev = g.event(rng, named=True)
        if ev.subj not in seen:
            seen.add(ev.subj)
            out.append((f"Q{1000 + len(out)}", ev))
    return out


def _describe(ev: g.Event, english: Transform) -> str:
    return text_of(english.phrases(g.sentence(ev)))


def _mention_row(qid: str, ev: g.Event, t: Transform, example_id: str) -> dict[str, Any]:
    # The mention's context is another event of the entity's: same person, other verb.
    phrases = t.phrases(g.sentence(replace(ev, verb=(ev.verb + 1) % len(g.VERBS), year="")))
    text = text_of(phrases)
    mention, start = span_of(phrases, "subj")
    context = {
        "document_title": example_id, "document_url": "", "document_id": example_id,
        "language": t.lang.code, "text": text, "sentence_spans": [{"start": 0, "end": len(text)}],
    }  # fmt: skip
    span = {"start": start, "end": start + len(mention), "text": mention}
    return {
        "context": context,
        "mention": {"example_id": example_id, "mention_span": span, "entity_id": qid},
    }


def _mewslix(folder: Path, task: TaskSpec, seed: int, n: int) -> None:
    rng = random.Random(f"{seed}/mewslix/entities")
    entities = _entities(rng, max(20, n // 2))
    english = Transform(language("en"), seed)
    pool = [
        {
            "entity_id": q,
            "title": " ".join(t.word for t in ev.subj),
            "description": _describe(ev, english),
            "sentence_spans": [],
            "description_language": "en",
            "description_url": "",
        }
        for q, ev in entities
    ]
    _lines(folder / "candidate_set_entities.jsonl", pool)
    by_id = {e["entity_id"]: e for e in pool}
    for split in ("train", "dev"):
        picks = random.Random(f"{seed}/mewslix/{split}").choices(entities, k=n)
        rows = []
        for i, (q, ev) in enumerate(picks):
            cm = _mention_row(q, ev, english, f"wp-{split}-{i}")
            rows.append({"contextual_mention": cm, "entity": by_id[q]})
        _lines(folder / f"wikipedia_pairs-{split}.jsonl", rows)
    for split in ("dev", "test"):
        picks = random.Random(f"{seed}/mewslix/news/{split}").choices(entities, k=n)
        for lang in task.languages:
            t = Transform(language(lang), seed)
            docs = [
                _mention_row(q, ev, t, f"{lang}-{split}-{i}") for i, (q, ev) in enumerate(picks)
            ]
            labels = {d["mention"]["example_id"]: [d["mention"]["entity_id"]] for d in docs}
            news = [{"context": d["context"], "mentions": [d["mention"]]} for d in docs]
            _lines(folder / "wikinews_mentions" / f"{split}-{lang}.jsonl", news)
            (folder / "wikinews_labels" / f"{split}-{lang}.json").parent.mkdir(exist_ok=True)
            (folder / "wikinews_labels" / f"{split}-{lang}.json").write_text(json.dumps(labels))
