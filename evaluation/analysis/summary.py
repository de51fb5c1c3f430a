"""The JSON-ready summary (``summary.json``, shape in issue 8). Non-finite numbers → null."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from evaluation.analysis import bootstrap as bs
from evaluation.analysis.blocks import Block
from evaluation.analysis.stats import BASELINE, CellStats, Effect
from evaluation.tasks import get_task

if TYPE_CHECKING:
    from evaluation.analysis import Analysis
    from evaluation.analysis.scaling import Scaling


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
        "n_seeds": len(b.seeds),
        "n_languages": len(b.languages),
    }
    out |= {k: _num(cell.values[k]) for k in ("mean", "std", "cv", "min", "max")}
    out["worst_language"] = cell.worst_language
    out["transfer_gap"] = _num(cell.values["transfer_gap"])
    out["delta_mean"] = _num(found.delta_mean) if found else None
    out["delta_std"] = _num(found.delta_std) if found else None
    ci = {k: _pair(cell.ci95[k]) for k in bs.STATS if cell.values.get(k) is not None}
    if found:
        points = {"mean": found.delta_mean, "std": found.delta_std}
        ci |= {f"delta_{k}": _pair(bs.interval(found.replicates[k], v)) for k, v in points.items()}
    out["ci95"] = ci
    return out


def _scaling(fit: Scaling) -> dict[str, object]:
    return {
        "intermediate_task": fit.intermediate_task,
        "target_task": fit.target_task,
        "slope_delta_std": _num(fit.slope["std"]),
        "slope_delta_mean": _num(fit.slope["mean"]),
        "ci95_delta_std": _pair(fit.ci95["std"]),
        "p_value": _num(fit.p_value["std"]),
        "ci95_delta_mean": _pair(fit.ci95["mean"]),
        "p_value_delta_mean": _num(fit.p_value["mean"]),
        "n_model_sizes": len(fit.model_params),
        "model_params": list(fit.model_params),
        "n_target_tasks": fit.n_target_tasks,
        "ci_collapsed": fit.collapsed,
    }


def _notes(analysis: Analysis) -> list[str]:
    notes = list(analysis.notes)
    single = sorted({c.block.model for c in analysis.cells if len(c.block.seeds) == 1})
    if single:
        notes.append(
            "one seed only for " + ", ".join(single) + ": its intervals collapse to the point"
            " estimate (no seed variation to resample) and support no claim"
        )
    if analysis.conflicts:
        notes.append(f"{len(analysis.conflicts)} conflicting value(s) in the store; see conflicts")
    return notes


def _key(b: Block) -> tuple[str, str, str, str]:
    return (b.model, b.intermediate_task, b.target_task, b.metric)


def summary_dict(analysis: Analysis, version: int) -> dict[str, object]:
    effects = {_key(e.block): e for e in analysis.effects}
    cells = sorted(analysis.cells, key=cell_order)
    return {
        "sweep": analysis.sweep,
        "definitions_version": version,
        "cells": [_cell(c, effects.get(_key(c.block))) for c in cells],
        "scaling": [_scaling(s) for s in analysis.scaling],
        "missing": analysis.missing,
        "conflicts": analysis.conflicts,
        "effects_unavailable": analysis.effects_reason,
        "notes": _notes(analysis),
        "n_resamples": bs.N_RESAMPLES,
        "n_permutations": bs.N_PERMUTATIONS,
    }
