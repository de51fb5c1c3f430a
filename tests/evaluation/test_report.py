"""The report folder: summary.json's shape, PNGs checked as images, HTML in a real browser."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from evaluation.analysis.synthetic import Planted, write_planted
from evaluation.plots import PANEL_HEIGHT_PX, WIDTH_PX, heatmap_height_px, panel_grid
from evaluation.report import ReportPaths, answer_lines, write_report
from evaluation.tasks import get_task
from storage.errors import UserError

PLAN = Planted(
    models={"xs": 10**8, "m": 10**9, "l": 10**10},
    intermediate_tasks=("none", "mnli", "multitask"),
    target_tasks=("xnli", "xquad", "tatoeba"),
    seeds=(0, 1),
    noise=0.5,
)
CELL_KEYS = {
    "model", "model_params", "intermediate_task", "target_task", "metric", "n_seeds",
    "n_languages", "higher_is_better", "mean", "std", "cv", "min", "max", "worst_language",
    "transfer_gap",
    "delta_mean", "delta_std", "ci95", "disp", "disp_raw", "std_corrected", "delta_disp",
    "delta_disp_raw", "delta_std_corrected",
}  # fmt: skip
SCALING_KEYS = {
    "intermediate_task", "target_task", "slope_delta_disp", "slope_delta_mean",
    "ci95_delta_disp", "p_value", "p_adjusted", "df", "tau2", "per_model", "departs",
    "lack_of_fit_p_adjusted", "mds_delta_disp", "family_size",
}  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> ReportPaths:
    root = tmp_path_factory.mktemp("report")
    write_planted(root / "results", PLAN)
    return write_report(None, root / "results", PLAN.sweep, root / "out")


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header (IHDR is always the first chunk)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def test_summary_json_has_the_issue_shape(report: ReportPaths) -> None:
    summary = json.loads(report.summary.read_text())
    assert summary["sweep"] == PLAN.sweep and isinstance(summary["definitions_version"], int)
    assert isinstance(summary["missing"], list) and summary["synthetic"] is True
    # models × tasks × (3 headline + xquad EM + the nll of xnli and xquad; tatoeba has no head)
    assert len(summary["cells"]) == 3 * 3 * 6
    for c in summary["cells"]:
        assert set(c) == CELL_KEYS
        assert isinstance(c["model_params"], int) and isinstance(c["worst_language"], str)
        assert all(len(v) == 2 and v[0] <= v[1] for v in c["ci95"].values())
        assert (c["delta_std"] is None) == (c["intermediate_task"] == "none")
        assert (c["transfer_gap"] is None) == (c["target_task"] == "tatoeba")
    targets = {(s["intermediate_task"], s["target_task"]) for s in summary["scaling"]}
    pooled = {(t, "all") for t in ("mnli", "multitask")}
    per_target = {(t, x) for t in ("mnli", "multitask") for x in PLAN.target_tasks}
    assert targets == per_target | pooled
    assert summary["definitions_version"] == 5 and summary["method"]
    assert summary["multiplicity"]["correction"] == "holm"
    assert summary["multiplicity"]["n_tests"] == 8 and summary["multiplicity"]["alpha"] == 0.05
    assert summary["noise_correction"]["xnli"].startswith("binomial")
    assert summary["noise_correction"]["xquad"].startswith("bootstrap")  # its f1_se rows
    assert summary["estimand"]["primary"].startswith("delta_disp") and summary["primary"] is None
    for s in summary["scaling"]:
        h = s["heterogeneity"]
        assert (h is not None) == (s["target_task"] == "all")
        if h is not None:
            assert h["df"] == 2 and 0 <= h["i2"] <= 1 and 0 < h["p_value"] <= 1
            assert s["scale"].startswith("percent")
    deltas = summary["per_language_deltas"]
    assert len(deltas) == 3 * 2 * 3  # models × intermediate tasks × target tasks
    for d in deltas:
        assert len(d["delta"]) == len(d["languages"]) == len(d["ci95"])
        assert all(lo <= v <= hi for v, (lo, hi) in zip(d["delta"], d["ci95"], strict=True))
    for s in summary["scaling"]:
        assert set(s) >= SCALING_KEYS and 0 < s["p_value"] <= s["p_adjusted"] <= 1
        assert [p["model"] for p in s["per_model"]] == ["xs", "m", "l"]
        assert all(p["ci95"][0] <= p["estimate"] <= p["ci95"][1] for p in s["per_model"])


def test_pngs_are_real_images_of_the_expected_size(report: ReportPaths) -> None:
    names = {p.name for p in report.plots}
    assert names == {
        "score_vs_size.png", "std_vs_size.png", "delta_std_scaling.png",
        "gains_xs.png", "gains_m.png", "gains_l.png",
    }  # fmt: skip
    rows, _ = panel_grid(len(PLAN.target_tasks))
    for path in report.plots:
        expected_height = rows * PANEL_HEIGHT_PX
        if path.name.startswith("gains_"):
            expected_height = heatmap_height_px(2)  # mnli and multitask
        assert png_size(path) == (WIDTH_PX, expected_height), path.name
        pixels = mpimg.imread(path)
        assert pixels.shape[:2] == (expected_height, WIDTH_PX)
        assert pixels[..., :3].std() > 0.05, f"{path.name} is blank"


def test_markdown_and_html_carry_answer_banner_and_plots(report: ReportPaths) -> None:
    md, page = report.markdown.read_text(), report.html.read_text()
    assert md.splitlines()[2].startswith("> **Synthetic data")
    assert page.index("Synthetic data") < page.index("Answer")
    for line in report.answer:
        assert line in md
    assert page.count('src="data:image/png;base64,') == len(report.plots)
    assert "<table>" in page and 'src="http' not in page and "<script" not in page
    assert "Phang et al.-style table" in md
    assert "Holm correction" in md and "Knapp–Hartung" in md and "Per model size" in md


def test_real_data_reports_carry_no_synthetic_banner(tmp_path: Path) -> None:
    write_planted(tmp_path / "results", Planted(target_tasks=("xnli",), data_source="local"))
    paths = write_report(None, tmp_path / "results", "synthetic", tmp_path / "out")
    assert "Synthetic data" not in paths.markdown.read_text()
    assert "Synthetic data" not in paths.html.read_text()
    summary = json.loads(paths.summary.read_text())
    assert summary["synthetic"] is False and list(summary["data_sources"]["xnli"]) == ["local"]


def test_a_mixed_store_says_which_target_task_is_synthetic(tmp_path: Path) -> None:
    """Provenance is per row: a sweep with fixture and own data names each task's source."""
    write_planted(tmp_path / "results", Planted(target_tasks=("xnli",), data_source="local"))
    write_planted(tmp_path / "results", Planted(target_tasks=("udpos",)))
    paths = write_report(None, tmp_path / "results", "synthetic", tmp_path / "out")
    summary = json.loads(paths.summary.read_text())
    assert summary["synthetic"] is True
    sources = summary["data_sources"]
    assert {t: list(by) for t, by in sources.items()} == {"udpos": ["fixtures"], "xnli": ["local"]}
    # models x tasks x seeds x languages x (accuracy, nll, nll_se)
    rows = 3 * 2 * 3 * len(get_task("xnli").languages) * 3
    assert sources["xnli"]["local"] == rows
    md = paths.markdown.read_text()
    assert "Synthetic data in part" in md and "; xnli: local (" in md
    assert "udpos: fixtures (" in md and "Synthetic data: these" not in md


def test_empty_store_fails_with_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no fragments"):
        write_report(None, tmp_path, "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _fit(sizes: int, p_adjusted: float | None, **kw) -> dict:
    fit = {
        "intermediate_task": "mnli", "target_task": "xnli", "metric": "accuracy",
        "slope_delta_disp": -1.2, "ci95_delta_disp": [-2.0, -0.5], "p_value": 0.01,
        "p_adjusted": p_adjusted, "df": sizes - 2, "family_size": 1, "n_model_sizes": sizes,
        "n_target_tasks": 1, "ci_collapsed": p_adjusted is None, "departs": [],
        "lack_of_fit_p_adjusted": None, "mds_delta_disp": 2.5,
        "per_model": [
            {"model": f"m{i}", "model_params": 10 ** (8 + i), "estimate": 2.0 - 1.2 * i,
             "fitted": 2.0 - 1.2 * i, "ci95": [1.0 - 1.2 * i, 3.0 - 1.2 * i], "departs": False}
            for i in range(sizes)
        ],
    }  # fmt: skip
    return fit | kw


def _summary(sizes: int, p_adjusted: float | None) -> dict:
    cells = [
        {"model_params": 10 ** (8 + i), "intermediate_task": t, "target_task": "xnli", "n_seeds": 3}
        for i in range(sizes)
        for t in ("none", "mnli")
    ]
    return {"cells": cells, "scaling": [_fit(sizes, p_adjusted)], "effects_unavailable": None}


def test_answer_claims_only_what_the_model_level_test_supports() -> None:
    clear = answer_lines(_summary(3, 0.01))
    assert len(clear) == 3 and clear[0].startswith("Across 3 model size(s)")
    assert "-1.20 points per 10× parameters (95 % CI -2.00 to -0.50, t with 1 df" in clear[1]
    assert "Holm-adjusted over 1 test(s) p = 0.01" in clear[1] and "100M +2.00 [+1.00" in clear[1]
    assert clear[2].startswith("Answer: STILTs with mnli made languages")
    two_sizes = answer_lines(_summary(2, 0.01))[2]
    assert "inconclusive" in two_sizes and "only 2 model size(s)" in two_sizes
    assert answer_lines(_summary(4, 0.2))[2].startswith("Answer: no size trend detected")
    assert "inconclusive" in answer_lines(_summary(3, None))[2]


@pytest.mark.integration
def test_html_renders_in_headless_chromium(report: ReportPaths, tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    shot = tmp_path / "shot.png"
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
        "--window-size=1200,900", report.html.resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    assert png_size(shot) == (1200, 900)
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.std() > 0.02, "the screenshot is blank"
    # The synthetic banner is drawn in its amber colour near the top of the page.
    top = pixels[:300].reshape(-1, 3)
    amber = (top[:, 0] > 0.95) & (top[:, 1] > 0.9) & (top[:, 2] < 0.85)
    assert np.count_nonzero(amber) > 1000
