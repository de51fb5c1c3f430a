"""Analysis from the results store: hand-made tables with known answers, planted effects."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from evaluation.analysis import analyze
from evaluation.analysis import bootstrap as bs
from evaluation.analysis.synthetic import Planted, rows_table, write_fragment, write_planted
from evaluation.report import answer_lines
from storage.errors import UserError
from storage.results import ResultsStore

SWEEP = "hand"
LANGS = ("de", "en", "fr")  # three XNLI languages, in the registry's order


def put(results: Path, cell: tuple[str, str, int], params: int, scores, **kw) -> None:
    """One fragment: XNLI test accuracy of `cell` on LANGS (n_examples 0 unless given: the
    count is unknown, so the dispersion is not noise-corrected and stays exact)."""
    kw.setdefault("n_examples", 0)
    rows = [(lang, "test", "accuracy", float(v)) for lang, v in zip(LANGS, scores, strict=True)]
    write_fragment(results, rows_table(SWEEP, cell, params, "xnli", rows, **kw))


def cell(summary: dict, model: str, task: str, metric: str = "accuracy") -> dict:
    (found,) = [
        c
        for c in summary["cells"]
        if (c["model"], c["intermediate_task"], c["metric"]) == (model, task, metric)
    ]
    return found


def slope(summary: dict, task: str, target: str = "xnli") -> dict:
    (found,) = [
        s
        for s in summary["scaling"]
        if (s["intermediate_task"], s["target_task"]) == (task, target)
    ]
    return found


# --- hand-made tables -------------------------------------------------------------------


def test_statistics_over_languages_and_seeds(tmp_path: Path) -> None:
    # seed 0: de 70, en 80, fr 60; seed 1: de 70, en 90, fr 65.
    put(tmp_path, ("m", "none", 0), 10**8, [70, 80, 60])
    put(tmp_path, ("m", "none", 1), 10**8, [70, 90, 65])
    c = cell(analyze(None, tmp_path, SWEEP).summary(), "m", "none")
    std0, std1 = 10.0, math.sqrt(175.0)
    assert (c["n_seeds"], c["n_languages"]) == (2, 3)
    assert c["mean"] == pytest.approx((70 + 75) / 2)
    assert c["std"] == pytest.approx((std0 + std1) / 2)
    assert c["cv"] == pytest.approx((std0 / 70 + std1 / 75) / 2)
    assert (c["min"], c["max"]) == (pytest.approx(62.5), pytest.approx(85.0))
    assert c["transfer_gap"] == pytest.approx(((80 - 65) + (90 - 67.5)) / 2)
    assert c["worst_language"] == "fr"
    assert c["delta_mean"] is None and c["delta_std"] is None
    for stat in ("mean", "std", "cv", "min", "max", "transfer_gap"):
        lo, hi = c["ci95"][stat]
        assert lo <= c[stat] + 1e-9 and c[stat] - 1e-9 <= hi and lo < hi, stat


def _ladder(results: Path, seeds: tuple[int, ...]) -> None:
    """none: [60, 70, 80] (std 10); mnli: [70-d, 70, 70+d] with d = 10, 8, 6 over 1e8..1e10."""
    for i, (model, params) in enumerate((("s", 10**8), ("m", 10**9), ("l", 10**10))):
        d = 10 - 2 * i
        for seed in seeds:
            put(results, (model, "none", seed), params, [70, 80, 60])
            put(results, (model, "mnli", seed), params, [70, 70 + d, 70 - d])


def test_exactly_known_slope_and_paired_effects(tmp_path: Path) -> None:
    _ladder(tmp_path, seeds=(0, 1))
    summary = analyze(None, tmp_path, SWEEP).summary()
    assert summary["definitions_version"] == 5 and "Knapp-Hartung" in summary["method"]
    assert summary["multiplicity"]["correction"] == "holm"
    assert cell(summary, "l", "mnli")["delta_std"] == pytest.approx(-4.0)
    assert cell(summary, "l", "mnli")["delta_mean"] == pytest.approx(0.0)
    # no pooled fit over target tasks of different metrics (issue 15): one per target task
    assert {s["target_task"] for s in summary["scaling"]} == {"xnli"}
    # the primary disp is over de and fr only: none std([70, 60]) = 10 / √2, mnli
    # std([70, 70 - d]) = d / √2, so delta_disp = (d - 10) / √2
    r2 = math.sqrt(2)
    assert cell(summary, "l", "mnli")["delta_disp"] == pytest.approx(-2 * r2)
    fit = slope(summary, "mnli")
    assert fit["slope_delta_disp"] == pytest.approx(-r2, abs=1e-9)
    assert fit["slope_delta_mean"] == pytest.approx(0.0, abs=1e-9)
    assert [p["estimate"] for p in fit["per_model"]] == pytest.approx([0.0, -r2, -2 * r2])
    assert [p["model"] for p in fit["per_model"]] == ["s", "m", "l"]
    lo, hi = fit["ci95_delta_disp"]
    assert lo <= -r2 <= hi and not fit["ci_collapsed"] and fit["df"] == 1
    # identical seeds: no seed noise, an exact line: the slope is certain
    assert fit["p_value"] < 1e-3 and fit["p_adjusted"] == pytest.approx(fit["p_value"])
    assert fit["departs"] == [] and fit["family_size"] == 1


def test_model_is_the_unit_with_pooled_seed_variance(tmp_path: Path) -> None:
    """Per-model SE = sqrt(pooled seed variance / n_seeds); one seed still carries it."""
    deltas = {"s": [1.0, 3.0], "m": [0.0, 2.0, 4.0], "l": [5.0]}  # delta_std per seed
    params = {"s": 10**8, "m": 10**9, "l": 10**10}
    for model, ds in deltas.items():
        for seed, d in enumerate(ds):
            put(tmp_path, (model, "none", seed), params[model], [70, 80, 60])  # std 10
            put(tmp_path, (model, "mnli", seed), params[model], [70, 80 + d, 60 - d])
    fit = slope(analyze(None, tmp_path, SWEEP).summary(), "mnli")
    # exact disp deltas (non-English: de, fr): std of [70, 60 - d] minus std of [70, 60]
    exact = {m: [float(np.std([70, 60 - d], ddof=1) - np.std([70, 60], ddof=1)) for d in ds]
             for m, ds in deltas.items()}  # fmt: skip
    ss = sum(((np.array(v) - np.mean(v)) ** 2).sum() for v in exact.values())
    s2 = ss / (1 + 2 + 0)
    assert fit["seed_df"] == 3 and fit["seed_sd"] == pytest.approx(math.sqrt(s2))
    for p in fit["per_model"]:
        n = len(deltas[p["model"]])
        assert p["n_seeds"] == n and p["estimate"] == pytest.approx(np.mean(exact[p["model"]]))
        assert p["se"] == pytest.approx(math.sqrt(s2 / n))
        half = 3.182446305284263 * math.sqrt(s2 / n)  # t(0.975, 3 df)
        assert p["ci95"] == pytest.approx([p["estimate"] - half, p["estimate"] + half])
    assert fit["p_value"] is not None and fit["df"] == 1 and not fit["ci_collapsed"]


def test_one_seed_everywhere_gives_no_interval_and_says_so(tmp_path: Path) -> None:
    _ladder(tmp_path, seeds=(0,))
    summary = analyze(None, tmp_path, SWEEP).summary()
    c = cell(summary, "m", "mnli")
    for stat, (lo, hi) in c["ci95"].items():
        assert lo == pytest.approx(c[stat]) and hi == pytest.approx(c[stat]), stat
    fit = slope(summary, "mnli")
    assert fit["ci_collapsed"] and fit["ci95_delta_disp"] is None and fit["p_value"] is None
    assert fit["slope_delta_disp"] == pytest.approx(-math.sqrt(2))
    assert any("one seed" in note and "collapse" in note for note in summary["notes"])
    assert "inconclusive" in answer_lines(summary)[2] and "one seed" in answer_lines(summary)[2]


# --- planted effects --------------------------------------------------------------------

SIZES = {"xs": 10**8, "s": 10**8 * 3, "m": 10**9, "l": 10**10}


def test_planted_shrinking_delta_std_is_recovered(tmp_path: Path) -> None:
    plan = Planted(models=SIZES, target_tasks=("xnli", "udpos"), slope=-1.5, noise=0.8)
    write_planted(tmp_path, plan)
    summary = analyze(None, tmp_path, plan.sweep).summary()
    for target in ("xnli", "udpos"):
        fit = slope(summary, "mnli", target)
        lo, hi = fit["ci95_delta_disp"]
        assert lo <= -1.5 <= hi and hi < 0, target
        # two per-target slopes and the pooled (mnli, all) one
        assert fit["p_adjusted"] < 0.05 and fit["df"] == 2 and fit["family_size"] == 3
    # +0.5 at 100M, -2.5 at 10B: the sign changes within the range
    answer = answer_lines(summary)[2]
    assert "less even at the smaller sizes but more even at the larger ones" in answer
    # the per-target trends agree, so the pooled contrast may carry the answer
    together = "on all 2 target tasks together (udpos, xnli;"
    assert "on every target task (udpos, xnli)" in answer or together in answer


def test_planted_harm_that_shrinks_is_worded_as_such(tmp_path: Path) -> None:
    plan = Planted(models=SIZES, target_tasks=("xnli",), slope=-1.0, effect_at_1b=3.0, noise=0.5)
    write_planted(tmp_path, plan)
    answer = answer_lines(analyze(None, tmp_path, plan.sweep).summary())[2]
    assert "made languages less even at every size, less so for larger models" in answer


def test_no_effect_gives_an_interval_containing_zero(tmp_path: Path) -> None:
    plan = Planted(models=SIZES, slope=0.0, effect_at_1b=0.0, noise=1.0)
    write_planted(tmp_path, plan)
    summary = analyze(None, tmp_path, plan.sweep).summary()
    lo, hi = slope(summary, "mnli")["ci95_delta_disp"]
    assert lo < 0 < hi
    assert answer_lines(summary)[2].startswith("Answer: no size trend detected")
    assert "minimum detectable slope" in answer_lines(summary)[2]


def test_qa_reports_em_beside_f1_and_scales_on_f1(tmp_path: Path) -> None:
    plan = Planted(target_tasks=("xquad",), noise=0.5)
    write_planted(tmp_path, plan)
    summary = analyze(None, tmp_path, plan.sweep).summary()
    metrics = {c["metric"] for c in summary["cells"]}
    assert metrics == {"f1", "exact_match", "nll"}  # nll: the loss-based view, beside
    assert cell(summary, "tiny", "none", "exact_match")["mean"] == pytest.approx(
        cell(summary, "tiny", "none", "f1")["mean"] - 8.0
    )
    assert {(s["target_task"], s["metric"]) for s in summary["scaling"]} == {("xquad", "f1")}


# --- store reading, partial sweeps, bad input ------------------------------------------


def test_conflicting_values_are_reported_not_averaged(tmp_path: Path) -> None:
    _ladder(tmp_path, seeds=(0, 1))
    table = rows_table(SWEEP, ("m", "none", 0), 10**9, "xnli", [("en", "test", "accuracy", 99.0)])
    table = table.set_column(1, "trial_key", pa.array(["otherwriter00001"]))
    ResultsStore.at(str(tmp_path), SWEEP).write_rows(
        table, trial_key="otherwriter00001", target_task="xnli", attempt=0
    )
    summary = analyze(None, tmp_path, SWEEP).summary()
    (conflict,) = summary["conflicts"]
    assert (conflict["model"], conflict["language"]) == ("m", "en")
    assert conflict["values"] == [80.0, 99.0] and conflict["kept"] == 99.0
    assert cell(summary, "m", "none")["max"] == pytest.approx((99 + 80) / 2)


def test_latest_attempt_wins_and_a_changed_retry_is_reported(tmp_path: Path) -> None:
    _ladder(tmp_path, seeds=(0, 1))
    put(tmp_path, ("m", "none", 0), 10**9, [71, 81, 61], attempt=1)
    summary = analyze(None, tmp_path, SWEEP).summary()
    assert cell(summary, "m", "none")["mean"] == pytest.approx((71 + 70) / 2)
    # a retry that scores differently is reported (resources never change results, so a
    # cell's attempts must agree), and the latest attempt's value is the one kept
    assert sorted((c["language"], c["values"], c["kept"]) for c in summary["conflicts"]) == [
        ("de", [70.0, 71.0], 71.0), ("en", [80.0, 81.0], 81.0), ("fr", [60.0, 61.0], 61.0)
    ]  # fmt: skip


def test_partial_sweep_lists_what_is_missing(tmp_path: Path) -> None:
    _ladder(tmp_path, seeds=(0, 1))
    (tmp_path / next(p.name for p in tmp_path.glob("*.parquet") if _is(p, "l", "mnli", 1))).unlink()
    rows = [("de", "test", "accuracy", 70.0), ("en", "test", "accuracy", 80.0)]
    write_fragment(tmp_path, rows_table(SWEEP, ("m", "mnli", 2), 10**9, "xnli", rows))
    summary = analyze(None, tmp_path, SWEEP).summary()
    reasons = {
        (m.get("model"), m.get("intermediate_task"), m.get("seed")): m for m in summary["missing"]
    }
    assert reasons[("l", "mnli", 1)]["reason"] == "no scores"
    assert reasons[("m", "mnli", 2)]["languages"] == ["fr"]
    assert reasons[(None, None, None)]["reason"] == "never scored in this sweep"
    assert cell(summary, "l", "mnli")["n_seeds"] == 1 and cell(summary, "m", "mnli")["n_seeds"] == 2


def _is(path: Path, model: str, task: str, seed: int) -> bool:
    first = pq.read_table(path).slice(0, 1).to_pylist()[0]
    return (first["model"], first["intermediate_task"], first["seed"]) == (model, task, seed)


def test_no_none_baseline_makes_effects_unavailable_with_reason(tmp_path: Path) -> None:
    write_planted(tmp_path, Planted(intermediate_tasks=("mnli", "anli")))
    summary = analyze(None, tmp_path, "synthetic").summary()
    assert "no `none` baseline" in summary["effects_unavailable"]
    assert all(c["delta_std"] is None for c in summary["cells"]) and summary["scaling"] == []
    assert any("effect unavailable" in m["reason"] for m in summary["missing"])
    assert answer_lines(summary)[2].startswith("Answer: inconclusive")


def test_empty_store_is_a_one_line_user_error(tmp_path: Path) -> None:
    (tmp_path / ".fragment.parquet.tmp").write_bytes(b"partial")
    (tmp_path / "_staging").mkdir()
    with pytest.raises(UserError, match="holds no fragments") as err:
        analyze(None, tmp_path, SWEEP)
    assert "\n" not in str(err.value)
    put(tmp_path, ("m", "none", 0), 10**8, [1, 2, 3])
    with pytest.raises(UserError, match="no rows for sweep 'other'"):
        analyze(None, tmp_path, "other")


def test_reads_through_a_pyarrow_filesystem(tmp_path: Path) -> None:
    _ladder(tmp_path / "store" / SWEEP / "results", seeds=(0, 1))
    fs = pafs.SubTreeFileSystem(str(tmp_path / "store"), pafs.LocalFileSystem())
    summary = analyze(fs, f"{SWEEP}/results", SWEEP).summary()
    assert slope(summary, "mnli")["slope_delta_disp"] == pytest.approx(-math.sqrt(2))


# --- bootstrap primitives ---------------------------------------------------------------


def test_resampled_statistics_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    scores = rng.uniform(20, 90, size=(4, 9))
    counts = bs.draw_counts(rng, 9, size=300)
    assert (counts.sum(axis=1) == 9).all()
    got = bs.per_seed(scores, counts, english=2)
    for b in range(0, 300, 37):
        sample = np.repeat(scores, counts[b].astype(int), axis=1)
        rest = np.repeat(np.delete(scores, 2, axis=1), np.delete(counts[b], 2).astype(int), axis=1)
        assert got["mean"][b] == pytest.approx(sample.mean(axis=1))
        assert got["std"][b] == pytest.approx(sample.std(axis=1, ddof=1))
        assert got["min"][b] == pytest.approx(sample.min(axis=1))
        assert got["max"][b] == pytest.approx(sample.max(axis=1))
        if rest.shape[1]:
            assert got["transfer_gap"][b] == pytest.approx(scores[:, 2] - rest.mean(axis=1))


def test_pooled_slope_has_one_intercept_per_stratum() -> None:
    x = np.log10([1e8, 1e9, 1e10])
    ys = [5 + 3 * x, -40 + 3 * x]
    assert float(bs.pooled_slope([x, x], ys)) == pytest.approx(3.0)
