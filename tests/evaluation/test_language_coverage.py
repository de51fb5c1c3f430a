"""The report says which languages each statistic covers; languages a spec leaves out on
purpose (`languages:` or its protocol) are neither missing nor in any statistic."""

from __future__ import annotations

from pathlib import Path

from evaluation.analysis import analyze
from evaluation.analysis.synthetic import rows_table, write_fragment
from evaluation.report import write_report
from evaluation.tasks import get_task

SWEEP = "cover"
SCORES = {"de": 70.0, "en": 80.0, "es": 75.0, "fr": 60.0}
XNLI = get_task("xnli").languages


def store(root: Path) -> Path:
    for seed in (0, 1):
        for task in ("none", "mnli"):
            rows = [(lang, "test", "accuracy", v + seed) for lang, v in SCORES.items()]
            write_fragment(root, rows_table(SWEEP, ("m", task, seed), 10**8, "xnli", rows))
    return root


def never_scored(summary: dict) -> list[str]:
    return [
        lang
        for m in summary["missing"]
        if m.get("reason") == "never scored in this sweep"
        for lang in m["languages"]
    ]


def test_languages_left_out_by_the_spec_are_not_missing(tmp_path: Path) -> None:
    results = store(tmp_path / "results")
    assert set(never_scored(analyze(None, results, SWEEP).summary())) == set(XNLI) - set(SCORES)
    summary = analyze(None, results, SWEEP, languages={"xnli": tuple(SCORES)}).summary()
    assert never_scored(summary) == []
    coverage = summary["language_coverage"]["xnli"]
    assert coverage["covered"] == ["de", "en", "es", "fr"]
    assert coverage["left_out"] == [x for x in XNLI if x not in SCORES]


def test_statistics_cover_the_selection_only(tmp_path: Path) -> None:
    results = store(tmp_path / "results")
    summary = analyze(None, results, SWEEP, languages={"xnli": ("de", "en", "fr")}).summary()
    assert {c["n_languages"] for c in summary["cells"]} == {3}
    assert summary["language_coverage"]["xnli"]["covered"] == ["de", "en", "fr"]
    # A selected language the store lacks is missing, as before.
    summary = analyze(None, results, SWEEP, languages={"xnli": ("de", "en", "fr", "sw")}).summary()
    assert never_scored(summary) == ["sw"]


def test_the_report_states_each_target_tasks_languages(tmp_path: Path) -> None:
    results = store(tmp_path / "results")
    paths = write_report(None, results, SWEEP, tmp_path / "out", languages={"xnli": SCORES})
    text = paths.markdown.read_text()
    assert "Languages each statistic covers" in text
    line = "xnli: 4 language(s): de en es fr; left out by the spec (not scored, not missing)"
    assert line in text
    assert "never scored" not in text
