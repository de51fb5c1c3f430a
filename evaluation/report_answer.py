"""The three-line plain-language answer, from ``summary.json`` alone.

It never claims more than the intervals support: with fewer than three model sizes, with
one seed (collapsed intervals), without a `none` baseline, or when every 95 % interval of
the pooled slope contains 0, the answer says the evidence is inconclusive, and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MIN_SIZES = 3

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


def _excludes_zero(fit: Mapping[str, Any]) -> bool:
    lo, hi = fit["ci95_delta_std"]
    return lo is not None and hi is not None and (lo > 0 or hi < 0) and not fit["ci_collapsed"]


def _finding(fit: Mapping[str, Any]) -> str:
    lo, hi = fit["ci95_delta_std"]
    interval = "collapsed: one seed" if fit["ci_collapsed"] else f"95 % CI {lo:+.2f} to {hi:+.2f}"
    return (
        f"{fit['intermediate_task']} intermediate training changed the cross-language std "
        f"(delta_std) by {fit['slope_delta_std']:+.2f} points per 10× parameters ({interval}; "
        f"permutation p = {fit['p_value']:.2g}), pooled over {fit['n_target_tasks']} target "
        f"task(s)."
    )


def _strongest(pooled: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    def width(fit: Mapping[str, Any]) -> float:
        lo, hi = fit["ci95_delta_std"]
        return (hi - lo) if lo is not None and hi is not None else float("inf")

    return min(pooled, key=lambda f: (not _excludes_zero(f), f["p_value"], width(f)))


def _verdict(pooled: Sequence[Mapping[str, Any]], n_sizes: int) -> str:
    if n_sizes < MIN_SIZES:
        return (
            f"Answer: inconclusive — only {n_sizes} model size(s); a trend with size needs at "
            f"least {MIN_SIZES}."
        )
    if all(f["ci_collapsed"] for f in pooled):
        return "Answer: inconclusive — one seed per cell, so the intervals carry no uncertainty."
    clear = [f for f in pooled if _excludes_zero(f)]
    falling = [f["intermediate_task"] for f in clear if f["slope_delta_std"] < 0]
    rising = [f["intermediate_task"] for f in clear if f["slope_delta_std"] > 0]
    if not falling and not rising:
        return (
            f"Answer: inconclusive — the 95 % interval of every pooled slope contains 0 "
            f"({len(pooled)} intermediate task(s))."
        )
    parts = []
    if falling:
        parts.append(f"falls with size for {', '.join(falling)} (larger models gain more evenness)")
    if rising:
        parts.append(f"rises with size for {', '.join(rising)} (larger models gain less evenness)")
    others = len(pooled) - len(falling) - len(rising)
    rest = f"; inconclusive for the other {others}" if others else ""
    return f"Answer: delta_std {' and '.join(parts)}; the 95 % intervals exclude 0{rest}."


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
    pooled = [f for f in summary["scaling"] if f["target_task"] == "all"]
    if not pooled:
        return [
            _scope(summary),
            "No scaling slope: the STILTs effects span fewer than two model sizes.",
            f"Answer: inconclusive — a trend with size needs at least {MIN_SIZES} model sizes.",
        ]
    n_sizes = max(f["n_model_sizes"] for f in pooled)
    return [_scope(summary), _finding(_strongest(pooled)), _verdict(pooled, n_sizes)]
