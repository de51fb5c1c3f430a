"""Task content from the grammar: abstract items drawn once per (kind, split), realised in
any language. Because items are shared by every language of a split, fixtures are
parallel (as XNLI, XQuAD and XCOPA are) and score differences between languages come
from the language transform alone.

Each kind yields rows in the common field names of the task specs (`text_a`, `text_b`,
`label`, `context`, `question`, `choices`, `answers`, `tokens`, `tags`, `source`,
`target`); `evaluation.data.synth.hubrows` maps them onto a dataset's own columns.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from evaluation.data.synth import grammar as g
from evaluation.data.synth.grammar import Event, Phrase, Token, word
from evaluation.data.synth.languages import Transform, span_of, text_of, tokens_of

Row = dict[str, Any]
NLI = ("entailment", "neutral", "contradiction")


def _stop(mark: str = ".") -> Phrase:
    return Phrase("punct", (word(mark),))


# --- classification -------------------------------------------------------------------


def nli_item(rng: random.Random) -> tuple[Event, Event, int]:
    prem = g.event(rng)
    label = rng.randrange(3)
    if label == 0:
        hyp = g.drop_part(prem, rng) if rng.random() < 0.8 else prem
    elif label == 1:
        hyp = g.add_part(g.drop_part(prem, rng) if rng.random() < 0.3 else prem, rng)
    else:
        hyp = replace(prem, negated=True) if rng.random() < 0.5 else replace(prem, antonym=True)
        hyp = g.drop_part(hyp, rng) if rng.random() < 0.3 else hyp
    return prem, hyp, label


def nli_row(item: tuple[Event, Event, int], t: Transform) -> Row:
    prem, hyp, label = item
    a, b = (text_of(t.phrases(g.sentence(e))) for e in (prem, hyp))
    return {"text_a": a, "text_b": b, "label": label}


def para_item(rng: random.Random) -> tuple[Event, Event, bool, int]:
    ev = g.event(rng)
    if not ev.loc:
        ev = replace(ev, loc=g.place(rng))
    same = rng.random() < 0.5
    other = ev
    if not same:
        change = rng.randrange(3)
        if change == 0:
            other = replace(ev, subj=g.person(rng, ev.subj[0].upos == "PROPN"))
        elif change == 1:
            other = replace(ev, loc=g.place(rng))
        else:
            other = replace(ev, antonym=True)
        if other == ev:
            other = replace(ev, negated=True)
    return ev, other, rng.random() < 0.5, int(same)


def para_row(item: tuple[Event, Event, bool, int], t: Transform) -> Row:
    ev, other, front, label = item
    first = g.sentence(ev)
    second = g.sentence(other)
    if front:  # "In Tessin , Arun bought the car ." ~ "Arun bought the car in Tessin ."
        loc = next(p for p in second if p.role == "loc")
        rest = [p for p in second if p.role != "loc"]
        second = [Phrase("lead", (*loc.tokens, word(","))), *rest]
    return {
        "text_a": text_of(t.phrases(first)),
        "text_b": text_of(t.phrases(second)),
        "label": label,
    }


# --- multiple choice ------------------------------------------------------------------


@dataclass(frozen=True)
class Causal:
    subj: tuple[Token, ...]
    cause: int
    choices: tuple[int, ...]  # indices into CAUSES
    label: int
    ask_effect: bool


def causal_item(rng: random.Random, n_choices: int) -> Causal:
    picks = rng.sample(range(len(g.CAUSES)), n_choices)
    label = rng.randrange(n_choices)
    return Causal(g.person(rng), picks[label], tuple(picks), label, rng.random() < 0.6)


def _state(subj: tuple[Token, ...], k: int) -> list[Phrase]:
    was = Phrase("verb", (word("was"),))
    return [Phrase("subj", subj), was, Phrase("obj", (Token(g.CAUSES[k][0], "ADJ"),))]


def _consequence(subj: tuple[Token, ...], k: int) -> list[Phrase]:
    verb, *rest = g.CAUSES[k][1]
    obj = tuple(word(w) for w in rest)
    phrases = [Phrase("subj", subj), Phrase("verb", (Token(verb, "VERB"),))]
    return phrases + ([Phrase("obj", obj)] if obj else [])


def causal_row(item: Causal, t: Transform, style: str) -> Row:
    said, asked = (_state, _consequence) if item.ask_effect else (_consequence, _state)
    subj = item.subj if style != "question" else (word("a"), word("person"))
    premise = text_of(t.phrases([*said(subj, item.cause), _stop()]))
    choices = [text_of(t.phrases([*asked(subj, k), _stop()])) for k in item.choices]
    q_words = ("what", "happened", "next") if item.ask_effect else ("what", "was", "the", "cause")
    question = text_of(t.phrases([Phrase("q", tuple(word(w) for w in q_words)), _stop("?")]))
    row: Row = {"choices": choices, "label": item.label, "concept": g.CAUSES[item.cause][0]}
    if style == "copa":  # COPA's question column holds the literal "cause" / "effect"
        row |= {"context": premise, "question": "effect" if item.ask_effect else "cause"}
    elif style == "question":  # CommonsenseQA: the premise is the question
        row |= {"context": "", "question": f"{premise[:-2]} , {question}"}
    else:
        row |= {"context": premise, "question": question}
    return row


# --- span QA ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QA:
    events: tuple[Event, ...]
    target: int  # which event is asked about; -1: about an absent person (unanswerable)
    asked: str
    probe: Event
    title: str


def qa_item(rng: random.Random, unanswerable_share: float = 0.0) -> QA:
    events = tuple(g.event(rng, named=True) for _ in range(rng.randint(2, 3)))
    target = rng.randrange(len(events))
    ev = events[target]
    slots = ["subj", "obj"] + (["loc"] if ev.loc else []) + (["time"] if ev.year else [])
    asked = rng.choice(slots)
    probe = ev
    if rng.random() < unanswerable_share:
        target, asked = -1, rng.choice(["obj", "loc", "time"])
        probe = replace(ev, subj=g.person(rng, True), loc=ev.loc or g.place(rng), year="")
        while any(e.subj == probe.subj for e in events):
            probe = replace(probe, subj=g.person(rng, True))
    return QA(events, target, asked, probe, f"{ev.subj[0].word} {ev.subj[-1].word}")


WH = {"subj": "who", "obj": "what", "loc": "where", "time": "when"}


def _question(qa: QA, fronted: bool) -> list[Phrase]:
    wh = Phrase("wh" if fronted else qa.asked, (word(WH[qa.asked]),))
    phrases = [p for p in g.clause(qa.probe) if p.role != qa.asked]
    if not fronted or qa.asked == "subj":
        pos = 0 if fronted else [p.role for p in g.clause(qa.probe)].index(qa.asked)
        return [*phrases[:pos], wh, *phrases[pos:], _stop("?")]
    base = g.VERBS[qa.probe.verb][0]
    phrases = [Phrase("verb", (Token(base, "VERB"),)) if p.role == "verb" else p for p in phrases]
    return [wh, Phrase("aux", (word("did"),)), *phrases, _stop("?")]


def qa_row(item: QA, t: Transform) -> Row:
    sentences = [t.phrases(g.sentence(e)) for e in item.events]
    context = " ".join(text_of(s) for s in sentences)
    answers: list[tuple[str, int]] = []
    if item.target >= 0:
        offset = sum(len(text_of(s)) + 1 for s in sentences[: item.target])
        text, start = span_of(sentences[item.target], item.asked)
        answers.append((text, offset + start))
    question = text_of(t.phrases(_question(item, t.lang.order == "SVO")))
    return {"context": context, "question": question, "answers": answers, "title": item.title}


# --- tagging and bitext -----------------------------------------------------------------


def tagged_item(rng: random.Random) -> list[Event]:
    return [g.event(rng) for _ in range(1 if rng.random() < 0.7 else 2)]


def tagged_tokens(events: list[Event], t: Transform) -> list[Token]:
    out: list[Token] = []
    for k, ev in enumerate(events):
        if k:
            out.append(Token(t.word(word("and")), "CCONJ", "O", "conj"))
        out += tokens_of(t.phrases(g.clause(ev)))
    return [*out, word(".")]


def tagging_row(events: list[Event], t: Transform, scheme: str) -> Row:
    toks = tagged_tokens(events, t)
    tags = [t.upos if scheme == "pos" else t.ner if scheme == "ner" else t.supertag for t in toks]
    return {"tokens": [t.word for t in toks], "tags": tags}


def bitext_row(ev: Event, t: Transform, english: Transform) -> Row:
    return {
        "source": text_of(t.phrases(g.sentence(ev))),
        "target": text_of(english.phrases(g.sentence(ev))),
    }


@dataclass(frozen=True)
class Kind:
    """How to draw abstract items and realise one in a language."""

    item: Callable[[random.Random], Any]
    row: Callable[[Any, Transform], Row]
