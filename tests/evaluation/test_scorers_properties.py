"""Properties every scorer keeps: values in [0, 100]; predictions equal to labels give 100."""

from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation.scorers import get_scorer
from evaluation.scorers.mlqa import LANGUAGES, normalize_answer
from evaluation.scorers.squad import normalize_answer as squad_normalize
from evaluation.tasks import get_task

TAGS = st.sampled_from(get_task("udpos").labels + get_task("panx").labels)
SENTENCES = st.lists(st.lists(TAGS, max_size=8), min_size=1, max_size=6)
TEXT = st.text(max_size=20)
IDS = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=5)
SETTINGS = settings(max_examples=60, deadline=None)


def in_range(result: dict[str, float]) -> bool:
    return all(0.0 <= value <= 100.0 for value in result.values())


@SETTINGS
@given(st.data())
def test_tagging_scores_in_range_and_identity_is_perfect(data):
    gold = data.draw(SENTENCES)
    pred = data.draw(st.lists(st.lists(TAGS, max_size=8), min_size=len(gold), max_size=len(gold)))
    assert in_range(get_scorer("seqeval").score(pred, gold, language="en"))
    same = get_scorer("seqeval").score(gold, gold, language="en")
    has_chunk = any(tag != "O" for sentence in gold for tag in sentence)
    assert same == dict.fromkeys(("f1", "precision", "recall"), 100.0 if has_chunk else 0.0)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), min_size=1))
def test_label_scores_in_range_and_identity_is_perfect(pairs):
    pred, gold = [p for p, _ in pairs], [g for _, g in pairs]
    for family in ("accuracy", "tatoeba"):
        assert in_range(get_scorer(family).score(pred, gold, language="en"))
        assert get_scorer(family).score(gold, gold, language="en") == {"accuracy": 100.0}


@SETTINGS
@given(st.dictionaries(IDS, st.tuples(TEXT, st.lists(TEXT, min_size=1, max_size=3)), min_size=1))
def test_qa_scores_in_range_and_identity_is_perfect(questions):
    preds = {qid: pred for qid, (pred, _) in questions.items()}
    golds = {qid: answers for qid, (_, answers) in questions.items()}
    first = {qid: answers[0] for qid, answers in golds.items()}
    for lang in LANGUAGES:
        assert in_range(get_scorer("mlqa").score(preds, golds, language=lang))
        same = get_scorer("mlqa").score(first, golds, language=lang)
        if all(normalize_answer(text, lang) for text in first.values()):
            assert same == {"exact_match": 100.0, "f1": 100.0}
    assert in_range(get_scorer("squad").score(preds, golds, language="en"))
    if all(squad_normalize(text) for text in first.values()):
        assert get_scorer("squad").score(first, golds, language="en") == {
            "exact_match": 100.0,
            "f1": 100.0,
        }


@SETTINGS
@given(st.sets(st.tuples(IDS, IDS), min_size=1), st.sets(st.tuples(IDS, IDS)))
def test_bucc_in_range_and_identity_is_perfect(gold, pred):
    assert in_range(get_scorer("bucc").score(pred, gold, language="de"))
    assert set(get_scorer("bucc").score(gold, gold, language="de").values()) == {100.0}


@SETTINGS
@given(st.dictionaries(IDS, st.lists(IDS, min_size=1, max_size=25, unique=True), min_size=1))
def test_ranking_in_range_and_identity_is_perfect(ranked):
    golds = {qid: ids[-1] for qid, ids in ranked.items()}
    assert in_range(get_scorer("mewslix").score(ranked, golds, language="en"))
    first = {qid: [gold] for qid, gold in golds.items()}
    assert get_scorer("mewslix").score(first, golds, language="en") == {"map@20": 100.0}
    relevant = {qid: set(ids) for qid, ids in ranked.items()}
    assert in_range(get_scorer("lareqa").score(ranked, first, language="en"))
    assert get_scorer("lareqa").score(ranked, relevant, language="en") == {"map@20": 100.0}
