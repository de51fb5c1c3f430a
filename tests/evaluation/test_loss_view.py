"""Issue 15, item 6, report side: the loss-based view (per-language mean nll) beside the
metric-based one, with the same machinery, as a Holm family of its own outside the answer.

The planted stores write nll = NLL_PER_POINT × (100 − score) with nll_se = NLL_PER_POINT ×
the score's binomial SE, so every loss statistic is known from the score's: a dispersion,
its noise correction, a slope and its p-value scale by NLL_PER_POINT; the direction-bearing
statistics (worst language, transfer gap, delta_mean) turn round.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from evaluation.analysis import DEFINITIONS, analyze
from evaluation.analysis.blocks import Block
from evaluation.analysis.stats import dispersions, noise_correction
from evaluation.analysis.synthetic import (
    NLL_PER_POINT,
    Planted,
    rows_table,
    write_fragment,
    write_planted,
)
from evaluation.report import write_report
from evaluation.report_answer import LOSS_LEAD, answer_lines, loss_lines

SIZES = {"xs": 10**8, "s": 10**9, "m": 10**10, "l": 10**11}
PLAN = Planted(models=SIZES, target_tasks=("xnli", "udpos", "tatoeba"), slope=-1.5, noise=0.8)


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict:
    results = tmp_path_factory.mktemp("loss") / "results"
    write_planted(results, PLAN)
    return analyze(None, results, PLAN.sweep).summary()


def _by(fits: list[dict]) -> dict[tuple[str, str], dict]:
    return {(f["intermediate_task"], f["target_task"]): f for f in fits}


def test_the_loss_family_scales_the_metric_family_by_the_planted_factor(summary: dict) -> None:
    loss = summary["loss"]
    metric, nll = _by(summary["scaling"]), _by(loss["scaling"])
    # tatoeba (retrieval) has no head and no nll: the loss family has xnli, udpos and `all`
    assert set(nll) == {("mnli", "xnli"), ("mnli", "udpos"), ("mnli", "all")}
    for target in ("xnli", "udpos"):
        got, ref = nll[("mnli", target)], metric[("mnli", target)]
        assert (got["metric"], got["scale"]) == ("nll", "nats")
        assert got["slope_delta_disp"] == pytest.approx(NLL_PER_POINT * ref["slope_delta_disp"])
        assert got["p_value"] == pytest.approx(ref["p_value"], rel=1e-6)
        lo, hi = got["ci95_delta_disp"]
        assert lo <= NLL_PER_POINT * PLAN.slope <= hi < 0
        for p, q in zip(got["per_model"], ref["per_model"], strict=True):
            assert p["estimate"] == pytest.approx(NLL_PER_POINT * q["estimate"])
    # a family of its own: Holm over its 3 tests, the metric family's 4 untouched
    assert loss["multiplicity"]["n_tests"] == 3 and summary["multiplicity"]["n_tests"] == 4
    assert all(f["family_size"] == 3 for f in loss["scaling"])
    assert loss["noise_correction"] == {
        "udpos": noise_correction([_nll_block([[1.0, 2.0, 3.0]], [[0.1] * 3])]),
        "xnli": loss["noise_correction"]["udpos"],
    }
    assert loss["noise_correction"]["xnli"].startswith("bootstrap")


def test_lower_is_better_turns_worst_language_transfer_gap_and_delta_mean(summary: dict) -> None:
    cells = {(c["model"], c["intermediate_task"], c["target_task"], c["metric"]): c
             for c in summary["cells"]}  # fmt: skip
    for model in SIZES:
        for task in ("none", "mnli"):
            acc, nll = cells[(model, task, "xnli", "accuracy")], cells[(model, task, "xnli", "nll")]
            assert acc["higher_is_better"] and not nll["higher_is_better"]
            assert nll["worst_language"] == acc["worst_language"]  # highest nll, lowest score
            # the others − English: positive when English does better, as for the score
            assert nll["transfer_gap"] == pytest.approx(NLL_PER_POINT * acc["transfer_gap"])
            assert nll["mean"] == pytest.approx(NLL_PER_POINT * (100 - acc["mean"]))
            if task == "mnli":  # T lowered the loss where it raised the score
                assert acc["delta_mean"] > 0
                assert nll["delta_mean"] == pytest.approx(-NLL_PER_POINT * acc["delta_mean"])
            lo, hi = nll["ci95"]["transfer_gap"]
            assert lo <= nll["transfer_gap"] <= hi


def test_the_answer_reads_the_metric_family_only(summary: dict) -> None:
    lines = answer_lines(summary)
    assert len(lines) == 3 and not any("nll" in line for line in lines)
    finding, said = loss_lines(summary)
    assert said.startswith(LOSS_LEAD) and "made the per-language loss (nll)" in said
    assert "nats per 10× parameters" in finding or "% of the targets'" in finding
    assert any("Loss-based view" in d and "never part of the answer" in d for d in DEFINITIONS)


def _nll_block(scores: list[list[float]], se: list[list[float]]) -> Block:
    x = np.array(scores, dtype=np.float64)
    return Block("m", 10**9, "mnli", "udpos", "nll", ("en", "de", "fr"), (0,), x,
                 np.full_like(x, 100.0), np.array(se, dtype=np.float64))  # fmt: skip


def test_nll_dispersion_is_corrected_by_its_se_rows() -> None:
    # non-English nll 1.0 and 1.6: raw variance 0.18; mean SE² (0.2² + 0.4²) / 2 = 0.1
    got = dispersions(_nll_block([[0.5, 1.0, 1.6]], [[0.1, 0.2, 0.4]]))
    assert got["disp_raw"][0] == pytest.approx(math.sqrt(0.18))
    assert got["disp"][0] == pytest.approx(math.sqrt(0.08))
    floored = dispersions(_nll_block([[0.5, 1.0, 1.1]], [[0.1, 0.2, 0.4]]))
    assert floored["disp"][0] == 0.0  # 0.005 − 0.1 < 0: floored
    missing = _nll_block([[0.5, 1.0, 1.6]], [[0.1, float("nan"), 0.4]])
    assert dispersions(missing)["disp"][0] == pytest.approx(math.sqrt(0.18))
    assert noise_correction([missing]).startswith("none")


def test_a_store_without_nll_rows_has_no_loss_view(tmp_path: Path) -> None:
    for model, params in SIZES.items():
        for task in ("none", "mnli"):
            for seed in (0, 1):
                rows = [(lang, "test", "accuracy", 60.0 + i + seed + (task == "mnli"))
                        for i, lang in enumerate(("ar", "de", "en", "fr"))]  # fmt: skip
                write_fragment(
                    tmp_path, rows_table("old", (model, task, seed), params, "xnli", rows)
                )
    summary = analyze(None, tmp_path, "old").summary()
    assert summary["loss"]["scaling"] == [] and summary["loss"]["noise_correction"] == {}
    assert not any(m.get("metric") == "nll" for m in summary["missing"])
    assert any("no nll rows" in n for n in summary["notes"])
    assert loss_lines(summary) == [LOSS_LEAD + loss_lines(summary)[0].removeprefix(LOSS_LEAD)]
    assert "no slope" in loss_lines(summary)[0]


def test_the_report_shows_the_loss_view_beside_the_answer(tmp_path: Path) -> None:
    plan = Planted(models=SIZES, target_tasks=("xnli",), noise=0.5)
    write_planted(tmp_path / "results", plan)
    paths = write_report(None, tmp_path / "results", plan.sweep, tmp_path / "out")
    md = paths.markdown.read_text()
    answer, loss = md.index("## Answer"), md.index("## Loss-based robustness")
    assert answer < md.index("## Scaling of the STILTs effect") < loss
    section = md[loss : md.index("## Phang")]
    assert LOSS_LEAD.strip() in section and "nats" in section and "| mnli | xnli |" in section
    saved = json.loads(paths.summary.read_text())
    assert saved["definitions_version"] == 5
    assert set(saved["loss"]) == {
        "estimand", "noise_correction", "baseline_disp", "multiplicity", "scaling",
        "per_language_deltas",
    }  # fmt: skip
    deltas = saved["loss"]["per_language_deltas"]
    assert deltas and all(d["metric"] == "nll" for d in deltas)
