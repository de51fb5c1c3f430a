"""Which synthetic content a task's datasets get, derived from the task spec (format,
labels, columns), never from its name."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Any

from evaluation.data.synth import content as c
from evaluation.data.synth.languages import Transform, language, transform
from evaluation.tasks.spec import Format, TaskSpec

Row = dict[str, Any]
IOB2_FIRST = "O"


def kind_of(task: TaskSpec) -> str:
    if task.format is Format.TAGGING:
        if not task.labels:
            return "ccg"
        return "ner" if task.labels[0] == IOB2_FIRST else "pos"
    if task.format is Format.CLASSIFICATION:
        return "nli" if len(task.labels) == 3 else "paraphrase"
    if task.format is Format.MULTIPLE_CHOICE:
        return f"causal{len(task.labels)}"
    if task.format is Format.SPAN_QA or "question" in task.columns:
        return "qa"
    return "mentions" if "mention" in task.columns else "bitext"


def _mc_style(task: TaskSpec) -> str:
    cols = task.columns
    if "context" not in cols:
        return "question"
    return "copa" if isinstance(cols.get("choices"), tuple) and len(task.labels) == 2 else "text"


def item_maker(kind: str, unanswerable_share: float) -> Callable[[random.Random], Any]:
    if kind.startswith("causal"):
        return partial(c.causal_item, n_choices=int(kind.removeprefix("causal")))
    makers: dict[str, Callable[[random.Random], Any]] = {
        "nli": c.nli_item,
        "paraphrase": c.para_item,
        "qa": partial(c.qa_item, unanswerable_share=unanswerable_share),
        "bitext": c.g.event,
    }
    return makers.get(kind, c.tagged_item)


def row_maker(task: TaskSpec, kind: str, seed: int) -> Callable[[Any, str], Row]:
    english = Transform(language("en"), seed)
    realize: Callable[[Any, Transform], Row]
    if kind.startswith("causal"):
        realize = partial(c.causal_row, style=_mc_style(task))
    elif kind in ("pos", "ner", "ccg"):
        realize = partial(c.tagging_row, scheme=kind)
    elif kind == "bitext":
        realize = partial(c.bitext_row, english=english)
    else:
        rows: dict[str, Callable[[Any, Transform], Row]] = {
            "nli": c.nli_row,
            "paraphrase": c.para_row,
            "qa": c.qa_row,
        }
        realize = rows[kind]

    def make(item: Any, lang: str) -> Row:
        return realize(item, transform(lang, seed))

    return make


def draw(kind: str, split: str, seed: int, n: int, unanswerable_share: float) -> list[Any]:
    """n abstract items for (kind, split): shared by every language and dataset."""
    rng = random.Random(f"{seed}/{kind}/{split}/{unanswerable_share}")
    make = item_maker(kind, unanswerable_share)
    return [make(rng) for _ in range(n)]
