"""Sampling SE by bootstrap over examples (issue 15, item 1): each scorer's per-example
decomposition reproduces its own score, and the bootstrap SE matches closed forms."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from evaluation.predict import score_rows
from evaluation.sampling import N_RESAMPLES, bootstrap_se, combine_mean_nll
from evaluation.scorers import get_scorer
from evaluation.scorers.base import combine_means
from evaluation.tasks import get_task

rnd = random.Random(15)
WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away"]
NER = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG"]


def _text(n: int) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def _qa(n: int):  # type: ignore[no-untyped-def]
    golds = {
        f"q{i}": [_text(rnd.randint(1, 4)) for _ in range(rnd.randint(1, 2))] for i in range(n)
    }
    preds = {
        q: (a[0] if rnd.random() < 0.4 else _text(3))
        for q, a in golds.items()
        if rnd.random() < 0.9
    }
    return preds, golds  # fmt: skip


def _tags(n: int):  # type: ignore[no-untyped-def]
    golds = [[rnd.choice(NER) for _ in range(rnd.randint(2, 9))] for _ in range(n)]
    preds = [[t if rnd.random() < 0.7 else rnd.choice(NER) for t in s] for s in golds]
    return preds, golds


def _bucc(n: int):  # type: ignore[no-untyped-def]
    golds = {(f"s{i}", f"t{i}") for i in range(n)}
    preds = {(s, t if rnd.random() < 0.7 else f"t{rnd.randrange(n)}") for s, t in golds}
    return preds | {(f"x{i}", "t0") for i in range(5)}, golds


def _mewslix(n: int):  # type: ignore[no-untyped-def]
    golds = {f"m{i}": f"e{rnd.randrange(30)}" for i in range(n)}
    preds = {q: rnd.sample([f"e{j}" for j in range(30)], 20) for q in golds}
    return preds, golds


def _lareqa(n: int):  # type: ignore[no-untyped-def]
    golds = {f"q{i}": {f"c{rnd.randrange(40)}" for _ in range(3)} for i in range(n)}
    preds = {q: rnd.sample([f"c{j}" for j in range(40)], 20) for q in golds}
    return preds, golds


CASES = [
    ("squad", "en", _qa),
    ("mlqa", "zh", _qa),
    ("seqeval", "de", _tags),
    ("bucc", "de", _bucc),
    ("mewslix", "es", _mewslix),
    ("lareqa", "ar", _lareqa),
]


@pytest.mark.parametrize(("name", "language", "make"), CASES)
def test_decomposition_reproduces_the_official_score(name: str, language: str, make) -> None:  # type: ignore[no-untyped-def]
    scorer = get_scorer(name)
    assert scorer.per_example is not None and scorer.combine is not None
    preds, golds = make(60)
    official = scorer.score(preds, golds, language=language)
    rows = scorer.per_example(preds, golds, language=language)
    combined = scorer.combine(rows.sum(axis=0))
    for metric, value in official.items():
        assert float(combined[metric]) == pytest.approx(value, abs=1e-9), metric
    assert 0 < official[scorer.metrics[0]] < 100  # a case where the SE is not trivially 0


def test_bootstrap_se_of_a_mean_is_sd_over_sqrt_n() -> None:
    """For a mean, the bootstrap SE estimates sd (ddof 0) / sqrt(n); B = 200 resamples give
    it within about 1 / sqrt(2 B) = 5 % relative error."""
    x = np.random.default_rng(1).random(2000)
    rows = np.column_stack([x, np.ones_like(x)])
    se = bootstrap_se(rows, combine_means("m"), "t", "de")["m"]
    assert se == pytest.approx(
        100 * x.std() / math.sqrt(x.size), rel=3 / math.sqrt(2 * N_RESAMPLES)
    )
    assert bootstrap_se(rows, combine_means("m"), "t", "de")["m"] == se  # seeded
    assert bootstrap_se(rows[:1], combine_means("m"), "t", "de")["m"] == 0.0


def test_bootstrap_se_of_token_nll_resamples_sentences() -> None:
    """Units within a sentence move together: the ratio estimator's SE (delta method) —
    sqrt(Σ (s_i − r u_i)² ) / Σ u_i — not the token-level sd / sqrt(tokens)."""
    rng = np.random.default_rng(2)
    units = rng.integers(1, 30, 3000).astype(float)
    sums = units * rng.gamma(2.0, 0.5, units.size)  # sentence-level likelihood differences
    rows = np.column_stack([sums, units])
    r = sums.sum() / units.sum()
    delta = math.sqrt(((sums - r * units) ** 2).sum()) / units.sum()
    se = bootstrap_se(rows, combine_mean_nll, "udpos", "de", "nll")["nll"]
    assert se == pytest.approx(delta, rel=3 / math.sqrt(2 * N_RESAMPLES))


def test_score_rows_carry_the_se_of_f1_and_map_only() -> None:
    preds, golds = _tags(80)
    metrics = {r["metric"] for r in score_rows(get_task("panx"), "de", preds, golds, 80)}
    assert metrics == {"f1", "precision", "recall", "f1_se"}
    labels = ["entailment", "neutral", "contradiction"]
    gold = [rnd.choice(labels) for _ in range(50)]
    rows = score_rows(get_task("xnli"), "de", list(reversed(gold)), gold, 50)
    assert {r["metric"] for r in rows} == {"accuracy"}  # binomial: no SE row
