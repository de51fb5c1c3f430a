"""The multitask sampler: a documented mixing rule, deterministic per batch index."""

from __future__ import annotations

from collections import Counter

import pytest

from evaluation.data.multitask import PHANG_TASKS, MultitaskSampler
from evaluation.tasks import task_names
from storage.errors import UserError

SIZES = dict(
    zip(
        PHANG_TASKS,
        (160_000, 392_702, 363_846, 87_599, 130_319, 39_905, 25_262, 9_741, 38_000),
        strict=True,
    )
)


def test_phang_tasks_are_registered() -> None:
    assert set(PHANG_TASKS) <= set(task_names())


def test_proportional_with_cap() -> None:
    p = MultitaskSampler(SIZES, cap=50_000).probabilities()
    assert p["mnli"] == pytest.approx(p["qqp"]) == pytest.approx(p["anli"])
    assert p["commonsenseqa"] == pytest.approx(
        9_741 / (5 * 50_000 + 9_741 + 39_905 + 25_262 + 38_000)
    )
    assert sum(p.values()) == pytest.approx(1.0)


def test_uncapped_is_examples_proportional() -> None:
    p = MultitaskSampler(SIZES, cap=None).probabilities()
    assert p["mnli"] / p["squad"] == pytest.approx(392_702 / 87_599)


def test_temperature_flattens() -> None:
    flat = MultitaskSampler(SIZES, strategy="temperature", temperature=1e6).probabilities()
    assert max(flat.values()) - min(flat.values()) < 1e-4
    t1 = MultitaskSampler(SIZES, strategy="temperature", temperature=1.0).probabilities()
    assert t1 == pytest.approx(MultitaskSampler(SIZES, cap=None).probabilities())


def test_task_for_batch_is_a_pure_function_of_seed_and_index() -> None:
    a, b = MultitaskSampler(SIZES, seed=1), MultitaskSampler(SIZES, seed=1)
    assert a.schedule(500) == b.schedule(500)
    assert a.schedule(100, start=400) == a.schedule(500)[400:]  # resume mid-way
    assert MultitaskSampler(SIZES, seed=2).schedule(500) != a.schedule(500)


def test_draws_follow_the_probabilities() -> None:
    sampler = MultitaskSampler(SIZES, cap=50_000, seed=0)
    counts = Counter(sampler.schedule(20_000))
    for task, p in sampler.probabilities().items():
        assert counts[task] / 20_000 == pytest.approx(p, abs=0.015)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sizes": {}},
        {"sizes": {"mnli": 0}},
        {"sizes": SIZES, "strategy": "uniform"},
        {"sizes": SIZES, "cap": 0},
        {"sizes": SIZES, "strategy": "temperature", "temperature": 0},
    ],
)
def test_bad_settings_are_user_errors(kwargs: dict) -> None:
    with pytest.raises(UserError, match="multitask"):
        MultitaskSampler(**kwargs)
