"""The text corpus of the `mlm` intermediate task (continued masked-language modelling), and
its per-language sampling.

A corpus is a local directory of ``<lang>.txt`` files (one line per sentence or document;
empty lines are skipped, as jiant's `mlm_simple` skips them: jiant guides/tasks/
task_specific.md:14 at daa5a258) or a Hub dataset read per language through
`datasets.load_dataset` (a config template such as ``20231101.{lang}`` and a text column; a
row's text is cut into its non-empty lines). At most `max_lines` lines are read per
language, in file order; `dev_lines` of them (a fixed, seeded choice, in every language) are
held out as the dev set whose masked-token accuracy drives early stopping.

Sampling follows XLM-R (Conneau et al. 2020, "Unsupervised Cross-lingual Representation
Learning at Scale", §3 "Data and training"): a language with n_l lines is drawn with
probability q_l = p_l^alpha / sum_k p_k^alpha, p_l = n_l / sum_k n_k (alpha = 0.3 there),
which upsamples low-resource languages. `draw` turns that into a fixed training set: as many
lines as the pools hold together (N = sum_l n_l), round(N q_l) of them from language l (by
largest remainder), a seeded sample without replacement where the pool is large enough and
whole copies of the pool plus a sample where it is not, in a seeded order that mixes the
languages (so that a cap, `data.max_examples.train`, keeps a prefix with the same mix). Every
draw is a pure function of the corpus settings and the text: the same for every model and
seed.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from storage.errors import UserError

CORPUS_DIR = "mlm_corpus"  # the corpus folder inside a fixture tree (and by convention)
SUFFIX = ".txt"


@dataclass(frozen=True)
class TextLine:
    """One line of the corpus: the unit the MLM head masks (one example, one window)."""

    text: str
    language: str


@dataclass(frozen=True)
class MlmCorpus:
    """Where the corpus is and how it is sampled; exactly one of `local_dir` and `hub`.

    `languages`: None means every ``<lang>.txt`` of `local_dir` (a Hub corpus names them).
    """

    local_dir: str | None = None
    hub: str | None = None
    hub_config: str | None = None  # may hold "{lang}"
    split: str = "train"
    text_column: str = "text"
    revision: str | None = None
    languages: tuple[str, ...] | None = None
    alpha: float = 0.3
    max_lines: int | None = 1000
    dev_lines: int = 8

    def __post_init__(self) -> None:
        if (self.local_dir is None) == (self.hub is None):
            raise ValueError("an MLM corpus is a local_dir or a hub dataset id, one of them")


def corpus_languages(corpus: MlmCorpus) -> tuple[str, ...]:
    """The languages the corpus is drawn from; `UserError` naming what is missing."""
    if corpus.hub is not None:
        if not corpus.languages:
            raise UserError("data.mlm_corpus.languages: a Hub corpus needs its languages listed")
        return corpus.languages
    root = Path(corpus.local_dir or "")
    if not root.is_dir():
        raise UserError(f"data.mlm_corpus.local_dir: {root} is not a directory")
    have = sorted(p.stem for p in root.glob(f"*{SUFFIX}") if p.is_file())
    if not have:
        raise UserError(f"data.mlm_corpus.local_dir: {root} holds no <lang>{SUFFIX} file")
    if corpus.languages is None:
        return tuple(have)
    for lang in corpus.languages:
        if lang not in have:
            raise UserError(
                f"data.mlm_corpus.languages: no {lang}{SUFFIX} in {root} (it has {', '.join(have)})"
            )
    return corpus.languages


def read_lines(corpus: MlmCorpus, language: str) -> list[str]:
    """At most `max_lines` non-empty lines of one language, in corpus order."""
    limit = corpus.max_lines if corpus.max_lines is not None else math.inf
    out: list[str] = []
    for text in _texts(corpus, language):
        for line in text.splitlines():
            if len(out) >= limit:
                return out
            if line.strip():
                out.append(line.strip())
    return out


def _texts(corpus: MlmCorpus, language: str) -> Iterator[str]:
    if corpus.local_dir is not None:
        yield (Path(corpus.local_dir) / f"{language}{SUFFIX}").read_text(encoding="utf-8")
        return
    # The Hub path: no Hub here, so untested offline (README says so).
    import datasets

    config = corpus.hub_config.format(lang=language) if corpus.hub_config else None
    rows = datasets.load_dataset(
        corpus.hub, config, split=corpus.split, revision=corpus.revision, streaming=True
    )
    for row in rows:
        yield str(row[corpus.text_column])


def sampling_probs(counts: Mapping[str, int], alpha: float) -> dict[str, float]:
    """q_l = p_l^alpha / sum_k p_k^alpha with p_l = n_l / sum_k n_k (Conneau et al. 2020, §3)."""
    total = sum(counts.values())
    if total <= 0:
        raise UserError("data.mlm_corpus: the corpus has no lines")
    weights = {lang: (n / total) ** alpha if n else 0.0 for lang, n in counts.items()}
    norm = sum(weights.values())
    return {lang: w / norm for lang, w in weights.items()}


def allocate(probs: Mapping[str, float], total: int) -> dict[str, int]:
    """round(total * q_l) per language, by largest remainder so that they sum to `total`."""
    exact = {lang: total * q for lang, q in probs.items()}
    counts = {lang: math.floor(x) for lang, x in exact.items()}
    left = total - sum(counts.values())
    for lang in sorted(exact, key=lambda k: (counts[k] - exact[k], k))[:left]:
        counts[lang] += 1
    return counts


def _rng(*parts: object) -> random.Random:
    text = "/".join(str(p) for p in ("mlm-corpus", *parts))
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))


def sample_lines(pool: Sequence[str], m: int, language: str) -> list[str]:
    """`m` lines of `pool`: a seeded sample, or whole copies of it plus one where m > len."""
    copies, rest = divmod(m, len(pool)) if pool else (0, 0)
    chosen = sorted(_rng("train", language, len(pool), m).sample(range(len(pool)), rest))
    return [*(line for _ in range(copies) for line in pool), *(pool[i] for i in chosen)]


@lru_cache(maxsize=8)
def draw(corpus: MlmCorpus) -> tuple[tuple[TextLine, ...], tuple[TextLine, ...]]:
    """(training lines, dev lines) of the corpus: see the module docstring."""
    pools: dict[str, list[str]] = {}
    dev: list[TextLine] = []
    for lang in corpus_languages(corpus):
        lines = read_lines(corpus, lang)
        k = corpus.dev_lines if len(lines) > corpus.dev_lines else 0
        held = set(_rng("dev", lang, len(lines)).sample(range(len(lines)), k))
        dev += [TextLine(lines[i], lang) for i in sorted(held)]
        pools[lang] = [line for i, line in enumerate(lines) if i not in held]
    counts = {lang: len(pool) for lang, pool in pools.items()}
    wanted = allocate(sampling_probs(counts, corpus.alpha), sum(counts.values()))
    train = [
        TextLine(line, lang)
        for lang, pool in pools.items()
        if pool
        for line in sample_lines(pool, wanted[lang], lang)
    ]
    _rng("order", len(train)).shuffle(train)  # languages mixed: any prefix is a fair cap
    return tuple(train), tuple(dev)
