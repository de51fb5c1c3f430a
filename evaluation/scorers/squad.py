"""SQuAD v1.1 exact match and F1 (XQuAD, TyDiQA-GoldP, SQuAD), as the official
``evaluate-v1.1.py`` computes them.

Normalization, in this order: lowercase; delete every ASCII punctuation character
(``string.punctuation`` only, so Unicode punctuation stays); replace the whole words
"a", "an", "the" with a space; collapse whitespace. TyDiQA is scored with this English
normalizer in every language, as the benchmark does.

Per question: EM = normalized strings equal; F1 = bag-of-tokens overlap of the normalized
strings' whitespace tokens, 0 without overlap (so an answer that normalizes to nothing,
e.g. "the", has EM 1 against another such answer but F1 0). The best score over the gold
answers counts. Totals are 100 x the mean over every gold question; a question without a
prediction scores 0; predictions for ids not in the golds are ignored. A question with
*no* gold answers (SQuAD 2.0 unanswerable) is scored as SQuAD 2.0 scores it: EM and F1
are 1 when the prediction normalizes to nothing, else 0. (v1.1 has no such questions.)

In-memory form: `score(predictions, golds, *, language)` with ``predictions`` a mapping
question id -> predicted answer text and ``golds`` a mapping question id -> sequence of
gold answer texts (``[a.text for a in example.answers]``). Returns
``{"exact_match", "f1"}``. `language` is unused.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from evaluation.scorers.base import Scorer, combine_means

Normalizer = Callable[[str], str]

_ASCII_PUNCT = str.maketrans("", "", string.punctuation)
_EN_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    text = text.lower().translate(_ASCII_PUNCT)
    return " ".join(_EN_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 between two already normalized strings."""
    pred_tokens, gold_tokens = prediction.split(), gold.split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0
    precision = 1.0 * same / len(pred_tokens)
    recall = 1.0 * same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def _question_scores(prediction: str, answers: Sequence[str], normalize: Normalizer):
    pred = normalize(prediction)
    if not answers:  # SQuAD 2.0 unanswerable question
        return int(pred == ""), float(pred == "")
    golds = [normalize(answer) for answer in answers]
    return max(int(pred == gold) for gold in golds), max(token_f1(pred, g) for g in golds)


def qa_score(
    predictions: Mapping[str, str], golds: Mapping[str, Sequence[str]], normalize: Normalizer
) -> dict[str, float]:
    """EM and F1 of a prediction mapping against gold answers, with a given normalizer."""
    if not golds:
        raise ValueError("no questions to score")
    exact_match = 0
    f1 = 0.0
    for qid, answers in golds.items():
        if qid not in predictions:
            continue
        em_q, f1_q = _question_scores(predictions[qid], answers, normalize)
        exact_match += em_q
        f1 += f1_q
    total = len(golds)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


def qa_rows(
    predictions: Mapping[str, str], golds: Mapping[str, Sequence[str]], normalize: Normalizer
) -> np.ndarray:
    """Per gold question (EM, F1, 1), 0 without a prediction: `qa_score`'s terms."""
    rows = np.zeros((len(golds), 3))
    rows[:, 2] = 1.0
    for i, (qid, answers) in enumerate(golds.items()):
        if qid in predictions:
            rows[i, :2] = _question_scores(predictions[qid], answers, normalize)
    return rows


def score(
    predictions: Mapping[str, str], golds: Mapping[str, Sequence[str]], *, language: str
) -> dict[str, float]:
    del language
    return qa_score(predictions, golds, normalize_answer)


def per_example(
    predictions: Mapping[str, str], golds: Mapping[str, Sequence[str]], *, language: str
) -> np.ndarray:
    del language
    return qa_rows(predictions, golds, normalize_answer)


SCORER = Scorer(
    "squad",
    score,
    ("exact_match", "f1"),
    "SQuAD v1.1 EM/F1, English normalizer",
    per_example,
    combine_means("exact_match", "f1"),
)
