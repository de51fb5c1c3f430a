"""The report's tables, as (header, rows) of strings, built from ``summary.json`` alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evaluation.report_answer import fit_digits, params_text
from storage.schema import METRICS

Table = tuple[list[str], list[list[str]]]
Summary = Mapping[str, Any]
MAX_MISSING_LINES = 200


def num(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def with_ci(
    value: float | None, ci: Sequence[float | None] | None, sign: bool = False, digits: int = 2
) -> str:
    if value is None:
        return "—"
    if not ci or ci[0] is None or ci[1] is None:
        return num(value, digits, sign)
    lo, hi = num(ci[0], digits, sign), num(ci[1], digits, sign)
    return f"{num(value, digits, sign)} [{lo}, {hi}]"


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.2g}"


def scaling_table(summary: Summary, fits: Sequence[Mapping[str, Any]] | None = None) -> Table:
    """One row per contrast of `fits` (default: the metric-based family, summary["scaling"])."""
    header = [
        "intermediate task",
        "target task",
        "sizes",
        "slope delta_disp / decade [95 % CI]",
        "df",
        "p",
        "p (Holm)",
        "tau²",
        "lack of fit p (Holm)",
        "departs",
        "min. detectable slope",
        "slope delta_mean / decade [95 % CI]",
        "heterogeneity Q p, I²",
    ]
    chosen = summary["scaling"] if fits is None else fits
    return header, [_scaling_row(f) for f in sorted(chosen, key=_not_primary)]


def _scaling_row(f: Mapping[str, Any]) -> list[str]:
    d = fit_digits(f)  # nats (nll) get more decimals than points
    return [
        f["intermediate_task"] + (" (primary)" if f.get("primary") else ""),
        f["target_task"] + (" (% of baseline disp)" if f["target_task"] == "all" else ""),
        str(f["n_model_sizes"]),
        with_ci(f["slope_delta_disp"], f["ci95_delta_disp"], sign=True, digits=d)
        + (" (no interval)" if f["ci_collapsed"] else ""),
        str(f["df"]),
        _p(f["p_value"]),
        _p(f["p_adjusted"]),
        num(f["tau2"], 3) if d == 2 else _p(f["tau2"]),
        _p(f["lack_of_fit_p_adjusted"]),
        ", ".join(f["departs"]) or "—",
        num(f["mds_delta_disp"], d),
        with_ci(f["slope_delta_mean"], f["ci95_delta_mean"], sign=True, digits=d),
        _heterogeneity(f.get("heterogeneity")),
    ]


def _not_primary(fit: Mapping[str, Any]) -> bool:
    return not fit.get("primary")


def _heterogeneity(h: Mapping[str, Any] | None) -> str:
    if not h or h.get("p_value") is None:
        return "—"
    return f"{_p(h['p_value'])}, {100 * h['i2']:.0f} %"


def per_size_table(summary: Summary, fits: Sequence[Mapping[str, Any]] | None = None) -> Table:
    """Per contrast and model size: the effect over seeds with its t interval, the trend
    (`fits` default: the metric-based family)."""
    header = [
        "intermediate task", "target task", "model", "parameters", "seeds",
        "delta_disp [95 % t CI]", "fitted trend", "departs",
    ]  # fmt: skip
    rows = []
    for f in summary["scaling"] if fits is None else fits:
        d = fit_digits(f)
        for p in f["per_model"]:
            rows.append([
                f["intermediate_task"], f["target_task"], p["model"],
                params_text(p["model_params"]), str(p["n_seeds"]),
                with_ci(p["estimate"], p["ci95"], sign=True, digits=d),
                num(p["fitted"], d, sign=True), "yes" if p["model"] in f["departs"] else "",
            ])  # fmt: skip
    return header, rows


def _headline_cells(summary: Summary) -> list[Mapping[str, Any]]:
    """The first metric of each target task in summary order is its headline."""
    first: dict[str, str] = {}
    for c in summary["cells"]:
        first.setdefault(c["target_task"], c["metric"])
    return [c for c in summary["cells"] if c["metric"] == first[c["target_task"]]]


def _phang(cells: list[Mapping[str, Any]], targets: list[str]) -> Table:
    value = {(c["intermediate_task"], c["target_task"]): c for c in cells}
    tasks = sorted({c["intermediate_task"] for c in cells}, key=lambda t: (t != "none", t))
    header = ["intermediate task", *targets, "avg"]
    rows = []
    for task in tasks:
        key = "mean" if task == "none" else "delta_mean"
        got = [value[(task, t)][key] if (task, t) in value else None for t in targets]
        known = [g for g in got if g is not None]
        avg = sum(known) / len(known) if len(known) == len(targets) else None
        rows.append(
            [task, *(num(g, sign=task != "none") for g in got), num(avg, sign=task != "none")]
        )
    rows.append(["best (gain over none)", *(_best(cells, t) for t in targets), ""])
    return header, rows


def _best(cells: list[Mapping[str, Any]], target: str) -> str:
    gains = [c for c in cells if c["target_task"] == target and c["delta_mean"] is not None]
    if not gains:
        return "—"
    top = max(gains, key=lambda c: c["delta_mean"])
    return f"{top['intermediate_task']} ({top['delta_mean']:+.2f})"


def phang_tables(summary: Summary) -> dict[str, Table]:
    """Per model: target tasks × intermediate tasks, as in Phang et al. (2020), Table 2.

    The `none` row is the mean headline score over languages; the other rows are the
    paired gain over `none` (delta_mean); avg is the unweighted mean over the target
    tasks (shown only when the row has every one); the last row names the best task.
    """
    cells = _headline_cells(summary)
    targets = sorted({c["target_task"] for c in cells})
    out = {}
    for params, model in sorted({(c["model_params"], c["model"]) for c in cells}):
        mine = [c for c in cells if c["model"] == model]
        out[f"{model} ({params_text(params)} parameters)"] = _phang(mine, targets)
    return out


def cell_table(summary: Summary) -> Table:
    header = [
        "model", "intermediate task", "target task", "metric", "seeds", "langs",
        "mean [95 % CI]", "std [95 % CI]", "cv", "min", "max", "worst", "transfer gap",
        "delta_mean [95 % CI]", "delta_std [95 % CI]", "disp (non-en, corrected)",
        "disp raw", "delta_disp",
    ]  # fmt: skip
    rows = []
    for c in summary["cells"]:
        ci, d = c["ci95"], METRICS[c["metric"]].digits  # nll: nats, more decimals
        rows.append([
            c["model"], c["intermediate_task"], c["target_task"], c["metric"],
            str(c["n_seeds"]), str(c["n_languages"]),
            with_ci(c["mean"], ci.get("mean"), digits=d),
            with_ci(c["std"], ci.get("std"), digits=d),
            num(c["cv"], 3), num(c["min"], d), num(c["max"], d), c["worst_language"],
            num(c["transfer_gap"], d),
            with_ci(c["delta_mean"], ci.get("delta_mean"), sign=True, digits=d),
            with_ci(c["delta_std"], ci.get("delta_std"), sign=True, digits=d),
            num(c.get("disp"), d), num(c.get("disp_raw"), d),
            num(c.get("delta_disp"), d, sign=True),
        ])  # fmt: skip
    return header, rows


def coverage_lines(coverage: Mapping[str, Mapping[str, Sequence[str]]]) -> list[str]:
    """Per target task, the languages its statistics cover (dispersion: the non-English
    ones among them) and those the spec left out."""
    out = []
    for task, c in coverage.items():
        covered, left = list(c["covered"]), list(c["left_out"])
        line = f"{task}: {len(covered)} language(s): {' '.join(covered) or '—'}"
        if left:
            line += f"; left out by the spec (not scored, not missing): {' '.join(left)}"
        out.append(line)
    return out


def missing_lines(missing: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per missing item (the first MAX_MISSING_LINES; all are in summary.json)."""
    fields = ("model", "intermediate_task", "seed", "target_task", "metric")
    lines = []
    for m in missing[:MAX_MISSING_LINES]:
        where = ", ".join(f"{k}={m[k]}" for k in fields if k in m)
        langs = f" [{' '.join(m['languages'])}]" if m.get("languages") else ""
        lines.append(f"{where}: {m['reason']}{langs}")
    if len(missing) > MAX_MISSING_LINES:
        lines.append(f"… and {len(missing) - MAX_MISSING_LINES} more, all listed in summary.json")
    return lines
