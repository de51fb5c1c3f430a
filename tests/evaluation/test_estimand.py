"""Issue 15, items 1, 3 and 4: the noise-corrected non-English estimand, target tasks
pooled on a common scale with a heterogeneity test, and a spec's primary contrast."""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from evaluation.analysis import analyze
from evaluation.analysis.blocks import Block
from evaluation.analysis.stats import dispersions, noise_correction
from evaluation.analysis.synthetic import Planted, write_planted
from evaluation.report_answer import answer_lines, primary_verdict, verdict
from orchestrator.grid import expand, result_config
from orchestrator.reporting import primary_contrast
from orchestrator.spec import SpecError, validate

# --- the estimand ------------------------------------------------------------------------


def _block(scores: list[list[float]], metric: str = "accuracy", n: float = 400.0) -> Block:
    x = np.array(scores, dtype=np.float64)
    return Block("m", 10**9, "mnli", "xnli", metric, ("ar", "en", "fr", "de"), (0,), x,
                 np.full_like(x, n))  # fmt: skip


def test_dispersion_is_non_english_and_binomially_corrected() -> None:
    scores = [[60.0, 90.0, 70.0, 80.0]]
    got = dispersions(_block(scores))
    others = np.array([60.0, 70.0, 80.0])
    raw = float(others.std(ddof=1))
    noise = float(np.mean(1e4 * (others / 100) * (1 - others / 100) / 400))
    assert got["disp_raw"][0] == pytest.approx(raw)
    assert got["disp"][0] == pytest.approx(math.sqrt(raw**2 - noise))
    assert got["std"][0] == pytest.approx(float(np.std(scores[0], ddof=1)))
    every = np.array(scores[0])
    noise_all = float(np.mean(1e4 * (every / 100) * (1 - every / 100) / 400))
    assert got["std_corrected"][0] == pytest.approx(math.sqrt(every.var(ddof=1) - noise_all))


def test_f1_without_se_rows_is_not_corrected_and_says_so() -> None:
    block = _block([[60.0, 90.0, 70.0, 80.0]], metric="f1")
    got = dispersions(block)
    assert got["disp"][0] == pytest.approx(got["disp_raw"][0])
    assert noise_correction([block]).startswith("none")
    assert noise_correction([_block([[60.0, 90.0, 70.0, 80.0]])]).startswith("binomial")


def test_f1_with_se_rows_subtracts_the_mean_squared_se() -> None:
    """The bootstrap SE rows (score time) correct F1 like the binomial variance corrects
    accuracy: raw variance − mean over the same languages of SE², floored at 0."""
    se = np.array([[2.0, 1.0, 3.0, 1.5]])
    block = replace(_block([[60.0, 90.0, 70.0, 80.0]], metric="f1"), sampling_se=se)
    got = dispersions(block)
    others = np.array([60.0, 70.0, 80.0])
    noise = float(np.mean(np.array([2.0, 3.0, 1.5]) ** 2))
    assert got["disp"][0] == pytest.approx(math.sqrt(others.var(ddof=1) - noise))
    assert noise_correction([block]).startswith("bootstrap")
    lacking = replace(block, sampling_se=np.array([[2.0, np.nan, 3.0, 1.5]]))
    assert dispersions(lacking)["disp"][0] == pytest.approx(float(others.std(ddof=1)))


def test_sampling_noise_larger_than_the_spread_floors_at_zero() -> None:
    got = dispersions(_block([[50.0, 90.0, 50.5, 49.5]], n=10.0))
    assert got["disp"][0] == 0.0 and got["disp_raw"][0] > 0


# --- pooled wording ----------------------------------------------------------------------

SIZES = (270_000_000, 550_000_000, 3_500_000_000, 10_700_000_000)


def _fit(target: str, p: float, fitted=(-0.5, -1.0, -2.0, -3.0), **extra) -> dict:
    out = {
        "intermediate_task": "mnli", "target_task": target, "metric": "accuracy",
        "slope_delta_disp": (fitted[-1] - fitted[0]) / 1.6, "p_value": p / 3,
        "p_adjusted": p, "n_model_sizes": 4, "departs": [], "lack_of_fit_p_adjusted": None,
        "mds_delta_disp": 1.0, "family_size": 4, "n_target_tasks": 3, "primary": False,
        "per_model": [
            {"model": f"m{i}", "model_params": s, "fitted": f, "estimate": f,
             "ci95": None}
            for i, (s, f) in enumerate(zip(SIZES, fitted, strict=True))
        ],
    }  # fmt: skip
    return out | extra


def _het(q_p: float, slopes: dict[str, tuple[float, float]]) -> dict:
    per = [{"target_task": t, "slope": s, "se": 1.0, "p_value": p} for t, (s, p) in slopes.items()]
    return {"q": 5.0, "df": 2, "p_value": q_p, "i2": 0.6, "per_target": per}


def test_pooled_claim_for_all_targets_only_when_they_agree() -> None:
    agree = _het(0.6, {"xnli": (-2.0, 0.03), "udpos": (-1.5, 0.2), "tatoeba": (-2.5, 0.01)})
    fits = [_fit("all", 0.001, heterogeneity=agree), _fit("xnli", 0.2), _fit("udpos", 0.5)]
    found = verdict(fits)
    assert found.kind == "trend" and found.headline["target_task"] == "all"
    assert "on all 3 target tasks together (tatoeba, udpos, xnli; Cochran's Q p = 0.6" in (
        found.text
    )


def test_heterogeneous_pooled_trend_names_the_targets_that_drive_it() -> None:
    split = _het(0.001, {"xnli": (0.1, 0.9), "udpos": (-0.2, 0.7), "tatoeba": (-6.0, 0.001)})
    found = verdict([_fit("all", 0.002, heterogeneity=split), _fit("xnli", 0.9)])
    assert found.kind == "trend" and "all 3 target tasks" not in found.text
    assert "the target tasks disagree" in found.text and "driven by tatoeba" in found.text


# --- the primary contrast ----------------------------------------------------------------


def test_primary_is_tested_alone_and_answered_first() -> None:
    agree = _het(0.6, {"xnli": (-2.0, 0.03), "udpos": (-1.5, 0.2), "tatoeba": (-2.5, 0.01)})
    primary = _fit("all", 0.04, heterogeneity=agree, primary=True, p_value=0.04, family_size=1)
    others = [_fit("xnli", 0.6), _fit("udpos", 0.9)]
    found = primary_verdict(primary, [primary, *others])
    assert found.kind == "trend" and "p = 0.04, unadjusted" in found.text
    assert found.text.startswith("Answer (primary contrast mnli on all, declared in the spec")
    summary = {"cells": [{"model_params": s, "intermediate_task": t, "target_task": "xnli",
                          "n_seeds": 3} for s in SIZES for t in ("none", "mnli")],
               "scaling": [primary, *others]}  # fmt: skip
    ci = {"ci95_delta_disp": [-3.0, -0.1], "df": 2}
    summary["scaling"] = [primary | ci, *(f | ci for f in others)]
    lines = answer_lines(summary)
    assert len(lines) == 4 and lines[2].startswith("Answer (primary contrast")
    assert lines[3].startswith("Exploratory, every other contrast (Holm): no size trend")


def test_primary_through_the_store_leaves_the_holm_family(tmp_path: Path) -> None:
    plan = Planted(
        models={"xs": 10**8, "s": 3 * 10**8, "m": 10**9, "l": 10**10},
        intermediate_tasks=("none", "mnli", "anli"),
        target_tasks=("xnli", "udpos"),
        slope=-1.5,
        noise=0.8,
    )
    write_planted(tmp_path, plan)
    summary = analyze(None, tmp_path, plan.sweep, primary=("mnli", "all")).summary()
    (primary,) = [s for s in summary["scaling"] if s["primary"]]
    assert (primary["intermediate_task"], primary["target_task"]) == ("mnli", "all")
    assert (
        primary["p_adjusted"] == pytest.approx(primary["p_value"]) and primary["family_size"] == 1
    )
    assert summary["multiplicity"]["n_tests"] == 5  # 2 tasks × 2 targets + (anli, all)
    assert summary["primary"] == {"intermediate_task": "mnli", "target_task": "all",
                                  "tested": True, "alpha": 0.05}  # fmt: skip
    lines = answer_lines(summary)
    assert lines[2].startswith("Answer (primary contrast mnli on all") and len(lines) == 4


# --- the spec's analysis section -------------------------------------------------------------

GOOD = {
    "name": "demo",
    "storage": "/tmp/xstilts-demo",
    "models": ["tiny-s", "tiny-m"],
    "intermediate_tasks": ["none", "mnli"],
    "target_tasks": ["xnli", "udpos"],
    "seeds": [0, 1],
}


def _with_primary(**primary: str) -> dict:
    raw = copy.deepcopy(GOOD)
    raw["analysis"] = {"primary": primary}
    return raw


def test_spec_primary_is_validated_with_suggestions() -> None:
    spec = validate(_with_primary(intermediate_task="mnli", target_task="all"))
    assert primary_contrast(spec) == ("mnli", "all")
    assert primary_contrast(validate(copy.deepcopy(GOOD))) is None
    cases = {
        "mnlii": ("xnli", "unknown task 'mnlii' — did you mean 'mnli'?"),
        "mnli": ("xnlii", "unknown target task 'xnlii' — did you mean 'xnli'?"),
        "none": ("all", "`none` is the baseline"),
        "anli": ("all", "'anli' is not among the sweep's intermediate_tasks"),
    }
    for task, (target, message) in cases.items():
        with pytest.raises(SpecError) as info:
            validate(_with_primary(intermediate_task=task, target_task=target))
        assert any(message in p for p in info.value.problems), info.value.problems
    with pytest.raises(SpecError, match="'pawsx' is not among the sweep's target_tasks"):
        validate(_with_primary(intermediate_task="mnli", target_task="pawsx"))


def test_the_analysis_section_never_enters_a_trial_key() -> None:
    plain = validate(copy.deepcopy(GOOD))
    declared = validate(_with_primary(intermediate_task="mnli", target_task="xnli"))
    assert [c.trial_key for c in expand(plain)] == [c.trial_key for c in expand(declared)]
    assert result_config(plain) == result_config(declared)
