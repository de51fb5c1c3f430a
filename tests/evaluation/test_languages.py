"""The per-language facts table and its breakdown (issue 15, item 7)."""

from __future__ import annotations

import math

import pytest

from evaluation.analysis.languages import (
    BY_CODE,
    HIGH_GIB,
    LANGUAGES,
    LOW_GIB,
    RESOURCE_LEVELS,
    breakdown,
    breakdown_table,
    summary_values,
)
from evaluation.tasks import all_tasks

SCRIPTS = {
    "Latin": "Latn",
    "Cyrillic": "Cyrl",
    "Arabic": "Arab",
    "Devanagari": "Deva",
    "Bengali": "Beng",
    "Greek": "Grek",
    "Gujarati": "Gujr",
    "Hebrew": "Hebr",
    "Japanese": "Jpan",
    "Georgian": "Geor",
    "Hangul": "Hang",
    "Malayalam": "Mlym",
    "Myanmar": "Mymr",
    "Gurmukhi": "Guru",
    "Tamil": "Taml",
    "Telugu": "Telu",
    "Thai": "Thai",
    "Han (Simplified)": "Hans",
}


def test_every_task_language_has_one_entry() -> None:
    used = {lang for task in all_tasks() for lang in task.languages}
    assert used <= set(BY_CODE), sorted(used - set(BY_CODE))
    codes = [lang.code for lang in LANGUAGES]
    assert len(codes) == len(set(codes)), "duplicate codes"
    assert len({lang.name for lang in LANGUAGES}) == len(LANGUAGES), "duplicate names"


def test_values_are_sane() -> None:
    for lang in LANGUAGES:
        assert lang.code.isascii() and lang.code.islower() and len(lang.code) == 2
        assert lang.name and lang.family and lang.genus
        assert SCRIPTS.get(lang.script) == lang.script_code, lang
        gib = lang.cc100_gib
        assert gib is None or 0.0 < gib < 400.0, lang
        assert lang.resource in RESOURCE_LEVELS
    # Spot checks against Conneau et al. 2020, Table 6, and common knowledge.
    assert BY_CODE["en"].cc100_gib == 300.8 and BY_CODE["en"].resource == "high"
    assert BY_CODE["sw"].cc100_gib == 1.6 and BY_CODE["sw"].resource == "mid"
    assert BY_CODE["jv"].resource == "low"
    assert {c for c, lang in BY_CODE.items() if lang.cc100_gib is None} == {"ht", "qu", "wo", "yo"}
    assert (BY_CODE["de"].family, BY_CODE["de"].genus) == ("Indo-European", "Germanic")
    assert BY_CODE["ru"].script == "Cyrillic" and BY_CODE["hi"].script == "Devanagari"
    assert BY_CODE["ur"].script == "Arabic" and BY_CODE["zh"].script_code == "Hans"


@pytest.mark.parametrize(
    ("gib", "level"),
    [(None, "unseen"), (0.2, "low"), (LOW_GIB, "mid"), (HIGH_GIB, "mid"), (10.1, "high")],
)
def test_resource_cutoffs(gib: float | None, level: str) -> None:
    from dataclasses import replace

    assert replace(BY_CODE["en"], cc100_gib=gib).resource == level


def test_breakdown_means_and_counts() -> None:
    rows = {"de": 1.0, "nl": 3.0, "ru": -2.0, "yo": 5.0, "xx": 100.0, "fr": math.nan}
    groups = breakdown(rows)
    by = {(g["grouping"], g["group"]): g for g in groups}
    assert by[("family", "Indo-European / Germanic")]["mean"] == 2.0
    assert by[("family", "Indo-European / Germanic")]["n"] == 2
    assert by[("script", "Latin")]["languages"] == ["de", "nl", "yo"]
    assert by[("script", "Cyrillic")]["mean"] == -2.0
    assert by[("resource", "unseen")]["mean"] == 5.0
    assert by[("resource", "high")]["n"] == 3
    for grouping in ("family", "script", "resource"):  # each language counted once per grouping
        assert sum(g["n"] for g in groups if g["grouping"] == grouping) == 4
    resource = [g["group"] for g in groups if g["grouping"] == "resource"]
    assert resource == ["unseen", "high"]  # the levels' order, not the alphabet's
    assert breakdown({}) == []


def test_summary_values_prefers_deltas_and_skips_when_absent() -> None:
    assert summary_values({"cells": []}) is None
    assert breakdown_table({"cells": [{"intermediate_task": "none", "metric": "accuracy"}]}) is None
    cells = [
        {
            "intermediate_task": "none",
            "target_task": "xnli",
            "metric": "accuracy",
            "per_language": {"de": 80.0, "sw": 60.0},
        },
        {
            "intermediate_task": "none",
            "target_task": "xnli",
            "metric": "accuracy",
            "per_language": {"de": 82.0, "sw": 62.0},
        },
        {
            "intermediate_task": "mnli",
            "target_task": "xnli",
            "metric": "accuracy",
            "per_language": {"de": 99.0},
        },
        {
            "intermediate_task": "none",
            "target_task": "xquad",
            "metric": "exact_match",
            "per_language": {"de": 0.0},
        },
    ]
    what, values = summary_values({"cells": cells}) or ("", {})
    assert "none" in what and values == {"de": 81.0, "sw": 61.0}
    deltas = [
        {"languages": ["de", "sw"], "delta": [1.0, None]},
        {"languages": ["de", "sw"], "delta": [3.0, -1.0]},
        {"language": "sw", "delta": 2.0},
        "junk",
    ]
    what, values = summary_values({"cells": cells, "per_language_deltas": deltas}) or ("", {})
    assert "delta" in what and values == {"de": 2.0, "sw": 0.5}
    table = breakdown_table({"cells": cells})
    assert table is not None
    caption, header, rows = table
    assert "low < 1 GiB" in caption and "high > 10 GiB" in caption
    assert header[:4] == ["grouping", "group", "n", "mean"]
    assert ["resource", "mid", "1", "61.00", "sw"] in rows
