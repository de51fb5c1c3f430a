"""SQuAD v1.1 EM/F1 and its normalizer (XQuAD, TyDiQA)."""

import pytest

from evaluation.scorers.squad import normalize_answer, score, token_f1


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The Cat!", "cat"),
        ("  a  big\tdog. ", "big dog"),
        ("an apple, the pear", "apple pear"),
        ("theatre anthem", "theatre anthem"),  # articles only as whole words
        ("«cat»", "«cat»"),  # Unicode punctuation is kept: only ASCII is removed
        ("¿qué?", "¿qué"),
        ("$5 + 3%", "5 3"),
        ("Der Hund", "der hund"),  # English articles only, in every language
    ],
)
def test_normalize(text, normalized):
    assert normalize_answer(text) == normalized


def test_f1_by_hand():
    # 2 shared tokens, precision 2/3, recall 2/3.
    assert token_f1("big red dog", "red dog barks") == pytest.approx(2 / 3)


def test_answers_that_normalize_to_nothing_match_exactly_but_have_no_f1():
    result = score({"q": "The"}, {"q": ["a"]}, language="en")
    assert result == {"exact_match": 100.0, "f1": 0.0}


def test_best_of_several_gold_answers_counts():
    result = score(
        {"q": "Paris"}, {"q": ["the city of Paris", "Paris, France", "paris"]}, language="en"
    )
    assert result == {"exact_match": 100.0, "f1": 100.0}
    partial = score(
        {"q": "Paris France"}, {"q": ["the city of Paris", "Paris, France"]}, language="en"
    )
    assert partial == {"exact_match": 100.0, "f1": 100.0}


def test_missing_prediction_scores_zero_and_extra_ids_are_ignored():
    result = score({"q1": "yes", "zz": "ignored"}, {"q1": ["yes"], "q2": ["no"]}, language="en")
    assert result == {"exact_match": 50.0, "f1": 50.0}


def test_unanswerable_question_needs_an_empty_prediction():
    assert score({"q": ""}, {"q": []}, language="en") == {"exact_match": 100.0, "f1": 100.0}
    assert score({"q": "x"}, {"q": []}, language="en") == {"exact_match": 0.0, "f1": 0.0}


def test_no_questions_is_an_error():
    with pytest.raises(ValueError, match="no questions"):
        score({}, {}, language="en")
