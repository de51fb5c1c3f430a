"""Pools for the retrieval tasks, built from loaded examples.

- `answer_pool`: LAReQA's multilingual candidate pool. Every sentence of every context in
  every language is a candidate; a question's relevant candidates are the answer
  sentences of its id in all languages (the parallel answers).
- `bitext`: BUCC-style id'd sentences on each side and the gold (source id, target id)
  pairs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from evaluation.data.examples import QuestionExample, RetrievalPair


@dataclass(frozen=True)
class Candidate:
    language: str
    sentence: str
    context: str


@dataclass(frozen=True)
class AnswerPool:
    candidates: tuple[Candidate, ...]
    relevant: Mapping[str, frozenset[int]]  # question id -> candidate indices


def answer_pool(questions: Iterable[QuestionExample]) -> AnswerPool:
    index: dict[tuple[str, str, str], int] = {}
    relevant: dict[str, set[int]] = defaultdict(set)
    for q in questions:
        for k, sentence in enumerate(q.sentences):
            pos = index.setdefault((q.language, q.context, sentence), len(index))
            if k == q.answer_sentence:
                relevant[q.id].add(pos)
    candidates = tuple(Candidate(lang, s, ctx) for (lang, ctx, s) in index)
    return AnswerPool(candidates, {q: frozenset(v) for q, v in relevant.items()})


@dataclass(frozen=True)
class Bitext:
    sources: tuple[tuple[str, str], ...]  # (id, sentence)
    targets: tuple[tuple[str, str], ...]
    gold: frozenset[tuple[str, str]]


def bitext(pairs: Iterable[RetrievalPair]) -> Bitext:
    """Id'd sentences per side (ids from the corpus, else the pair's id) and gold pairs."""
    sources: dict[str, str] = {}
    targets: dict[str, str] = {}
    gold = set()
    for p in pairs:
        sid, tid = p.source_id or f"{p.id}/source", p.target_id or f"{p.id}/target"
        sources.setdefault(sid, p.source)
        targets.setdefault(tid, p.target)
        gold.add((sid, tid))
    return Bitext(tuple(sources.items()), tuple(targets.items()), frozenset(gold))
