"""`xstilts plan --power` (issue 15, item 8): the minimum detectable slope it prints is what
the report's own test detects 80 % of the time, checked by planting that slope."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as st

from evaluation.analysis.scaling import ALPHA, STATS, Unit, fit_contrast, minimum_detectable_slope
from evaluation.analysis.synthetic import Planted, write_planted
from orchestrator.plan import (
    DEFAULT_MODEL_SD,
    DEFAULT_SEED_SD,
    Noise,
    family_size,
    formula_mds,
    pilot_noise,
    power_table,
    resolve_noise,
    slope_se,
)
from orchestrator.spec import load_spec
from storage.errors import UserError

XSTILTS = str(Path(sys.executable).with_name("xstilts"))
NOISE = Noise(DEFAULT_SEED_SD, DEFAULT_MODEL_SD, "defaults")


def detected(params: tuple[int, ...], n_seeds: int, slope: float, family: int, n: int) -> float:
    """Share of `n` fresh simulated stores with a true `slope` where the report's fit
    (scaling.fit_contrast) gives p < α / m — an independent check of the printed MDS."""
    rng = np.random.default_rng(20240615)
    x = np.log10(np.asarray(params, dtype=np.float64))
    hits = 0
    for _ in range(n):
        quirk = rng.standard_normal(len(params)) * NOISE.model_sd
        units = []
        for j, p in enumerate(params):
            d = slope * (x[j] - x.mean()) + quirk[j] + rng.standard_normal(n_seeds) * NOISE.seed_sd
            units.append(Unit(f"m{j}", p, {k: d for k in STATS}))
        fit = fit_contrast("T", "target", "metric", units).fits[STATS[0]]
        hits += fit.p_value is not None and fit.p_value < ALPHA / family
    return hits / n


@pytest.fixture(scope="module")
def scaling_rows():  # type: ignore[no-untyped-def]
    spec = load_spec("scaling")
    return spec, power_table(spec, NOISE)


def test_table_rows_and_monotone(scaling_rows) -> None:  # type: ignore[no-untyped-def]
    spec, rows = scaling_rows
    assert [r.change for r in rows] == ["as specified", "+1 seed", "+2 seeds"]  # no 5th size
    assert [r.n_seeds for r in rows] == [3, 4, 5]
    assert family_size(spec) == 10 * 10
    for f in (1, 100):
        sims = [r.simulated[f] for r in rows]
        assert all(s is not None and s > 0 for s in sims)
        assert sims[0] > sims[2]  # more seeds, smaller detectable slope
    assert rows[1].gpu_hours == pytest.approx(rows[0].gpu_hours * 4 / 3)


@pytest.mark.parametrize("family", [1, 100])
def test_printed_mds_is_detected_80_percent(scaling_rows, family: int) -> None:  # type: ignore[no-untyped-def]
    _, rows = scaling_rows
    row = rows[0]
    mds = row.simulated[family]
    assert mds is not None
    rate = detected(row.params, row.n_seeds, mds, family, 300)
    assert abs(rate - 0.8) <= 0.1, rate
    assert detected(row.params, row.n_seeds, mds / 3, family, 100) < 0.5


@pytest.mark.parametrize("family", [1, 100])
def test_formula_matches_simulation(scaling_rows, family: int) -> None:  # type: ignore[no-untyped-def]
    """scaling.minimum_detectable_slope (noncentral t) at the expected SE holds for one
    test and for m = 100 with k - 2 = 2 df, where the sum of t quantiles fell short."""
    _, rows = scaling_rows
    row = rows[0]
    formula = formula_mds(row.params, row.n_seeds, NOISE, family)
    simulated = row.simulated[family]
    assert formula == row.formula[family] and formula is not None and simulated is not None
    assert abs(formula / simulated - 1) <= 0.1, (formula, simulated)
    assert abs(detected(row.params, row.n_seeds, formula, family, 300) - 0.8) <= 0.1
    se = slope_se(row.params, row.n_seeds, NOISE)
    assert se is not None
    naive = (st.t.ppf(1 - ALPHA / (2 * family), 2) + st.t.ppf(0.8, 2)) * se
    if family == 100:  # the old formula: detected clearly less than 80 % of the time
        assert formula > 1.15 * naive
        assert detected(row.params, row.n_seeds, naive, family, 300) < 0.7


def test_mds_is_the_noncentral_t_power_point() -> None:
    """Golden values: power 0.8 of the two-sided t test from scipy.stats.nct's cdf, an
    independent evaluation (cdf, not sf) of the same distribution, and the normal limit."""
    for df, m in ((2, 1), (2, 100), (4, 10)):
        delta = minimum_detectable_slope(1.0, df, m)
        crit = st.t.ppf(1 - ALPHA / (2 * m), df)
        power = 1 - st.nct.cdf(crit, df, delta) + st.nct.cdf(-crit, df, delta)
        assert power == pytest.approx(0.8, abs=1e-6)
    z = st.norm.ppf(1 - ALPHA / 2) + st.norm.ppf(0.8)  # 2.80, the large-df limit
    assert minimum_detectable_slope(1.0, 10_000, 1) == pytest.approx(z, abs=2e-3)


def test_no_test_without_three_sizes_or_two_seeds() -> None:
    assert slope_se((10**8, 10**9), 3, NOISE) is None
    assert slope_se((10**8, 10**9, 10**10), 1, NOISE) is None
    se = slope_se((10**8, 10**9, 10**10), 2, NOISE)
    assert se == pytest.approx(math.sqrt((0.25 / 2 + 0.09) / 2.0))


def test_resolve_noise_order() -> None:
    assert resolve_noise(None, None).seed_sd == DEFAULT_SEED_SD
    noise = resolve_noise(1.5, None, (0.7, None, "pilot sweep 'p'"))
    assert (noise.seed_sd, noise.model_sd) == (1.5, DEFAULT_MODEL_SD)
    assert "stated" in noise.source and "cannot estimate" in noise.source
    assert resolve_noise(None, None, (0.7, 0.2, "pilot sweep 'p'")).model_sd == 0.2
    with pytest.raises(UserError):
        resolve_noise(-1.0, None)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([XSTILTS, *args], capture_output=True, text=True, env=env)


def test_pilot_store_gives_the_noise(tmp_path: Path) -> None:
    plan = Planted(sweep="pilot", models={"a": 10**8, "b": 10**9, "c": 10**10}, noise=1.0)
    write_planted(tmp_path / "pilot" / "results", plan)
    seed_sd, model_sd, where = pilot_noise(str(tmp_path), "pilot")
    assert seed_sd is not None and 0 < seed_sd < 5 and "pilot" in where
    assert model_sd is not None and model_sd >= 0
    out = _cli("plan", "quickstart", "--power", "--pilot-storage", str(tmp_path),
               "--pilot-name", "pilot")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "estimated from the pilot sweep 'pilot'" in out.stdout and "+1 seed" in out.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--power", "--pilot-name", "nosuch"),
        ("--seed-sd", "1"),
        ("--power", "--pilot-storage", "/tmp"),
        ("--power", "--model-sd", "-1"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: tuple[str, ...]) -> None:
    out = _cli("plan", "quickstart", *args)
    assert out.returncode == 2, out.stdout
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
