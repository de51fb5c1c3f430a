"""Retrieval from embeddings on hand-computed examples."""

import numpy as np
import pytest

from evaluation.retrieval import (
    BuccSide,
    bucc_candidates,
    bucc_extract,
    bucc_threshold,
    lareqa_rank,
    mewslix_rank,
    mine_bucc,
    tatoeba_top1,
    top_k,
)


def test_tatoeba_uses_cosine_not_inner_product():
    english = np.array([[1.0, 0.0], [100.0, 100.0], [0.0, 1.0]])
    source = np.array([[10.0, 0.5], [0.1, 3.0], [2.0, 2.1]])
    assert tatoeba_top1(source, english) == [0, 2, 1]


def test_top_k_is_batched_sorted_and_breaks_ties_by_index(monkeypatch):
    monkeypatch.setattr("evaluation.retrieval.BATCH", 2)
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    database = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    scores, indices = top_k(queries, database, 3)
    assert indices.tolist() == [[0, 2, 3], [1, 3, 0], [0, 1, 2]]
    assert scores[0].tolist() == [1.0, 1.0, 0.5]


def test_mewslix_normalises_entities_only():
    mentions = np.array([[1.0, 0.0], [0.0, 5.0]])
    entities = np.array([[2.0, 2.0], [0.9, 0.0], [0.0, 0.1]])
    # Normalised entities: Q1 (.71, .71), Q2 (1, 0), Q3 (0, 1).
    assert mewslix_rank(mentions, entities, ["Q1", "Q2", "Q3"], k=2) == [
        ["Q2", "Q1"],
        ["Q3", "Q1"],
    ]


def test_lareqa_ranks_the_pool_by_dot_product():
    questions = np.array([[1.0, 0.0], [0.0, 1.0]])
    candidates = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    assert lareqa_rank(questions, candidates, ["c0", "c1", "c2"]) == [
        ["c0", "c1", "c2"],
        ["c2", "c1", "c0"],
    ]


def _side(vectors, texts, prefix):
    return BuccSide(np.array(vectors), texts, [f"{prefix}-{i}" for i in range(len(texts))])


# x0 . y = (1, .6), x1 . y = (0, .8); with k = 2 the neighbourhood means are
# x: (.8, .4) and y: (.5, .7). Ratio margins: x0-y0 = 1 / .65, x0-y1 = .6 / .75,
# x1-y0 = 0, x1-y1 = .8 / .55. Both directions agree on x0-y0 and x1-y1.
SOURCE = [[1.0, 0.0], [0.0, 1.0]]
TARGET = [[1.0, 0.0], [0.6, 0.8]]


def test_bucc_candidates_ratio_margin_by_hand():
    candidates = bucc_candidates(_side(SOURCE, ["a", "b"], "de"), _side(TARGET, ["A", "B"], "en"))
    assert candidates.keys() == {("de-0", "en-0"), ("de-1", "en-1")}
    assert candidates["de-0", "en-0"] == pytest.approx(1 / 0.65)
    assert candidates["de-1", "en-1"] == pytest.approx(0.8 / 0.55)


def test_bucc_drops_sentences_that_occur_twice():
    source = _side([*SOURCE, [1.0, 0.0]], ["a", "b", "a"], "de")
    candidates = bucc_candidates(source, _side(TARGET, ["A", "B"], "en"))
    assert candidates.keys() == {("de-1", "en-1")}


def test_bucc_threshold_by_hand():
    candidates = {("s1", "t1"): 0.9, ("s2", "t2"): 0.8, ("s3", "t3"): 0.7, ("s4", "t4"): 0.5}
    gold = {("s1", "t1"), ("s3", "t3"), ("s5", "t5")}
    # Cuts: F1 .5 after 1, .4 after 2, 2/3 after 3 (best), 4/7 after 4.
    threshold = bucc_threshold(candidates, gold)
    assert threshold == pytest.approx((0.7 + 0.5) / 2)
    assert bucc_extract(candidates, threshold) == {("s1", "t1"), ("s2", "t2"), ("s3", "t3")}


def test_bucc_threshold_edge_cases():
    assert bucc_threshold({("s", "t"): 0.9}, {("s", "t")}) == 0.9  # best cut is the last
    assert bucc_threshold({("s", "t"): 0.9}, {("x", "y")}) == 0.0  # nothing right


def test_mine_bucc_reuses_the_dev_threshold_on_test():
    dev = (_side(SOURCE, ["a", "b"], "de"), _side(TARGET, ["A", "B"], "en"))
    result = mine_bucc(dev, {("de-0", "en-0")}, dev)
    assert result.threshold == pytest.approx((1 / 0.65 + 0.8 / 0.55) / 2)
    assert result.dev == {"f1": 100.0, "precision": 100.0, "recall": 100.0}
    assert result.predictions == {("de-0", "en-0")}
