"""Retrieval from sentence embeddings, batched exact search in numpy, as the official
XTREME utilities do it with faiss (``utils_retrieve.py``, ``evaluate_retrieval.py``).

- Tatoeba: `tatoeba_top1` - L2-normalise both sides, nearest English sentence by cosine.
- BUCC 2018: `bucc_candidates` mines candidate pairs with the "ratio" margin over k=4
  nearest neighbours in both directions and "max" retrieval; `bucc_threshold` picks the
  threshold on the dev gold (midpoint after the F1-best cut, as ``bucc_optimize``);
  `bucc_extract` keeps the pairs scoring at least the threshold; `mine_bucc` does all three
  for a dev and a test split, reusing the dev threshold on test.
- Mewsli-X: `mewslix_rank` - top-20 entities by inner product with L2-normalised entity
  encodings (the mention encodings are used as they are, as the official code does).
- LAReQA: `lareqa_rank` - candidates of the whole multilingual pool ranked by dot product.

The outputs are the in-memory prediction forms of `evaluation.scorers.ranking` and
`evaluation.scorers.bucc`. Ties are broken towards the lower index (faiss does not
promise an order), so results can differ from the official ones only on exact ties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.scorers.bucc import Pair, set_prf

BATCH = 2048
BUCC_K = 4


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.result_type(np.asarray(x).dtype, np.float32))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def top_k(queries: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner-product top-k of each query: (scores, indices), best first, shape (n, k')."""
    k = min(k, database.shape[0])
    scores = np.empty((queries.shape[0], k), dtype=np.result_type(queries, database))
    indices = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], BATCH):
        sims = queries[start : start + BATCH] @ database.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < sims.shape[1] else None
        cand = part if part is not None else np.broadcast_to(np.arange(k), sims.shape)
        cand_sims = np.take_along_axis(sims, cand, axis=1)
        order = np.lexsort((cand, -cand_sims), axis=1)  # by score, then lower index
        indices[start : start + BATCH] = np.take_along_axis(cand, order, axis=1)
        scores[start : start + BATCH] = np.take_along_axis(cand_sims, order, axis=1)
    return scores, indices


def tatoeba_top1(source: np.ndarray, english: np.ndarray) -> list[int]:
    """For each source sentence, the index of the most cosine-similar English sentence."""
    _, indices = top_k(l2_normalize(source), l2_normalize(english), 1)
    return indices[:, 0].tolist()


def mewslix_rank(
    mentions: np.ndarray, entities: np.ndarray, entity_ids: Sequence[str], k: int = 20
) -> list[list[str]]:
    """Ranked top-k entity ids per mention."""
    _, indices = top_k(np.asarray(mentions), l2_normalize(entities), k)
    return [[entity_ids[j] for j in row] for row in indices]


def lareqa_rank(
    questions: np.ndarray, candidates: np.ndarray, candidate_ids: Sequence[str], k: int = 20
) -> list[list[str]]:
    """Ranked top-k candidate ids per question, by dot product over the whole pool."""
    _, indices = top_k(np.asarray(questions), np.asarray(candidates), k)
    return [[candidate_ids[j] for j in row] for row in indices]


@dataclass(frozen=True)
class BuccSide:
    """One language of a BUCC split: a row of `embeddings` per line of `texts`, with `ids`."""

    embeddings: np.ndarray
    texts: Sequence[str]
    ids: Sequence[str]


@dataclass(frozen=True)
class BuccMining:
    threshold: float  # chosen on the dev gold
    dev: dict[str, float]  # f1 / precision / recall on dev at that threshold
    predictions: set[Pair]  # test pairs at or above the threshold


def _unique(side: BuccSide) -> tuple[np.ndarray, list[str]]:
    """Distinct sentences in first-occurrence order, each with its last occurrence's row."""
    last: dict[str, int] = {}
    for i, text in enumerate(side.texts):
        last[text] = i
    return np.asarray(side.embeddings)[list(last.values())], list(last)


def _sentence_ids(side: BuccSide) -> dict[str, str]:
    """Stripped sentence -> id; sentences occurring more than once are dropped."""
    mapping: dict[str, str] = {}
    repeated: set[str] = set()
    for text, sid in zip(side.texts, side.ids, strict=True):
        key = text.strip()
        if key in mapping:
            repeated.add(key)
        else:
            mapping[key] = sid
    return {key: sid for key, sid in mapping.items() if key not in repeated}


def _best_by_margin(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row of x: the neighbour in y with the best ratio margin, and that margin."""
    sims_xy, inds_xy = top_k(x, y, k)
    sims_yx, _ = top_k(y, x, k)
    x_mean, y_mean = sims_xy.mean(axis=1), sims_yx.mean(axis=1)
    margins = sims_xy / ((x_mean[:, None] + y_mean[inds_xy]) / 2)
    best = margins.argmax(axis=1)
    rows = np.arange(x.shape[0])
    return inds_xy[rows, best], margins[rows, best]


def bucc_candidates(source: BuccSide, target: BuccSide, k: int = BUCC_K) -> dict[Pair, float]:
    """Candidate (source id, target id) pairs with their margin scores ("max" mining)."""
    x_raw, x_texts = _unique(source)
    y_raw, y_texts = _unique(target)
    x, y = l2_normalize(x_raw), l2_normalize(y_raw)
    fwd_best, fwd_score = _best_by_margin(x, y, k)
    bwd_best, bwd_score = _best_by_margin(y, x, k)
    src = np.concatenate((np.arange(x.shape[0]), bwd_best))
    trg = np.concatenate((fwd_best, np.arange(y.shape[0])))
    scores = np.concatenate((fwd_score, bwd_score)).astype(np.float64)
    src_ids, trg_ids = _sentence_ids(source), _sentence_ids(target)
    seen_src: set[int] = set()
    seen_trg: set[int] = set()
    candidates: dict[Pair, float] = {}
    for i in np.argsort(-scores, kind="stable"):
        s, t = int(src[i]), int(trg[i])
        if s in seen_src or t in seen_trg:
            continue
        seen_src.add(s)
        seen_trg.add(t)
        sid, tid = src_ids.get(x_texts[s].strip()), trg_ids.get(y_texts[t].strip())
        if scores[i] > 0 and sid is not None and tid is not None:
            candidates[sid, tid] = max(float(scores[i]), candidates.get((sid, tid), -np.inf))
    return candidates


def bucc_threshold(candidates: dict[Pair, float], gold: set[Pair]) -> float:
    """Midpoint between the score of the F1-best cut and the next score (0 if none is right).

    When the best cut is the last candidate, its own score is the threshold.
    """
    items = sorted(candidates.items(), key=lambda item: -item[1])
    threshold, best_f1, correct = 0.0, 0.0, 0
    for n, (pair, pair_score) in enumerate(items, start=1):
        correct += pair in gold
        if correct == 0:
            continue
        precision, recall = correct / n, correct / len(gold)
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best_f1:
            best_f1 = f1
            threshold = (pair_score + items[n][1]) / 2 if n < len(items) else pair_score
    return threshold


def bucc_extract(candidates: dict[Pair, float], threshold: float) -> set[Pair]:
    return {pair for pair, pair_score in candidates.items() if pair_score >= threshold}


def mine_bucc(
    dev: tuple[BuccSide, BuccSide],
    dev_gold: set[Pair],
    test: tuple[BuccSide, BuccSide],
    k: int = BUCC_K,
) -> BuccMining:
    """Threshold on dev (source, target) against its gold, then predict the test pairs."""
    dev_candidates = bucc_candidates(*dev, k=k)
    threshold = bucc_threshold(dev_candidates, dev_gold)
    dev_scores = set_prf(bucc_extract(dev_candidates, threshold), dev_gold)
    predictions = bucc_extract(bucc_candidates(*test, k=k), threshold)
    return BuccMining(threshold, dev_scores, predictions)
