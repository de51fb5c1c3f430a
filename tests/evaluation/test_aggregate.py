"""Official aggregation: language means, avg_metric, groups and overall only when complete."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evaluation.aggregate import XTREME, XTREME_R, avg_metric, summarize, task_average
from evaluation.tasks import get_task


def _full(task: str, value: float, metrics=("accuracy",)):
    return task_average(
        task, {lang: dict.fromkeys(metrics, value) for lang in get_task(task).languages}
    )


def test_unweighted_mean_over_languages():
    result = task_average("xnli", {"de": {"accuracy": 50.0}, "en": {"accuracy": 80.0}})
    assert result.average == {"accuracy": 65.0}
    assert list(result.languages) == ["de", "en"]


def test_qa_avg_metric_is_mean_of_em_and_f1_and_headline_is_f1():
    result = task_average("mlqa", {"en": {"exact_match": 60.0, "f1": 70.0}})
    assert result.avg_metric == 65.0
    assert result.headline == 70.0


def test_avg_metric_preference():
    assert avg_metric({"f1": 1.0, "precision": 2.0, "recall": 3.0}) == 1.0
    assert avg_metric({"accuracy": 4.0}) == 4.0
    assert avg_metric({"map@20": 5.0}) == 5.0


def test_unknown_language_is_rejected():
    with pytest.raises(ValueError, match="xx"):
        task_average("xnli", {"xx": {"accuracy": 1.0}})


@given(
    st.dictionaries(st.sampled_from(get_task("panx").languages), st.floats(0, 100), min_size=1),
    st.randoms(),
)
def test_shuffling_languages_does_not_change_the_average(scores, rng: random.Random):
    per_language = {lang: {"f1": value} for lang, value in scores.items()}
    shuffled_keys = list(per_language)
    rng.shuffle(shuffled_keys)
    shuffled = {lang: per_language[lang] for lang in shuffled_keys}
    assert task_average("panx", shuffled).average == task_average("panx", per_language).average


def _xtreme_r_scores():
    scores = {t: _full(t, 50.0) for t in ("xnli", "xcopa", "tatoeba")}
    scores["udpos"] = _full("udpos", 60.0, ("f1", "precision", "recall"))
    scores["panx"] = _full("panx", 40.0, ("f1", "precision", "recall"))
    for task in ("xquad", "mlqa", "tydiqa"):
        scores[task] = task_average(
            task, {lang: {"exact_match": 60.0, "f1": 80.0} for lang in get_task(task).languages}
        )
    scores["mewslix"] = _full("mewslix", 30.0, ("map@20",))
    scores["lareqa"] = _full("lareqa", 20.0, ("map@20",))
    return scores


def test_xtreme_r_overall_needs_all_ten_tasks():
    scores = _xtreme_r_scores()
    summary = summarize(XTREME_R, scores)
    assert summary.groups == {
        "classification": 50.0,
        "tagging": 50.0,
        "qa": 70.0,
        "retrieval": 40.0,
        "multi_choice": 50.0,
    }
    assert summary.overall == pytest.approx((50 * 3 + 60 + 40 + 70 * 3 + 30 + 20) / 10)
    assert summary.overall_headline == pytest.approx((50 * 3 + 60 + 40 + 80 * 3 + 30 + 20) / 10)
    del scores["lareqa"]
    partial = summarize(XTREME_R, scores)
    assert partial.overall is None and partial.incomplete == ("lareqa",)
    assert "retrieval" in partial.groups  # LAReQA is in no group


def test_group_needs_every_task_on_every_language():
    scores = _xtreme_r_scores()
    scores["xcopa"] = task_average("xcopa", {"et": {"accuracy": 50.0}})
    summary = summarize(XTREME_R, scores)
    assert "classification" not in summary.groups and "multi_choice" not in summary.groups
    assert summary.overall is None and summary.incomplete == ("xcopa",)


def test_xtreme_v1_uses_its_own_language_lists():
    v1_langs = XTREME.languages("panx")
    assert len(v1_langs) == 40 and "qu" not in v1_langs
    panx = task_average("panx", {lang: {"f1": 40.0} for lang in v1_langs})
    udpos = task_average("udpos", {lang: {"f1": 60.0} for lang in XTREME.languages("udpos")})
    assert summarize(XTREME, {"panx": panx, "udpos": udpos}).groups == {"tagging": 50.0}
    assert summarize(XTREME_R, {"panx": panx, "udpos": udpos}).groups == {}
