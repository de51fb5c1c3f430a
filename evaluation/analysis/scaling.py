"""Scaling: how the STILTs effect changes with log10(model parameters); the model is the unit.

For each (intermediate task T, target task), on the headline metric (issue 15, item 2):

- **per model**: the effect is the mean over seeds of the per-seed paired difference from
  `none` of the primary dispersion (delta_disp: non-English languages, noise-corrected,
  see `stats.dispersions`; delta_mean alike). Its standard error comes from the within-model
  seed variance *pooled over the contrast's models* (df = sum of n_seeds − 1), so a model
  scored with one seed still carries the noise its seeds would have; its 95 % interval is
  a t interval with the pooled degrees of freedom.
- **across models**: a weighted random-effects meta-regression of the per-model effects on
  log10(parameters): between-model variance tau² by DerSimonian–Laird (method of moments
  for meta-regression), weights 1 / (se² + tau²), Knapp–Hartung small-sample correction
  (the weighted residual variance, floored at 1, scales the covariance; t with k − 2
  degrees of freedom, k = number of models). statsmodels fits the weighted regression,
  scipy.stats gives the t and F distributions.
- **lack of fit**: Q_E (the fixed-effect weighted residual sum of squares) / (k − 2)
  against F(k − 2, pooled seed df); a size *departs* when the fitted trend lies outside
  its own t interval widened for the k sizes (Bonferroni, 1 − 0.05 / (2k)).
- **multiplicity**: the delta_std slope p-values of all contrasts form one family, Holm-
  adjusted (family-wise error); so are the lack-of-fit p-values. The minimum detectable
  slope is the slope the test would detect with 80 % power at Holm's first-step level
  (α / m): δ × its standard error, δ the noncentrality at which the noncentral t on the
  test's df (scipy.stats.nct) exceeds t_{df, 1 − α/(2m)} in absolute value 80 % of the time.

- **target tasks together** (item 3), per T, a contrast with target task `all`: each
  target's per-seed delta_disp is put on a common scale, *percent of that target's baseline
  dispersion* (100 × delta_disp / the mean `none` disp of the target over models and
  seeds), and averaged over the targets *within each (model, seed)* — one phase-2 run —
  before the per-model mean and pooled seed SE, so the unit of resampling is the phase-2
  run and targets sharing it are not counted as independent. Heterogeneity across targets:
  Cochran's Q of the per-target slopes on that scale (weights 1 / SE², chi² with J − 1 df,
  approximate: it ignores the correlation between targets) and I². The pooled contrasts
  join the Holm family.
- **primary contrast** (item 4): a contrast the spec declares is tested on its own at
  α = 0.05 (no adjustment) and left out of the Holm family of the others.

At least two sizes give a slope; inference needs three (k − 2 ≥ 1) and a seed variance
(some model with two seeds or more), otherwise the fit is `collapsed`: a point slope only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as st
from scipy.optimize import brentq
from statsmodels.regression.linear_model import WLS
from statsmodels.stats.multitest import multipletests

from evaluation.analysis.bootstrap import Array
from evaluation.analysis.stats import Effect

ALL = "all"
POOLED_SCALE = "percent of the target's baseline (`none`) dispersion"
ALPHA = 0.05
POWER = 0.8
METHOD = (
    "random-effects meta-regression of per-model effects on log10(parameters) "
    "(DerSimonian-Laird tau², Knapp-Hartung t with k-2 df; per-model SE from the pooled "
    "within-model seed variance)"
)
MULTIPLICITY = "holm"
STATS = ("disp", "mean")
KH_FLOOR = 1.0  # the modified Knapp–Hartung factor is never below this


@dataclass(frozen=True)
class Unit:
    """One model of a contrast: its per-seed paired effects (T − `none`)."""

    model: str
    params: int
    per_seed: dict[str, Array]  # "disp"/"mean" → (n_seeds,)


@dataclass(frozen=True)
class SizePoint:
    model: str
    params: int
    n_seeds: int
    estimate: float  # mean effect over seeds
    se: float | None  # from the pooled within-model seed variance
    ci95: tuple[float, float] | None  # t interval, pooled seed df
    fitted: float  # the fitted trend at this size
    departs: bool  # the trend is outside this size's (Bonferroni-widened) interval


@dataclass(frozen=True)
class Fit:
    """The meta-regression of one statistic's per-model effects."""

    slope: float
    intercept: float  # at x_center
    x_center: float
    se: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    df: int  # k − 2
    tau2: float | None
    seed_sd: float | None  # pooled within-model seed SD of the per-seed effect
    seed_df: int
    lack_of_fit_p: float | None
    sizes: tuple[SizePoint, ...]


@dataclass(frozen=True)
class TargetSlope:
    target_task: str
    slope: float  # on the pooled scale (% of baseline dispersion per decade)
    se: float | None
    p_value: float | None


@dataclass(frozen=True)
class Heterogeneity:
    """Cochran's Q across the target tasks' slopes, on the pooled scale."""

    q: float | None
    df: int
    p_value: float | None
    i2: float | None
    per_target: tuple[TargetSlope, ...]


@dataclass(frozen=True)
class Scaling:
    intermediate_task: str
    target_task: str
    metric: str
    model_params: tuple[int, ...]  # distinct sizes used
    fits: dict[str, Fit]  # "disp"/"mean"
    p_adjusted: float | None = None  # Holm over every contrast's delta_std slope
    lack_of_fit_p_adjusted: float | None = None  # Holm over every contrast
    family_size: int = 0
    mds: float | None = None  # minimum detectable delta_disp slope (80 % power, α / m)
    n_target_tasks: int = 1
    scale: str = "points"  # "points" ("nats" for nll), or POOLED_SCALE for the pooled (`all`)
    heterogeneity: Heterogeneity | None = None  # pooled contrasts only
    primary: bool = False  # declared in the spec: tested alone, outside the Holm family

    @property
    def slope(self) -> dict[str, float]:
        return {k: f.slope for k, f in self.fits.items()}

    @property
    def collapsed(self) -> bool:
        return self.fits["disp"].p_value is None

    @property
    def departs(self) -> tuple[str, ...]:
        """Sizes departing from the trend, when the lack-of-fit test (adjusted) agrees."""
        p = self.lack_of_fit_p_adjusted
        if p is None or p >= ALPHA:
            return ()
        return tuple(s.model for s in self.fits["disp"].sizes if s.departs)


def _pooled_variance(units: list[Unit], stat: str) -> tuple[float | None, int]:
    ss, df = 0.0, 0
    for u in units:
        d = u.per_seed[stat]
        ss += float(((d - d.mean()) ** 2).sum())
        df += d.size - 1
    return (ss / df if df else None), df


def _dl_tau2(X: Array, y: Array, v: Array) -> tuple[float, float]:
    """DerSimonian–Laird tau² for meta-regression, and Q_E (the fixed-effect residual SS)."""
    w = 1.0 / v
    fixed = WLS(y, X, weights=w).fit()
    q = float((w * fixed.resid**2).sum())
    xtwx_inv = fixed.normalized_cov_params
    c = float(w.sum() - np.trace(xtwx_inv @ (X.T * w**2) @ X))
    k, p = X.shape
    return (max(0.0, (q - (k - p)) / c) if c > 0 else 0.0), q


def _fit(units: list[Unit], stat: str) -> Fit:
    x = np.log10([float(u.params) for u in units])
    y = np.array([float(u.per_seed[stat].mean()) for u in units])
    n = np.array([u.per_seed[stat].size for u in units], dtype=np.float64)
    center = float(x.mean())
    X = np.column_stack([np.ones_like(x), x - center])
    k = len(units)
    s2, seed_df = _pooled_variance(units, stat)
    if s2 is None or k < 3:
        slope, intercept = _ols(x - center, y)
        fitted = intercept + slope * (x - center)
        se_m = None if s2 is None else np.sqrt(s2 / n)
        sizes = _sizes(units, y, se_m, fitted, seed_df)
        nothing = (None, None, None, k - 2, None)
        return Fit(slope, intercept, center, *nothing, _sqrt(s2), seed_df, None, sizes)
    # A seed variance of exactly 0 (identical seeds) would give infinite weights.
    floor = 1e-12 * max(1.0, float(np.mean(y**2)))
    v = np.maximum(s2, floor) / n
    tau2, q_e = _dl_tau2(X, y, v)
    result = WLS(y, X, weights=1.0 / (v + tau2)).fit()
    scale = max(KH_FLOOR, float(result.scale))  # Knapp–Hartung, floored at 1
    se = math.sqrt(scale * float(result.normalized_cov_params[1, 1]))
    intercept, slope = (float(b) for b in result.params)
    df = k - 2
    t_stat = slope / se if se > 0 else math.copysign(math.inf, slope) if slope else 0.0
    p = float(2 * st.t.sf(abs(t_stat), df))
    half = float(st.t.ppf(1 - ALPHA / 2, df)) * se
    lof = float(st.f.sf(q_e / df, df, seed_df))
    sizes = _sizes(units, y, np.sqrt(v), np.asarray(result.fittedvalues), seed_df)
    ci = (slope - half, slope + half)
    return Fit(slope, intercept, center, se, ci, p, df, tau2, math.sqrt(s2), seed_df, lof, sizes)


def _sqrt(value: float | None) -> float | None:
    return None if value is None else math.sqrt(value)


def _ols(x: Array, y: Array) -> tuple[float, float]:
    sxx = float((x**2).sum())
    slope = float(((y - y.mean()) * x).sum() / sxx) if sxx > 0 else 0.0
    return slope, float(y.mean())


def _sizes(
    units: list[Unit], y: Array, se: Array | None, fitted: Array, seed_df: int
) -> tuple[SizePoint, ...]:
    k = len(units)
    out = []
    if se is not None and seed_df > 0:  # the t quantiles, once per fit (scipy calls are slow)
        t_ci, t_wide = (float(q) for q in st.t.ppf([1 - ALPHA / 2, 1 - ALPHA / (2 * k)], seed_df))
    for i, u in enumerate(units):
        ci, departs, s = None, False, None
        if se is not None and seed_df > 0:
            s = float(se[i])
            half = t_ci * s
            ci = (float(y[i]) - half, float(y[i]) + half)
            departs = k >= 3 and abs(float(y[i]) - float(fitted[i])) > t_wide * s
        n = int(u.per_seed["disp"].size)
        out.append(SizePoint(u.model, u.params, n, float(y[i]), s, ci, float(fitted[i]), departs))
    return tuple(out)


def fit_contrast(
    task: str, target: str, metric: str, units: list[Unit], scale: str = "points"
) -> Scaling:
    """The model-level fits of one contrast; `units` one per model (at least two sizes)."""
    units = sorted(units, key=lambda u: (u.params, u.model))
    fits = {stat: _fit(units, stat) for stat in STATS}
    sizes = tuple(sorted({u.params for u in units}))
    return Scaling(task, target, metric, sizes, fits, scale=scale)


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels), in the order given."""
    if not p_values:
        return []
    return [float(p) for p in multipletests(p_values, alpha=ALPHA, method=MULTIPLICITY)[1]]


def _power(delta: float, crit: float, df: int) -> float:
    """Power of the two-sided t test at noncentrality `delta`: P(|T'| > crit), T' ~ nct."""
    lower = float(st.nct.sf(crit, df, -delta))  # P(T' < -crit); nct.cdf is nan far out
    return float(st.nct.sf(crit, df, delta)) + (lower if math.isfinite(lower) else 0.0)


def minimum_detectable_slope(se: float, df: int, family_size: int) -> float:
    """Slope detected with 80 % power at Holm's first-step level α / m (two-sided t test
    on `df` degrees of freedom): the noncentrality at which the noncentral t's power is
    80 %, times the slope's standard error. Exact for a t statistic; the sum of quantiles
    (t(1 − α/2m) + t(0.8)) × SE it replaces is optimistic with few df."""
    crit = float(st.t.ppf(1 - ALPHA / (2 * max(family_size, 1)), df))
    lo, hi = 0.0, crit + float(st.norm.ppf(POWER)) + 1.0
    while _power(hi, crit, df) < POWER:
        lo, hi = hi, 2 * hi
    delta = brentq(lambda d: _power(d, crit, df) - POWER, lo, hi, xtol=1e-10)
    return float(delta) * se


def adjust(fits: list[Scaling]) -> list[Scaling]:
    """Holm over the family of delta_disp slope tests (and of lack-of-fit tests); MDS.

    A primary contrast (declared in the spec) is tested alone: its p is its own and it is
    not counted in the family of the others.
    """
    out = list(fits)
    tested = [i for i, f in enumerate(fits) if f.fits["disp"].p_value is not None]
    for group in (
        [i for i in tested if fits[i].primary],
        [i for i in tested if not fits[i].primary],
    ):
        slopes = holm([fits[i].fits["disp"].p_value or 1.0 for i in group])
        tested_lof = [i for i in group if fits[i].fits["disp"].lack_of_fit_p is not None]
        lofs = holm([fits[i].fits["disp"].lack_of_fit_p or 1.0 for i in tested_lof])
        lof_of = dict(zip(tested_lof, lofs, strict=True))
        m = len(group)
        for i, p in zip(group, slopes, strict=True):
            fit = fits[i].fits["disp"]
            mds = minimum_detectable_slope(fit.se, fit.df, m) if fit.se is not None else None
            out[i] = replace(
                fits[i], p_adjusted=p, lack_of_fit_p_adjusted=lof_of.get(i), family_size=m, mds=mds
            )
    return out


def units_of(effects: list[Effect]) -> list[Unit]:
    return [
        Unit(e.block.model, e.block.model_params, {k: e.per_seed[k] for k in STATS})
        for e in effects
    ]


def _pooled_units(groups: dict[str, list[Effect]], baseline: dict[str, float]) -> list[Unit]:
    """Per model, per seed: the mean over targets of 100 × delta_disp / baseline (the
    targets' phase-2 run is one), on the seeds every target shares; models lacking a target
    are left out. delta_mean is averaged in points (descriptive: the metrics differ)."""
    by_model: dict[str, dict[str, Effect]] = {}
    for target, effects in groups.items():
        for e in effects:
            by_model.setdefault(e.block.model, {})[target] = e
    units = []
    for model, mine in by_model.items():
        if set(mine) != set(groups):
            continue
        seeds = sorted(set.intersection(*(set(e.seeds) for e in mine.values())))
        if not seeds:
            continue
        disp, mean = [], []
        for target, e in sorted(mine.items()):
            index = [e.seeds.index(s) for s in seeds]
            disp.append(100.0 * e.per_seed["disp"][index] / baseline[target])
            mean.append(e.per_seed["mean"][index])
        params = next(iter(mine.values())).block.model_params
        units.append(Unit(model, params, {"disp": np.mean(disp, 0), "mean": np.mean(mean, 0)}))
    return units


def heterogeneity(fits: list[Scaling], baseline: dict[str, float]) -> Heterogeneity:
    """Cochran's Q and I² of the per-target delta_disp slopes on the pooled scale."""
    per_target = []
    for f in fits:
        d, scale = f.fits["disp"], 100.0 / baseline[f.target_task]
        se = None if d.se is None else d.se * scale
        per_target.append(TargetSlope(f.target_task, d.slope * scale, se, d.p_value))
    df = len(per_target) - 1
    if df < 1 or any(t.se is None or t.se <= 0 for t in per_target):
        return Heterogeneity(None, df, None, None, tuple(per_target))
    w = np.array([1.0 / t.se**2 for t in per_target if t.se is not None])
    b = np.array([t.slope for t in per_target])
    q = float((w * (b - (w * b).sum() / w.sum()) ** 2).sum())
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    return Heterogeneity(q, df, float(st.chi2.sf(q, df)), i2, tuple(per_target))


def _pooled(
    by_pair: dict[tuple[str, str, str], list[Effect]],
    per_target: list[Scaling],
    baseline: dict[str, float],
) -> list[Scaling]:
    out = []
    for task in sorted({f.intermediate_task for f in per_target}):
        mine = [f for f in per_target if f.intermediate_task == task]
        mine = [f for f in mine if baseline.get(f.target_task, 0.0) > 0]
        if len(mine) < 2:
            continue
        groups = {f.target_task: by_pair[(task, f.target_task, f.metric)] for f in mine}
        units = _pooled_units(groups, baseline)
        if len({u.params for u in units}) < 2:
            continue
        fit = fit_contrast(task, ALL, "relative", units)
        out.append(
            replace(
                fit,
                n_target_tasks=len(mine),
                scale=POOLED_SCALE,
                heterogeneity=heterogeneity(mine, baseline),
            )
        )
    return out


def scaling(
    effects: list[Effect],
    baseline: dict[str, float] | None = None,
    primary: tuple[str, str] | None = None,
    unit: str = "points",
) -> list[Scaling]:
    """Per (intermediate task, target task) model-level fits from headline effects (or the
    nll effects of the loss family, `unit` nats), the pooled (`all`) contrasts where
    `baseline` (per target: the mean `none` disp) is given, the `primary` contrast
    (intermediate task, target task or `all`) marked; Holm-adjusted as one family."""
    by_pair: dict[tuple[str, str, str], list[Effect]] = {}
    for e in effects:
        b = e.block
        by_pair.setdefault((b.intermediate_task, b.target_task, b.metric), []).append(e)
    fits = [
        fit_contrast(task, target, metric, units_of(group), unit)
        for (task, target, metric), group in sorted(by_pair.items())
        if len({e.block.model_params for e in group}) >= 2
    ]
    fits += _pooled(by_pair, fits, baseline or {})
    if primary is not None:
        fits = [
            replace(f, primary=True) if (f.intermediate_task, f.target_task) == primary else f
            for f in fits
        ]
    return adjust(fits)
