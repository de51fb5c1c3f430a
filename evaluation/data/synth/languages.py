"""Synthetic languages: each XTREME-R language is English (`synth.grammar`) transformed
deterministically, with a strength that differs per language.

A language's `strength` s in [0, 1] is the share of word types replaced by
language-specific forms. Every word type w has one fixed draw u(w) in [0, 1] (from the
seed) and is replaced wherever u(w) < s, so a stronger language replaces a superset of a
weaker one's words and transfer degrades monotonically in expectation. On top of that,
languages carry the script and word order of the real language: replaced words and
proper names are written in the language's script, and verb-final or verb-initial
languages, adjective-after-noun languages and postpositional languages reorder
constituents. Numbers and punctuation are shared by all languages.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from functools import cache

from evaluation.data.synth.grammar import Phrase, Token

SOV = set("ja ko hi ur bn mr ta te ml tr fa eu kk az my qu pa gu ka".split())
VSO = {"ar", "tl"}
ADJ_AFTER = set("fr es it pt ro ar he fa id ms jv vi th sw yo wo ht eu".split())
SCRIPTS = {
    "Arab": "ar fa ur", "Hebr": "he", "Cyrl": "ru uk bg kk", "Grek": "el", "Deva": "hi mr",
    "Beng": "bn", "Guru": "pa", "Gujr": "gu", "Taml": "ta", "Telu": "te", "Mlym": "ml",
    "Geor": "ka", "Thai": "th", "Mymr": "my", "Hani": "zh", "Kana": "ja", "Hang": "ko",
}  # fmt: skip
SCRIPT_START = {
    "Latn": 0x61, "Arab": 0x628, "Hebr": 0x5D0, "Cyrl": 0x430, "Grek": 0x3B1, "Deva": 0x915,
    "Beng": 0x995, "Guru": 0xA15, "Gujr": 0xA95, "Taml": 0xB95, "Telu": 0xC15, "Mlym": 0xD15,
    "Geor": 0x10D0, "Thai": 0xE01, "Mymr": 0x1000,
}  # fmt: skip
SYLLABIC = {"Hani": (0x4E00, 5000), "Kana": (0x30A2, 80), "Hang": (0xAC00, 11172)}
STRENGTH = {
    "en": 0.0, "af": 0.08, "nl": 0.11, "de": 0.15, "fr": 0.19, "it": 0.21, "es": 0.23,
    "pt": 0.25, "ro": 0.27, "ht": 0.29, "id": 0.31, "ms": 0.32, "jv": 0.34, "tl": 0.36,
    "sw": 0.38, "vi": 0.40, "pl": 0.42, "lt": 0.43, "et": 0.45, "fi": 0.46, "hu": 0.48,
    "tr": 0.50, "az": 0.51, "eu": 0.53, "yo": 0.55, "wo": 0.56, "qu": 0.58, "bg": 0.60,
    "ru": 0.61, "uk": 0.62, "el": 0.64, "kk": 0.66, "he": 0.68, "fa": 0.69, "ar": 0.70,
    "ur": 0.71, "hi": 0.72, "mr": 0.73, "bn": 0.74, "pa": 0.75, "gu": 0.76, "ka": 0.78,
    "ta": 0.80, "te": 0.81, "ml": 0.82, "th": 0.85, "my": 0.87, "ko": 0.88, "zh": 0.90,
    "ja": 0.92,
}  # fmt: skip
CORE = {
    "SVO": ("wh", "subj", "neg", "verb", "obj", "loc", "time"),
    "SOV": ("wh", "subj", "time", "loc", "obj", "neg", "verb"),
    "VSO": ("wh", "neg", "verb", "subj", "obj", "loc", "time"),
}
CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"


@dataclass(frozen=True)
class Language:
    code: str
    strength: float
    script: str
    order: str
    adj_after_noun: bool
    postpositions: bool

    def metadata(self) -> dict[str, object]:
        return {
            "strength": self.strength,
            "swap_share": self.strength,
            "script": self.script,
            "word_order": self.order,
            "adj_after_noun": self.adj_after_noun,
            "postpositions": self.postpositions,
        }


@cache
def language(code: str) -> Language:
    script = next((s for s, codes in SCRIPTS.items() if code in codes.split()), "Latn")
    order = "SOV" if code in SOV else "VSO" if code in VSO else "SVO"
    strength = STRENGTH.get(code, 0.5)
    return Language(code, strength, script, order, code in ADJ_AFTER, order == "SOV")


def _unit(*parts: object) -> float:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@cache
def _letters(script: str) -> str:
    """26 assigned letters of a script, standing in for a..z."""
    start, out = SCRIPT_START[script], list[str]()
    cp = start
    while len(out) < 26:
        ch = chr(cp)
        if unicodedata.category(ch).startswith("L"):
            out.append(ch)
        cp += 1
    return "".join(out)


def write_in(script: str, latin: str) -> str:
    """Transliterate lowercase Latin letters into `script` (one char per letter or syllable)."""
    text = latin.lower()
    if script in SYLLABIC:
        base, size = SYLLABIC[script]
        chunks = [text[i : i + 2] for i in range(0, len(text), 2)]
        return "".join(chr(base + int(_unit(script, c) * size)) for c in chunks)
    table = _letters(script)
    return "".join(table[ord(c) - 97] if "a" <= c <= "z" else c for c in text)


class Transform:
    """English tokens -> one language's tokens, deterministic from (seed, language)."""

    def __init__(self, lang: Language, seed: int) -> None:
        self.lang, self.seed = lang, seed
        self._words: dict[tuple[str, str], str] = {}

    def swapped(self, word: str, proper: bool) -> bool:
        share = self.lang.strength * (0.5 if proper else 1.0)
        return _unit(self.seed, "u", word.lower()) < share

    def form(self, word: str) -> str:
        n = 1 + max(1, len(word) // 3)
        syl = [
            CONSONANTS[int(_unit(self.seed, self.lang.code, word, i, "c") * len(CONSONANTS))]
            + VOWELS[int(_unit(self.seed, self.lang.code, word, i, "v") * len(VOWELS))]
            for i in range(n)
        ]
        return "".join(syl)

    def word(self, tok: Token) -> str:
        key = (tok.word, tok.upos)
        if key not in self._words:
            self._words[key] = self._word(tok)
        return self._words[key]

    def _word(self, tok: Token) -> str:
        w = tok.word
        if self.lang.code == "en" or not any(c.isalpha() for c in w):
            return w
        proper = tok.upos == "PROPN"
        if self.swapped(w, proper):
            w = self.form(w)
            w = w.capitalize() if proper else w
        elif not proper:
            return w
        return w if self.lang.script == "Latn" else write_in(self.lang.script, w)

    def phrases(self, phrases: list[Phrase]) -> list[Phrase]:
        """Reorder constituents and words, then swap forms; roles and tags are kept."""
        ordered = self._order(phrases)
        return [Phrase(p.role, tuple(self._retok(p))) for p in ordered]

    def _retok(self, p: Phrase) -> list[Token]:
        toks = list(p.tokens)
        if self.lang.adj_after_noun and any(t.upos == "ADJ" for t in toks):
            adjs = [t for t in toks if t.upos == "ADJ"]
            toks = [t for t in toks if t.upos != "ADJ"] + adjs
        if self.lang.postpositions and len(toks) > 1 and toks[0].upos == "ADP":
            toks = toks[1:] + toks[:1]
        return [Token(self.word(t), t.upos, t.ner, t.ccg) for t in toks]

    def _order(self, phrases: list[Phrase]) -> list[Phrase]:
        core = CORE[self.lang.order]
        idx = [i for i, p in enumerate(phrases) if p.role in core]
        if not idx:
            return phrases
        lo, hi = idx[0], idx[-1] + 1
        middle = phrases[lo:hi]
        if all(p.role in core for p in middle):
            middle = sorted(middle, key=lambda p: core.index(p.role))
        return phrases[:lo] + middle + phrases[hi:]


@cache
def transform(code: str, seed: int) -> Transform:
    return Transform(language(code), seed)


def tokens_of(phrases: list[Phrase]) -> list[Token]:
    return [t for p in phrases for t in p.tokens]


def text_of(phrases: list[Phrase]) -> str:
    return " ".join(t.word for t in tokens_of(phrases))


def span_of(phrases: list[Phrase], role: str, skip_adp: bool = True) -> tuple[str, int]:
    """(text, character start) of the phrase with `role` in the space-joined text."""
    start = 0
    for p in phrases:
        toks = [t for t in p.tokens if not (skip_adp and t.upos == "ADP")]
        if p.role == role:
            offset = sum(len(t.word) + 1 for t in p.tokens[: p.tokens.index(toks[0])])
            return " ".join(t.word for t in toks), start + offset
        start += sum(len(t.word) + 1 for t in p.tokens)
    raise KeyError(role)
