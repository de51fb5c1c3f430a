"""The JSON-ready summary (``summary.json``, shape in issue 8). Non-finite numbers → null."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from evaluation.analysis import bootstrap as bs
from evaluation.analysis.blocks import Block
from evaluation.analysis.scaling import (
    ALPHA,
    METHOD,
    MULTIPLICITY,
    Heterogeneity,
    Scaling,
    SizePoint,
)
from evaluation.analysis.stats import BASELINE, DISPERSIONS, CellStats, Effect, higher_is_better
from evaluation.tasks import get_task
from storage.schema import LOSS_METRIC

if TYPE_CHECKING:
    from evaluation.analysis import Analysis


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _pair(ci: tuple[float, float]) -> list[float | None]:
    return [_num(ci[0]), _num(ci[1])]


def cell_order(cell: CellStats) -> tuple:
    b = cell.block
    headline = b.metric != get_task(b.target_task).headline
    return (
        b.target_task,
        headline,
        b.metric,
        b.model_params,
        b.model,
        b.intermediate_task != BASELINE,
        b.intermediate_task,
    )


def _cell(cell: CellStats, found: Effect | None) -> dict[str, object]:
    b = cell.block
    out: dict[str, object] = {
        "model": b.model,
        "model_params": b.model_params,
        "intermediate_task": b.intermediate_task,
        "target_task": b.target_task,
        "metric": b.metric,
        "higher_is_better": higher_is_better(b.metric),
        "n_seeds": len(b.seeds),
        "n_languages": len(b.languages),
    }
    out |= {k: _num(cell.values[k]) for k in ("mean", "std", "cv", "min", "max")}
    out["worst_language"] = cell.worst_language
    out["transfer_gap"] = _num(cell.values["transfer_gap"])
    out["delta_mean"] = _num(found.delta_mean) if found else None
    out["delta_std"] = _num(found.delta_std) if found else None
    for k in DISPERSIONS:
        if k != "std":
            out[k] = _num(cell.dispersion[k])
            out[f"delta_{k}"] = _num(float(found.per_seed[k].mean())) if found else None
    ci = {k: _pair(cell.ci95[k]) for k in bs.STATS if cell.values.get(k) is not None}
    if found:
        points = {"mean": found.delta_mean, "std": found.delta_std}
        ci |= {f"delta_{k}": _pair(bs.interval(found.replicates[k], v)) for k, v in points.items()}
    out["ci95"] = ci
    return out


def _size(point: SizePoint) -> dict[str, object]:
    return {
        "model": point.model,
        "model_params": point.params,
        "n_seeds": point.n_seeds,
        "estimate": _num(point.estimate),
        "se": _num(point.se),
        "ci95": _pair(point.ci95) if point.ci95 else None,
        "fitted": _num(point.fitted),
        "departs": point.departs,
    }


def _heterogeneity(h: Heterogeneity | None) -> dict[str, object] | None:
    if h is None:
        return None
    return {
        "statistic": "Cochran's Q of the per-target delta_disp slopes (chi², J - 1 df), I²",
        "q": _num(h.q),
        "df": h.df,
        "p_value": _num(h.p_value),
        "i2": _num(h.i2),
        "per_target": [
            {
                "target_task": t.target_task,
                "slope": _num(t.slope),
                "se": _num(t.se),
                "p_value": _num(t.p_value),
            }
            for t in h.per_target
        ],
    }


def scaling_dict(fit: Scaling) -> dict[str, object]:
    """One contrast's model-level fit, as summary.json carries it (the answer reads this)."""
    std, mean = fit.fits["disp"], fit.fits["mean"]
    return {
        "intermediate_task": fit.intermediate_task,
        "target_task": fit.target_task,
        "metric": fit.metric,
        "scale": fit.scale,
        "primary": fit.primary,
        "slope_delta_disp": _num(std.slope),
        "se_delta_disp": _num(std.se),
        "ci95_delta_disp": _pair(std.ci95) if std.ci95 else None,
        "p_value": _num(std.p_value),
        "p_adjusted": _num(fit.p_adjusted),
        "df": std.df,
        "tau2": _num(std.tau2),
        "seed_sd": _num(std.seed_sd),
        "seed_df": std.seed_df,
        "lack_of_fit_p": _num(std.lack_of_fit_p),
        "lack_of_fit_p_adjusted": _num(fit.lack_of_fit_p_adjusted),
        "departs": list(fit.departs),
        "mds_delta_disp": _num(fit.mds),
        "family_size": fit.family_size,
        "intercept_delta_disp": _num(std.intercept),
        "log10_params_center": _num(std.x_center),
        "per_model": [_size(p) for p in std.sizes],
        "slope_delta_mean": _num(mean.slope),
        "ci95_delta_mean": _pair(mean.ci95) if mean.ci95 else None,
        "p_value_delta_mean": _num(mean.p_value),
        "per_model_delta_mean": [_size(p) for p in mean.sizes],
        "n_model_sizes": len(fit.model_params),
        "model_params": list(fit.model_params),
        "n_target_tasks": fit.n_target_tasks,
        "heterogeneity": _heterogeneity(fit.heterogeneity),
        "ci_collapsed": fit.collapsed,
    }


def _notes(analysis: Analysis) -> list[str]:
    notes = list(analysis.notes)
    single = sorted({c.block.model for c in analysis.cells if len(c.block.seeds) == 1})
    if single:
        notes.append(
            "one seed only for " + ", ".join(single) + ": its bootstrap intervals collapse to "
            "the point estimate (no seed variation to resample); in the scaling fits its "
            "effect carries the seed variance pooled from the other models"
        )
    if analysis.conflicts:
        notes.append(f"{len(analysis.conflicts)} conflicting value(s) in the store; see conflicts")
    return notes


def _key(b: Block) -> tuple[str, str, str, str]:
    return (b.model, b.intermediate_task, b.target_task, b.metric)


def _language_deltas(analysis: Analysis, loss: bool = False) -> list[dict[str, object]]:
    """Per effect on the headline metric (`loss`: on nll): T − none per language, mean over
    seeds, t CI."""
    out = []
    for e in analysis.effects:
        b = e.block
        wanted = LOSS_METRIC if loss else get_task(b.target_task).headline
        if b.metric != wanted:
            continue
        ci = e.gains_ci95
        out.append(
            {
                "model": b.model,
                "intermediate_task": b.intermediate_task,
                "target_task": b.target_task,
                "metric": b.metric,
                "n_seeds": len(e.seeds),
                "languages": list(b.languages),
                "delta": [_num(float(v)) for v in e.gains],
                "ci95": None if ci is None else [_pair((lo, hi)) for lo, hi in ci.tolist()],
            }
        )
    return out


def _coverage(analysis: Analysis) -> dict[str, dict[str, list[str]]]:
    """Per target task: the languages its statistics cover (scored and evaluated by the
    spec), and those the spec leaves out on purpose (its selection or protocol)."""
    return {
        t: {"covered": list(langs), "left_out": list(analysis.left_out.get(t, ()))}
        for t, langs in analysis.languages.items()
    }


def _primary(analysis: Analysis) -> dict[str, object] | None:
    if analysis.primary is None:
        return None
    task, target = analysis.primary
    found = any(s.primary for s in analysis.scaling)
    return {"intermediate_task": task, "target_task": target, "tested": found, "alpha": ALPHA}


ESTIMAND = {
    "primary": "delta_disp: std over the task's non-English languages, noise-corrected, "
    "T minus none paired by seed",
    "secondary": [
        "delta_disp_raw (non-English, raw)",
        "delta_std_corrected (all languages, noise-corrected)",
        "delta_std (all languages, raw)",
    ],
    "noise_correction": "corrected variance = raw variance - mean per-language sampling "
    "variance (binomial 100^2 p(1-p)/n_examples for accuracy; for F1 and map@20 the squared "
    "<metric>_se row, a bootstrap over the language's examples at score time), floored at 0; "
    "uncorrected where a row lacks its SE",
}


LOSS_ESTIMAND = {
    "metric": LOSS_METRIC,
    "unit": "nats",
    "higher_is_better": False,
    "primary": "delta_disp of nll: std over the task's non-English languages of the "
    "per-language mean nll of the gold under the fine-tuned head, noise-corrected, T minus "
    "none paired by seed",
    "noise_correction": "corrected variance = raw variance - mean over the languages of the "
    "squared nll_se row (bootstrap over the language's examples at score time), floored at 0; "
    "uncorrected where a row lacks its SE",
    "family": "a Holm family of its own (the nll delta_disp slope tests of every "
    "(intermediate task, target task), the pooled ones included); outside the answer",
}


def _loss(analysis: Analysis) -> dict[str, object] | None:
    """The loss-based statistics: the nll family's fits, baselines, corrections, deltas."""
    loss = analysis.loss
    if loss is None:
        return None
    return {
        "estimand": LOSS_ESTIMAND,
        "noise_correction": loss.noise_correction,
        "baseline_disp": {k: _num(v) for k, v in loss.baseline_disp.items()},
        "multiplicity": {
            "correction": MULTIPLICITY,
            "n_tests": max((s.family_size for s in loss.scaling), default=0),
            "alpha": ALPHA,
        },
        "scaling": [scaling_dict(s) for s in loss.scaling],
        "per_language_deltas": _language_deltas(analysis, loss=True),
    }


def summary_dict(analysis: Analysis, version: int) -> dict[str, object]:
    effects = {_key(e.block): e for e in analysis.effects}
    cells = sorted(analysis.cells, key=cell_order)
    return {
        "sweep": analysis.sweep,
        "definitions_version": version,
        "estimand": ESTIMAND,
        "noise_correction": analysis.noise_correction,
        "baseline_disp": {k: _num(v) for k, v in analysis.baseline_disp.items()},
        "cells": [_cell(c, effects.get(_key(c.block))) for c in cells],
        "method": METHOD,
        "primary": _primary(analysis),
        "multiplicity": {
            "correction": MULTIPLICITY,
            "family": "the delta_disp slope tests of every (intermediate task, target task), "
            "the pooled (intermediate task, all) ones included, the primary contrast excluded",
            "n_tests": max((s.family_size for s in analysis.scaling if not s.primary), default=0),
            "alpha": ALPHA,
        },
        "scaling": [scaling_dict(s) for s in analysis.scaling],
        "missing": analysis.missing,
        "conflicts": analysis.conflicts,
        "effects_unavailable": analysis.effects_reason,
        "notes": _notes(analysis),
        "per_language_deltas": _language_deltas(analysis),
        "language_coverage": _coverage(analysis),
        # The loss-based view (per-language nll): its own Holm family, not in the answer.
        "loss": _loss(analysis),
        "n_resamples": bs.N_RESAMPLES,
        # Provenance, from the rows' `data_source`: per target task, each source's rows.
        "data_sources": analysis.data_sources,
        "synthetic": any(is_synthetic(s) for by in analysis.data_sources.values() for s in by),
    }


def is_synthetic(data_source: str) -> bool:
    """A `data_source` in which synthetic fixtures had a part (`fixtures`, `fixtures+local`)."""
    return "fixtures" in data_source.split("+")
