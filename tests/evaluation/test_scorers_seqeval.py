"""seqeval 0.0.12 chunking, checked on hand-worked sequences."""

import pytest

from evaluation.scorers.seqeval import get_entities, score, sentence_entities


def test_iob2_entities():
    assert get_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]


def test_type_change_splits_chunks_and_i_after_o_starts_one():
    assert get_entities(["B-PER", "I-LOC", "O", "I-ORG"]) == [
        ("PER", 0, 0),
        ("LOC", 1, 1),
        ("ORG", 3, 3),
    ]


def test_iobes_end_and_single():
    assert get_entities(["B-PER", "E-PER", "S-LOC", "S-LOC"]) == [
        ("PER", 0, 1),
        ("LOC", 2, 2),
        ("LOC", 3, 3),
    ]


def test_pos_runs_of_one_tag_merge_into_one_chunk():
    # "NOUN" has tag "N" and type "NOUN": no rule ends a chunk between two of them.
    assert get_entities(["NOUN", "NOUN", "VERB", "NOUN"]) == [
        ("NOUN", 0, 1),
        ("VERB", 2, 2),
        ("NOUN", 3, 3),
    ]


def test_pos_tags_starting_with_s_are_singletons():
    # "SCONJ" and "SYM" have tag "S": each is its own chunk.
    assert get_entities(["SCONJ", "SCONJ", "SYM"]) == [
        ("SCONJ", 0, 0),
        ("SCONJ", 1, 1),
        ("SYM", 2, 2),
    ]


def test_sentences_are_joined_with_an_o():
    assert sentence_entities([["NOUN"], ["NOUN"]]) == [("NOUN", 0, 0), ("NOUN", 2, 2)]


def test_merged_pos_run_makes_a_partial_match_wrong():
    result = score([["NOUN", "VERB", "VERB"]], [["NOUN", "NOUN", "VERB"]], language="en")
    assert result == {"f1": 0.0, "precision": 0.0, "recall": 0.0}


def test_precision_recall_f1_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O"]]
    # gold {PER 0-1, LOC 3-3, ORG 5-5}; pred {PER 0-1, ORG 3-3}: 1 correct.
    result = score(pred, gold, language="en")
    assert result["precision"] == pytest.approx(50.0)
    assert result["recall"] == pytest.approx(100 / 3)
    assert result["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3) * 100)


def test_longer_predicted_sentence_shifts_later_offsets():
    # As in the official scorer: no per-sentence length check, offsets are global.
    result = score([["NOUN", "NOUN", "NOUN"], ["VERB"]], [["NOUN", "NOUN"], ["VERB"]], language="x")
    assert result["f1"] == 0.0


def test_empty_sentences_and_no_chunks_score_zero():
    assert score([[]], [[]], language="x") == {"f1": 0.0, "precision": 0.0, "recall": 0.0}


def test_sentence_counts_must_match():
    with pytest.raises(ValueError, match="sentences"):
        score([["O"]], [["O"], ["O"]], language="x")


def test_empty_tag_is_rejected():
    with pytest.raises(ValueError, match="empty tag"):
        score([[""]], [["O"]], language="x")
