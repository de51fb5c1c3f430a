"""MLQA exact match and F1 with the per-language normalization of the official MLQA script
(``evaluate_mlqa.py``); the counting is SQuAD's (see `evaluation.scorers.squad`).

Normalization of an answer in language ``lang``, in this order:

1. lowercase;
2. delete every character in PUNCT: all Unicode code points whose category starts with
   "P", plus ASCII ``string.punctuation`` (which adds symbols such as ``$ + < = > ^ ` | ~``);
3. replace whole-word articles with a space: en a/an/the; es un/una/unos/unas/el/la/los/
   las; de ein/eine/einen/einem/eines/einer/der/die/das/den/dem/des; vi của/là/cái/chiếc/
   những; ar: **every** occurrence of "ال", even mid-word (the official pattern's first
   alternative can never match, so only the bare "ال" alternative applies); hi and zh:
   nothing;
4. tokenize: whitespace split for en es hi vi de ar; for zh "mixed segmentation", where each
   CJK character in U+4E00-U+9FA5 (or PUNCT character) is its own token and the text
   between them is whitespace-split; tokens are re-joined with single spaces.

Only the seven MLQA languages are known; any other raises ValueError.

In-memory form: as `evaluation.scorers.squad.score`, and `language` (the answer/context
language) is required: `score(predictions, golds, *, language)`.
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from functools import cache

import numpy as np

from evaluation.scorers.base import Scorer, combine_means
from evaluation.scorers.squad import qa_rows, qa_score

LANGUAGES = ("en", "es", "de", "ar", "hi", "vi", "zh")

_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "ar": r"ال",
}
_ARTICLE_RE = {lang: re.compile(pattern) for lang, pattern in _ARTICLES.items()}
_CJK_FIRST, _CJK_LAST = "\u4e00", "\u9fa5"


@cache
def punctuation() -> frozenset[str]:
    """Unicode punctuation (category P*) united with ASCII string.punctuation."""
    unicode_p = (chr(i) for i in range(sys.maxunicode))
    return frozenset(c for c in unicode_p if unicodedata.category(c).startswith("P")) | set(
        string.punctuation
    )


@cache
def _punct_table() -> dict[int, None]:
    return dict.fromkeys(map(ord, punctuation()))


def mixed_segmentation(text: str) -> list[str]:
    """Chinese tokens: CJK characters and punctuation one by one, other runs whitespace-split."""
    punct = punctuation()
    tokens: list[str] = []
    pending: list[str] = []
    for char in text:
        if _CJK_FIRST <= char <= _CJK_LAST or char in punct:
            tokens.extend("".join(pending).split())
            pending.clear()
            tokens.append(char)
        else:
            pending.append(char)
    tokens.extend("".join(pending).split())
    return tokens


def normalize_answer(text: str, lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"MLQA has no normalizer for language {lang!r}")
    text = text.lower().translate(_punct_table())
    if lang in _ARTICLE_RE:
        text = _ARTICLE_RE[lang].sub(" ", text)
    tokens = mixed_segmentation(text) if lang == "zh" else text.split()
    return " ".join(token for token in tokens if token.strip())


def score(
    predictions: Mapping[str, str], golds: Mapping[str, Sequence[str]], *, language: str
) -> dict[str, float]:
    if language not in LANGUAGES:
        raise ValueError(f"MLQA has no normalizer for language {language!r}")
    return qa_score(predictions, golds, lambda text: normalize_answer(text, language))


def per_example(
    predictions: Mapping[str, str], golds: Mapping[str, Sequence[str]], *, language: str
) -> np.ndarray:
    if language not in LANGUAGES:
        raise ValueError(f"MLQA has no normalizer for language {language!r}")
    return qa_rows(predictions, golds, lambda text: normalize_answer(text, language))


SCORER = Scorer(
    "mlqa",
    score,
    ("exact_match", "f1"),
    "MLQA EM/F1, per-language normalizer",
    per_example,
    combine_means("exact_match", "f1"),
)
