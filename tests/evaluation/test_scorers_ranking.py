"""BUCC set P/R/F1, Tatoeba accuracy, Mewsli-X MRR@20 and LAReQA mAP@20 by hand."""

import pytest

from evaluation.scorers import bucc, ranking


def test_bucc_set_scores_by_hand():
    gold = [("de-1", "en-1"), ("de-2", "en-2"), ("de-3", "en-3"), ("de-4", "en-4")]
    pred = [("de-1", "en-1"), ("de-2", "en-9"), ("de-3", "en-3"), ("de-3", "en-3")]
    result = bucc.score(pred, gold, language="de")
    # 3 distinct predicted pairs, 2 right: P 2/3, R 2/4.
    assert result["precision"] == pytest.approx(200 / 3)
    assert result["recall"] == 50.0
    assert result["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5) * 100)


def test_bucc_without_a_correct_pair_is_zero():
    assert bucc.score([("a", "b")], [("a", "c")], language="fr") == {
        "f1": 0.0,
        "precision": 0.0,
        "recall": 0.0,
    }


def test_tatoeba_compares_indices_as_text():
    assert ranking.tatoeba([0, 5, "2 "], ["0", "1", 2], language="de") == {"accuracy": 2 / 3 * 100}


def test_mewslix_mrr_by_hand():
    golds = {"m1": ["Q2"], "m2": "Q3", "m3": ["Q9"]}
    preds = {"m1": ["Q2", "Q1"], "m2": ["Q1", "Q2", "Q3"], "extra": ["Q9"]}
    # reciprocal ranks 1, 1/3 and 0 (m3 unpredicted).
    assert ranking.mewslix(preds, golds, language="de")["map@20"] == pytest.approx(400 / 9)


def test_mewslix_counts_only_the_top_20():
    ranked = [f"Q{i}" for i in range(30)]
    assert ranking.mewslix({"m": ranked}, {"m": ["Q19"]}, language="en") == {"map@20": 5.0}
    assert ranking.mewslix({"m": ranked}, {"m": ["Q20"]}, language="en") == {"map@20": 0.0}


def test_lareqa_average_precision_by_hand():
    # Relevant c1, c3 found at ranks 2 and 4: (1/2 + 2/4) / 2.
    assert ranking.average_precision({"c1", "c3"}, ["c0", "c1", "c2", "c3"]) == 0.5
    # A repeated candidate counts once: (1/1 + 2/3) / 2.
    assert ranking.average_precision({"c1", "c3"}, ["c1", "c1", "c3"]) == pytest.approx(5 / 6)


def test_lareqa_divides_by_at_most_20():
    relevant = [f"c{i}" for i in range(25)]
    assert ranking.average_precision(set(relevant), relevant) == 1.0


def test_lareqa_map_by_hand():
    golds = {"q1": ["a_en", "a_de"], "q2": ["b_en", "b_de"]}
    preds = {"q1": ["a_de", "a_en"], "q2": ["x", "b_en"]}
    # q1: AP 1; q2: one of two relevant at rank 2 -> (1/2) / 2.
    assert ranking.lareqa(preds, golds, language="en")["map@20"] == pytest.approx(62.5)


def test_lareqa_question_without_relevant_candidates_is_an_error():
    with pytest.raises(ValueError, match="no relevant"):
        ranking.lareqa({"q": ["a"]}, {"q": []}, language="en")
