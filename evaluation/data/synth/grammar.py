"""A small English-like grammar: events with people, objects, places and years, realised
as tagged tokens (UPOS, IOB2 entity tag, CCG supertag). Every fixture task is built from
these events, so NLI, paraphrase, QA spans, tags, mentions and translations are all
well defined, and intermediate tasks share their structure with the targets.

A sentence is a list of constituents (`Phrase`), each a role and its tokens; languages
(`synth.languages`) reorder constituents and swap word forms, never split a phrase, so
answer spans and entity mentions stay contiguous in every language.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

FIRST = "Arun Bela Chen Dara Emil Fatou Goran Hana Ivo Jana Kofi Lena Mira Nuno Omar Petra".split()
LAST = "Adler Brook Costa Dunn Ekberg Faro Grant Holm Ibsen Jovic Kerr Lund Moreau Novak".split()
PLACES = "Tessin Marlo Kavala Dunmore Belgrove Sarona Quillon Ravenna Ostrava Lumen".split()
ORG_SUFFIX = "Bank Group Motors Press Institute Airlines".split()
ROLES = "doctor teacher farmer pilot lawyer singer baker nurse engineer writer".split()
PERSON_ADJ = "tall young old quiet busy clever kind famous".split()
OBJECTS = "book car letter bike phone map ticket lamp coat key bag chair".split()
OBJECT_ADJ = "red new small heavy cheap blue green old".split()
SITES = "market school hospital station library museum harbor office".split()
# (base, past, antonym past) of transitive verbs.
VERBS = (
    ("buy", "bought", "sold"),
    ("sell", "sold", "bought"),
    ("find", "found", "lost"),
    ("open", "opened", "closed"),
    ("close", "closed", "opened"),
    ("repair", "repaired", "broke"),
    ("paint", "painted", "washed"),
    ("carry", "carried", "dropped"),
    ("like", "liked", "hated"),
    ("borrow", "borrowed", "returned"),
)
# (state, consequence) pairs for the causal multiple-choice tasks.
CAUSES = (
    ("hungry", ("ate", "the", "bread")),
    ("tired", ("slept", "early")),
    ("cold", ("wore", "a", "coat")),
    ("thirsty", ("drank", "some", "tea")),
    ("sick", ("visited", "the", "doctor")),
    ("late", ("ran", "to", "the", "station")),
    ("lost", ("read", "the", "map")),
    ("happy", ("sang", "a", "song")),
    ("rich", ("bought", "a", "house")),
    ("bored", ("read", "a", "book")),
    ("sad", ("called", "a", "friend")),
    ("wet", ("dried", "the", "coat")),
)
FUNCTION_UPOS = {
    "the": "DET", "a": "DET", "some": "DET", "in": "ADP", "at": "ADP", "to": "ADP",
    "by": "ADP", "from": "ADP", "and": "CCONJ", "never": "ADV", "early": "ADV", "so": "SCONJ",
    "because": "SCONJ", "did": "AUX", "was": "AUX", "who": "PRON", "what": "PRON",
    "where": "ADV", "when": "ADV", "why": "ADV", ".": "PUNCT", "?": "PUNCT", ",": "PUNCT",
}  # fmt: skip
CCG_OF_UPOS = {
    "DET": "NP[nb]/N", "ADJ": "N/N", "NOUN": "N", "ADP": "PP/NP", "NUM": "N",
    "CCONJ": "conj", "ADV": "(S\\NP)\\(S\\NP)", "SCONJ": "(S\\S)/S", "AUX": "(S\\NP)/(S\\NP)",
    "PRON": "NP", "PUNCT": ".", "VERB": "(S[dcl]\\NP)/NP",
}  # fmt: skip


@dataclass(frozen=True)
class Token:
    word: str
    upos: str
    ner: str = "O"
    ccg: str = ""

    @property
    def supertag(self) -> str:
        return self.ccg or CCG_OF_UPOS.get(self.upos, "N")


@dataclass(frozen=True)
class Phrase:
    """One constituent: its role in the clause (subj, verb, obj, loc, time, neg, punct...)."""

    role: str
    tokens: tuple[Token, ...]

    @property
    def text(self) -> str:
        return " ".join(t.word for t in self.tokens)


def word(w: str, upos: str | None = None) -> Token:
    return Token(w, upos or FUNCTION_UPOS.get(w, "NOUN"))


def name_tokens(parts: list[str], kind: str) -> tuple[Token, ...]:
    tags = [f"B-{kind}"] + [f"I-{kind}"] * (len(parts) - 1)
    ccg = ["N/N"] * (len(parts) - 1) + ["N"]
    return tuple(Token(p, "PROPN", t, c) for p, t, c in zip(parts, tags, ccg, strict=True))


@dataclass(frozen=True)
class Event:
    """Someone did something to something, maybe somewhere, maybe in some year."""

    subj: tuple[Token, ...]
    verb: int  # index into VERBS
    obj: tuple[Token, ...]
    loc: tuple[Token, ...] = ()
    year: str = ""
    negated: bool = False
    antonym: bool = False

    @property
    def verb_past(self) -> str:
        return VERBS[self.verb][2 if self.antonym else 1]


def person(rng: random.Random, named: bool = True) -> tuple[Token, ...]:
    if named:
        return name_tokens([rng.choice(FIRST), rng.choice(LAST)], "PER")
    adj = [word(rng.choice(PERSON_ADJ), "ADJ")] if rng.random() < 0.5 else []
    return (word("the"), *adj, word(rng.choice(ROLES)))


def thing(rng: random.Random, adjective: bool | None = None) -> tuple[Token, ...]:
    use_adj = rng.random() < 0.6 if adjective is None else adjective
    adj = [word(rng.choice(OBJECT_ADJ), "ADJ")] if use_adj else []
    return (word("the"), *adj, word(rng.choice(OBJECTS)))


def place(rng: random.Random) -> tuple[Token, ...]:
    roll = rng.random()
    if roll < 0.45:
        return name_tokens([rng.choice(PLACES)], "LOC")
    if roll < 0.7:
        return name_tokens([rng.choice(LAST), rng.choice(ORG_SUFFIX)], "ORG")
    return (word("the"), word(rng.choice(SITES)))


def event(rng: random.Random, *, named: bool | None = None) -> Event:
    named = rng.random() < 0.6 if named is None else named
    return Event(
        subj=person(rng, named),
        verb=rng.randrange(len(VERBS)),
        obj=thing(rng),
        loc=place(rng) if rng.random() < 0.7 else (),
        year=str(rng.randrange(1950, 2024)) if rng.random() < 0.4 else "",
    )


def clause(ev: Event) -> list[Phrase]:
    """The event as constituents in canonical (English, SVO) order, without final stop."""
    phrases = [Phrase("subj", ev.subj)]
    if ev.negated:
        phrases.append(Phrase("neg", (word("never"),)))
    phrases.append(Phrase("verb", (Token(ev.verb_past, "VERB"),)))
    phrases.append(Phrase("obj", ev.obj))
    if ev.loc:
        phrases.append(Phrase("loc", (word("in" if ev.loc[0].upos == "PROPN" else "at"), *ev.loc)))
    if ev.year:
        phrases.append(Phrase("time", (word("in"), Token(ev.year, "NUM"))))
    return phrases


def sentence(ev: Event) -> list[Phrase]:
    return [*clause(ev), Phrase("punct", (word("."),))]


def drop_part(ev: Event, rng: random.Random) -> Event:
    """A strictly less informative event (entailed by `ev`)."""
    options = [k for k in ("loc", "year", "adj") if _has(ev, k)]
    if not options:
        return ev
    part = rng.choice(options)
    if part == "adj":
        return replace(ev, obj=tuple(t for t in ev.obj if t.upos != "ADJ"))
    return replace(ev, year="") if part == "year" else replace(ev, loc=())


def add_part(ev: Event, rng: random.Random) -> Event:
    """A strictly more informative event (neutral w.r.t. `ev`)."""
    options = [k for k in ("loc", "year", "adj") if not _has(ev, k)]
    part = rng.choice(options or ["year"])
    if part == "adj":
        return replace(ev, obj=(ev.obj[0], word(rng.choice(OBJECT_ADJ), "ADJ"), *ev.obj[1:]))
    if part == "loc":
        return replace(ev, loc=place(rng))
    return replace(ev, year=str(int(ev.year or "1949") + rng.randrange(1, 9)))


def _has(ev: Event, part: str) -> bool:
    if part == "adj":
        return any(t.upos == "ADJ" for t in ev.obj)
    return bool(getattr(ev, part))
