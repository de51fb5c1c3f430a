"""The report's tables, as (header, rows) of strings, built from ``summary.json`` alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evaluation.report_answer import params_text

Table = tuple[list[str], list[list[str]]]
Summary = Mapping[str, Any]
MAX_MISSING_LINES = 200


def num(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def with_ci(value: float | None, ci: Sequence[float | None] | None, sign: bool = False) -> str:
    if value is None:
        return "—"
    if not ci or ci[0] is None or ci[1] is None:
        return num(value, sign=sign)
    return f"{num(value, sign=sign)} [{num(ci[0], sign=sign)}, {num(ci[1], sign=sign)}]"


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.2g}"


def scaling_table(summary: Summary) -> Table:
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
    rows = [
        [
            f["intermediate_task"] + (" (primary)" if f.get("primary") else ""),
            f["target_task"] + (" (% of baseline disp)" if f["target_task"] == "all" else ""),
            str(f["n_model_sizes"]),
            with_ci(f["slope_delta_disp"], f["ci95_delta_disp"], sign=True)
            + (" (no interval)" if f["ci_collapsed"] else ""),
            str(f["df"]),
            _p(f["p_value"]),
            _p(f["p_adjusted"]),
            num(f["tau2"], 3),
            _p(f["lack_of_fit_p_adjusted"]),
            ", ".join(f["departs"]) or "—",
            num(f["mds_delta_disp"]),
            with_ci(f["slope_delta_mean"], f["ci95_delta_mean"], sign=True),
            _heterogeneity(f.get("heterogeneity")),
        ]
        for f in sorted(summary["scaling"], key=lambda f: not f.get("primary"))
    ]
    return header, rows


def _heterogeneity(h: Mapping[str, Any] | None) -> str:
    if not h or h.get("p_value") is None:
        return "—"
    return f"{_p(h['p_value'])}, {100 * h['i2']:.0f} %"


def per_size_table(summary: Summary) -> Table:
    """Per contrast and model size: the effect over seeds with its t interval, the trend."""
    header = [
        "intermediate task", "target task", "model", "parameters", "seeds",
        "delta_disp [95 % t CI]", "fitted trend", "departs",
    ]  # fmt: skip
    rows = []
    for f in summary["scaling"]:
        for p in f["per_model"]:
            rows.append([
                f["intermediate_task"], f["target_task"], p["model"],
                params_text(p["model_params"]), str(p["n_seeds"]),
                with_ci(p["estimate"], p["ci95"], sign=True), num(p["fitted"], sign=True),
                "yes" if p["model"] in f["departs"] else "",
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
        ci = c["ci95"]
        rows.append([
            c["model"], c["intermediate_task"], c["target_task"], c["metric"],
            str(c["n_seeds"]), str(c["n_languages"]),
            with_ci(c["mean"], ci.get("mean")), with_ci(c["std"], ci.get("std")),
            num(c["cv"], 3), num(c["min"]), num(c["max"]), c["worst_language"],
            num(c["transfer_gap"]),
            with_ci(c["delta_mean"], ci.get("delta_mean"), sign=True),
            with_ci(c["delta_std"], ci.get("delta_std"), sign=True),
            num(c.get("disp")), num(c.get("disp_raw")), num(c.get("delta_disp"), sign=True),
        ])  # fmt: skip
    return header, rows


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
