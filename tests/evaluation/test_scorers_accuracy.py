"""Accuracy and token accuracy."""

import pytest

from evaluation.scorers.accuracy import score, score_tokens


def test_accuracy_by_hand():
    result = score(
        ["entailment", "neutral", "neutral"],
        ["entailment", "neutral", "contradiction"],
        language="en",
    )
    assert result == {"accuracy": 2 / 3 * 100}


def test_labels_compare_by_value_not_by_kind():
    # XCOPA JSONL labels are ints; "1" and 1 differ, as in the official script.
    assert score([1, "1"], [1, 1], language="et") == {"accuracy": 50.0}


def test_accuracy_needs_equal_nonzero_lengths():
    with pytest.raises(ValueError, match="labels"):
        score(["a"], ["a", "b"], language="en")
    with pytest.raises(ValueError, match="no labels"):
        score([], [], language="en")


def test_token_accuracy_by_hand():
    pred = [["NP", "S\\NP"], ["N"]]
    gold = [["NP", "(S\\NP)/NP"], ["N"]]
    assert score_tokens(pred, gold, language="en") == {"accuracy": 2 / 3 * 100}


def test_token_accuracy_needs_equal_sentence_lengths():
    with pytest.raises(ValueError, match="sentence 0"):
        score_tokens([["a"]], [["a", "b"]], language="en")
