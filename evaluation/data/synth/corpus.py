"""The fixtures' multilingual text corpus for the `mlm` arm: ``<root>/mlm_corpus/<lang>.txt``.

One synthetic sentence per line (`synth.grammar`), written in each fixture language through
its transform (`synth.languages`), so that continued MLM on it sees the same words, scripts
and word orders as the fixture tasks. Languages get different amounts of text (English the
most, then fewer the stronger a language's transform), so that per-language sampling
(`evaluation.data.mlm_corpus`, q_l ∝ n_l^alpha) has something to even out. A pure function
of the seed; `CORPUS_VERSION` is bumped whenever its bytes would change (it stands for the
corpus in the keys of sweeps that use it before it is written).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from evaluation.data.mlm_corpus import CORPUS_DIR, SUFFIX
from evaluation.data.synth import grammar as g
from evaluation.data.synth.languages import language, text_of, transform
from evaluation.tasks import Format, TaskSpec

CORPUS_VERSION = 1


def corpus_lines(lang: str, seed: int, n: int) -> list[str]:
    """`n` sentences of language `lang`, one per line."""
    rng = random.Random(f"mlm-corpus/{seed}/{lang}")
    t = transform(lang, seed)
    return [text_of(t.phrases(g.sentence(g.event(rng)))) for _ in range(n)]


def lines_for(lang: str, n: int) -> int:
    """How many lines a language gets: 2n for English, down to n/2 for the strongest."""
    return max(1, round(n * (2.0 if lang == "en" else 1.0 - language(lang).strength / 2)))


def write_corpus(root: Path, languages: Iterable[str], seed: int, n: int) -> Path:
    """Write ``<root>/mlm_corpus/<lang>.txt`` for every language; returns the folder."""
    folder = Path(root) / CORPUS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for lang in sorted(set(languages)):
        text = "\n".join(corpus_lines(lang, seed, lines_for(lang, n))) + "\n"
        (folder / f"{lang}{SUFFIX}").write_text(text, encoding="utf-8")
    return folder


def write_for(root: Path, tasks: Iterable[TaskSpec], seed: int, n: int) -> None:
    """The corpus, over the tasks' languages and English, when an MLM task is among them."""
    chosen = list(tasks)
    if any(t.format is Format.MASKED_LM for t in chosen):
        write_corpus(root, {lang for t in chosen for lang in (*t.languages, "en")}, seed, n)
