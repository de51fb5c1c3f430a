"""The three-line plain-language answer, from ``summary.json`` alone (issue 15).

The rule (`verdict`): the headline is the (intermediate task, target task) contrast — the
pooled (intermediate task, `all`) ones included — with the smallest Holm-adjusted p-value
of its delta_disp slope (model-level meta-regression, see `evaluation.analysis.scaling`;
delta_disp is the non-English, noise-corrected dispersion effect). A trend is claimed only
when that adjusted p < 0.05, and worded from the estimates, sign and size both ("less even
at every size, less so for larger models"), naming the target tasks that carry it: a
pooled trend is said of all target tasks only when they agree (Cochran's Q p ≥ 0.05),
otherwise the targets that drive it are named. A primary contrast declared in the spec
is answered first, tested alone (`primary_verdict`). Otherwise a size that departs
from the trend (adjusted lack of fit) is reported as non-monotonic, and failing that the
answer says no size trend was detected, with the minimum detectable slope. Fewer than
three sizes, one seed everywhere, or no `none` baseline: inconclusive, and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MIN_SIZES = 3
ALL = "all"
LOSS = "nll"  # the loss-based family's metric (storage.schema.LOSS_METRIC), in nats
LOSS_SUBJECT = "the per-language loss (nll)"
LOSS_LEAD = "Loss-based view (nll; its own Holm family, not part of the answer): "

Summary = Mapping[str, Any]


def params_text(n: float) -> str:
    """1.2e9 → '1.2B'; 270e6 → '270M'."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


def _scope(summary: Summary) -> str:
    cells = summary["cells"]
    sizes = sorted({c["model_params"] for c in cells})
    tasks = {c["intermediate_task"] for c in cells} - {"none"}
    targets = {c["target_task"] for c in cells}
    seeds = max((c["n_seeds"] for c in cells), default=0)
    span = f" ({params_text(sizes[0])}–{params_text(sizes[-1])} parameters)" if sizes else ""
    return (
        f"Across {len(sizes)} model size(s){span}, {len(tasks)} intermediate task(s) compared "
        f"with `none`, {len(targets)} target task(s) and up to {seeds} seed(s) per cell:"
    )


ALPHA = 0.05


@dataclass(frozen=True)
class Verdict:
    """The answer's decision, from the scaling entries of ``summary.json`` alone."""

    kind: str  # "trend" | "non_monotonic" | "no_trend" | "inconclusive"
    text: str  # the answer's third line
    headline: Mapping[str, Any] | None  # the contrast line two describes
    direction: int = 0  # sign of the headline delta_disp slope when kind == "trend"


def _is_trend(fit: Mapping[str, Any]) -> bool:
    p = fit.get("p_adjusted")
    return p is not None and p < ALPHA


def _size_name(point: Mapping[str, Any]) -> str:
    return f"{point['model']} ({params_text(point['model_params'])})"


def trend_words(fit: Mapping[str, Any]) -> str:
    """Sign and size of a detected trend, from the fitted effect at each size and the slope.

    delta_disp > 0: STILTs made languages less even (more spread across languages).
    """
    fitted = [p["fitted"] for p in fit["per_model"]]
    slope = fit["slope_delta_disp"]
    if all(f > 0 for f in fitted) or all(f < 0 for f in fitted):
        harm = fitted[0] > 0
        level = "less even at every size" if harm else "more even at every size"
        grows = (slope > 0) == harm
        return f"{level}, {'increasingly with size' if grows else 'less so for larger models'}"
    if slope > 0:
        return "more even at the smaller sizes but less even at the larger ones"
    return "less even at the smaller sizes but more even at the larger ones"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def drivers(fit: Mapping[str, Any]) -> list[str]:
    """The targets that carry a pooled trend: its sign and an own (unadjusted) p < 0.05;
    failing that, the target with the largest slope of its sign."""
    h = fit.get("heterogeneity") or {}
    sign = fit["slope_delta_disp"] > 0
    per = [t for t in h.get("per_target", []) if (t["slope"] > 0) == sign]
    strong = [t for t in per if t["p_value"] is not None and t["p_value"] < ALPHA]
    if strong:
        return sorted(t["target_task"] for t in strong)
    if not per:
        return []
    return [max(per, key=lambda t: abs(t["slope"]))["target_task"]]


def _pooled_text(fit: Mapping[str, Any]) -> str:
    h = fit.get("heterogeneity") or {}
    names = ", ".join(sorted(t["target_task"] for t in h.get("per_target", [])))
    q_p = h.get("p_value")
    if q_p is None:
        return (
            f"pooled over {fit['n_target_tasks']} target tasks ({names}), whose agreement "
            "could not be tested (no per-target interval)"
        )
    het = f"Cochran's Q p = {q_p:.2g}, I² = {_pct(h.get('i2'))}"
    if q_p >= ALPHA:
        return f"on all {fit['n_target_tasks']} target tasks together ({names}; {het})"
    driven = drivers(fit)
    if len(driven) == fit["n_target_tasks"]:
        return (
            f"on each of {names}, with the same sign but sizes that differ between the "
            f"target tasks ({het})"
        )
    return (
        f"pooled over {names}, but the target tasks disagree ({het}): driven by "
        f"{', '.join(driven) or 'no single target task'}"
    )


def _targets_text(fit: Mapping[str, Any], fits: Sequence[Mapping[str, Any]]) -> str:
    if fit["target_task"] == ALL:
        return _pooled_text(fit)
    same = [
        f
        for f in fits
        if f["intermediate_task"] == fit["intermediate_task"] and f["target_task"] != ALL
    ]
    sign = fit["slope_delta_disp"] > 0
    agree = sorted(
        f["target_task"] for f in same if _is_trend(f) and (f["slope_delta_disp"] > 0) == sign
    )
    others = sorted(f["target_task"] for f in same if f["target_task"] not in agree)
    if not others:
        return f"on {'every target task' if len(agree) > 1 else 'its one target task'} " + (
            f"({', '.join(agree)})"
        )
    only = "only" if len(agree) == 1 else f"only ({len(agree)} of {len(same)})"
    return f"on {', '.join(agree)} {only}, not on {', '.join(others)}"


def _departs_text(fit: Mapping[str, Any]) -> str:
    names = [_size_name(p) for p in fit["per_model"] if p["model"] in fit["departs"]]
    verb = "departs" if len(names) == 1 else "depart"
    return (
        f"non-monotonic: {', '.join(names)} {verb} from the log-linear trend "
        f"(lack of fit, Holm-adjusted p = {fit['lack_of_fit_p_adjusted']:.2g})"
    )


def unit(fit: Mapping[str, Any]) -> str:
    """The unit of a fit's delta_disp: the pooled scale, nats for nll, else points."""
    if fit["target_task"] == ALL:
        return "% of the targets' baseline dispersion"
    return "nats" if fit["metric"] == LOSS else "points"


def fit_digits(fit: Mapping[str, Any]) -> int:
    return 4 if unit(fit) == "nats" else 2


def _mds_text(tested: Sequence[Mapping[str, Any]]) -> str:
    tested = [f for f in tested if f["target_task"] != ALL]
    mds = sorted(f["mds_delta_disp"] for f in tested if f.get("mds_delta_disp") is not None)
    if not mds:
        return ""
    d = fit_digits(tested[0])
    span = f"{mds[0]:.{d}f}" if len(mds) == 1 else f"{mds[0]:.{d}f} to {mds[-1]:.{d}f}"
    family = max(int(f.get("family_size") or 0) for f in tested) or len(tested)
    return (
        f" (minimum detectable slope {span} {unit(tested[0])} of delta_disp per decade of "
        f"parameters, 80 % power, Holm over {family} test(s))"
    )


def verdict(fits: Sequence[Mapping[str, Any]], subject: str = "languages") -> Verdict:
    """The rule: a trend when a Holm-adjusted slope p < 0.05, worded by sign and size;
    otherwise non-monotonic when a size departs (adjusted lack of fit), else no trend.
    A primary contrast (`primary: true`) is left to `primary_verdict`. `subject` is what
    became more or less even (the loss-based family: `LOSS_SUBJECT`)."""
    fits = [f for f in fits if not f.get("primary")]
    per_target = [f for f in fits if f["target_task"] != ALL]
    if not per_target:
        return Verdict(
            "inconclusive",
            f"Answer: inconclusive — a trend with size needs at least {MIN_SIZES} model sizes.",
            None,
        )
    n_sizes = max(f["n_model_sizes"] for f in per_target)
    tested = [f for f in fits if f.get("p_adjusted") is not None]
    if n_sizes < MIN_SIZES:
        text = (
            f"Answer: inconclusive — only {n_sizes} model size(s); a trend with size needs at "
            f"least {MIN_SIZES}."
        )
        return Verdict("inconclusive", text, per_target[0])
    if not tested:
        text = (
            "Answer: inconclusive — one seed per cell, so there is no seed variance to tell "
            "a trend from noise."
        )
        return Verdict("inconclusive", text, per_target[0])
    best = min(tested, key=lambda f: (f["p_adjusted"], f["p_value"], f["target_task"] == ALL))
    if _is_trend(best):
        text = _trend_text(best, tested, f"Holm-adjusted p = {best['p_adjusted']:.2g}", subject)
        rest = {f["intermediate_task"] for f in tested if _is_trend(f)} - {
            best["intermediate_task"]
        }
        if rest:
            text += f"; trends also for {', '.join(sorted(rest))}"
        if best["departs"]:
            text += f"; {_departs_text(best)}"
        return Verdict("trend", text + ".", best, 1 if best["slope_delta_disp"] > 0 else -1)
    bent = [f for f in tested if f["departs"]]
    if bent:
        worst = min(bent, key=lambda f: f["lack_of_fit_p_adjusted"])
        text = (
            f"Answer: no size trend detected; {_departs_text(worst)} for "
            f"{worst['intermediate_task']} on {worst['target_task']}."
        )
        return Verdict("non_monotonic", text, worst)
    return Verdict("no_trend", f"Answer: no size trend detected{_mds_text(tested)}.", best)


def _trend_text(
    fit: Mapping[str, Any], fits: Sequence[Mapping[str, Any]], p: str, subject: str = "languages"
) -> str:
    return (
        f"Answer: STILTs with {fit['intermediate_task']} made {subject} {trend_words(fit)} — "
        f"{_targets_text(fit, fits)} ({p})"
    )


def primary_verdict(fit: Mapping[str, Any], fits: Sequence[Mapping[str, Any]]) -> Verdict:
    """The spec's primary contrast, tested on its own at α = 0.05 (no adjustment)."""
    where = f"{fit['intermediate_task']} on {fit['target_task']}"
    head = f"Answer (primary contrast {where}, declared in the spec, tested alone):"
    p = fit.get("p_value")
    if p is None:
        text = f"{head} inconclusive — no interval (one seed per model or fewer than three sizes)."
        return Verdict("inconclusive", text, fit)
    if p < ALPHA:
        body = _trend_text(fit, fits, f"p = {p:.2g}, unadjusted").removeprefix("Answer: ")
        if fit["departs"]:
            body += f"; {_departs_text(fit)}"
        sign = 1 if fit["slope_delta_disp"] > 0 else -1
        return Verdict("trend", f"{head} {body}.", fit, sign)
    mds = fit.get("mds_delta_disp")
    tail = f"; minimum detectable slope {mds:.2f} {unit(fit)} per decade" if mds is not None else ""
    if fit["departs"]:
        tail += f"; {_departs_text(fit)}"
    return Verdict("no_trend", f"{head} no size trend detected (p = {p:.2g}{tail}).", fit)


def _finding(fit: Mapping[str, Any]) -> str:
    pooled = fit["target_task"] == ALL
    what = "pooled over target tasks" if pooled else fit["metric"]
    d = fit_digits(fit)
    head = (
        f"{fit['intermediate_task']} on {fit['target_task']} ({what}): delta_disp "
        f"(non-English dispersion effect) changes by {fit['slope_delta_disp']:+.{d}f} "
        f"{unit(fit)} per 10× parameters"
    )
    if fit.get("p_adjusted") is None:
        return head + " (no interval: one seed per model or fewer than three sizes)."
    lo, hi = fit["ci95_delta_disp"]
    per_model = "; ".join(
        f"{params_text(p['model_params'])} {p['estimate']:+.{d}f}"
        + (f" [{p['ci95'][0]:+.{d}f}, {p['ci95'][1]:+.{d}f}]" if p["ci95"] else "")
        for p in fit["per_model"]
    )
    adjusted = (
        "tested alone"
        if fit.get("primary")
        else f"Holm-adjusted over {fit['family_size']} test(s) p = {fit['p_adjusted']:.2g}"
    )
    return (
        f"{head} (95 % CI {lo:+.{d}f} to {hi:+.{d}f}, t with {fit['df']} df; p = "
        f"{fit['p_value']:.2g}, {adjusted}); per model size: {per_model}."
    )


def answer_lines(summary: Summary) -> list[str]:
    """Three lines: what was measured, the strongest pooled finding, and the verdict."""
    if not summary["cells"]:
        return [
            "The store holds no complete scores to analyse.",
            "No statistic could be computed; see the missing list.",
            "Answer: inconclusive — no data.",
        ]
    reason = summary.get("effects_unavailable")
    if reason:
        return [
            _scope(summary),
            f"No STILTs effect can be measured: {reason}.",
            "Answer: inconclusive — without effects against `none` there is nothing to scale.",
        ]
    fits = list(summary["scaling"])
    if not [f for f in fits if f["target_task"] != ALL]:
        return [
            _scope(summary),
            "No scaling slope: the STILTs effects span fewer than two model sizes.",
            f"Answer: inconclusive — a trend with size needs at least {MIN_SIZES} model sizes.",
        ]
    found = verdict(fits)
    primary = [f for f in fits if f.get("primary")]
    if not primary:
        return [_scope(summary), _finding(found.headline or fits[0]), found.text]
    first = primary_verdict(primary[0], fits)
    rest = found.text.removeprefix("Answer: ")
    return [
        _scope(summary),
        _finding(primary[0]),
        first.text,
        f"Exploratory, every other contrast (Holm): {rest}",
    ]


def loss_lines(summary: Summary) -> list[str]:
    """The loss-based view in two lines (its strongest finding, its verdict by the same
    rule), from ``summary["loss"]``; never part of `answer_lines`."""
    loss = summary.get("loss") or {}
    fits = list(loss.get("scaling", []))
    if not [f for f in fits if f["target_task"] != ALL]:
        return [
            LOSS_LEAD + "no slope (no nll rows in this store, or nll effects spanning fewer "
            "than two model sizes)."
        ]
    found = verdict(fits, LOSS_SUBJECT)
    return [_finding(found.headline or fits[0]), LOSS_LEAD + found.text.removeprefix("Answer: ")]
