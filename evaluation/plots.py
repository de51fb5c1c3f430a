"""The report's figures, as PNG files of a fixed, predictable size (matplotlib, Agg).

Figures are built with matplotlib's object API on an Agg canvas: no pyplot, no global
backend switch, nothing left open.

Every figure is `WIDTH_PX` wide; panel figures are `PANEL_HEIGHT_PX` tall per row of
`panel_grid(n)` panels, heat maps `heatmap_height_px(n_rows)` tall. Nothing is cropped
(no ``bbox_inches="tight"``), so the sizes are exact and tests can check them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from scipy import stats as st

from evaluation.analysis import BASELINE, Analysis, Block, CellStats, Effect
from evaluation.tasks import get_task

T = TypeVar("T")

DPI = 100
WIDTH_PX = 1200
PANEL_HEIGHT_PX = 360
MAX_COLUMNS = 3


def panel_grid(n_panels: int) -> tuple[int, int]:
    """(rows, columns) of a figure with `n_panels` panels."""
    columns = min(MAX_COLUMNS, max(n_panels, 1))
    return math.ceil(max(n_panels, 1) / columns), columns


def heatmap_height_px(n_rows: int) -> int:
    return 200 + 40 * n_rows


def _figure(n_panels: int) -> tuple[Figure, list[Axes]]:
    rows, columns = panel_grid(n_panels)
    size = (WIDTH_PX / DPI, rows * PANEL_HEIGHT_PX / DPI)
    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, squeeze=False)
    # Fixed margins in pixels (tight_layout costs a full extra draw per figure).
    height = rows * PANEL_HEIGHT_PX
    fig.subplots_adjust(
        left=70 / WIDTH_PX,
        right=1 - 20 / WIDTH_PX,
        bottom=55 / height,
        top=1 - 35 / height,
        wspace=0.3,
        hspace=125 / (PANEL_HEIGHT_PX - 125),
    )
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels]


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


def _is_headline(block: Block) -> bool:
    return block.metric == get_task(block.target_task).headline


def _headline(cells: list[CellStats]) -> dict[str, list[CellStats]]:
    out: dict[str, list[CellStats]] = {}
    for c in sorted(cells, key=lambda c: (c.block.target_task, c.block.model_params)):
        if _is_headline(c.block):
            out.setdefault(c.block.target_task, []).append(c)
    return out


def _by_task(items: list[T], task: Callable[[T], str]) -> dict[str, list[T]]:
    out: dict[str, list[T]] = {}
    for item in items:
        out.setdefault(task(item), []).append(item)
    return dict(sorted(out.items(), key=lambda kv: (kv[0] != BASELINE, kv[0])))


def _errorbar(
    ax: Axes, x: list[float], y: list[float], ci: list[tuple[float, float]], label: str, line="-"
) -> str:
    """Points with their intervals; returns the colour used."""
    lo = [max(v - c[0], 0.0) if math.isfinite(c[0]) else 0.0 for v, c in zip(y, ci, strict=True)]
    hi = [max(c[1] - v, 0.0) if math.isfinite(c[1]) else 0.0 for v, c in zip(y, ci, strict=True)]
    bars = ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=label, linestyle=line)
    return to_hex(bars.lines[0].get_color())


def statistic_vs_size(analysis: Analysis, stat: str, path: Path) -> Path:
    """One panel per target task: `stat` (headline metric) against parameters, per task."""
    panels = _headline(analysis.cells)
    fig, axes = _figure(len(panels))
    for ax, (target, cells) in zip(axes, panels.items(), strict=True):
        for task, group in _by_task(cells, lambda c: c.block.intermediate_task).items():
            x = [float(c.block.model_params) for c in group]
            y = [float(c.values[stat] or 0.0) for c in group]
            _errorbar(ax, x, y, [c.ci95[stat] for c in group], task)
        ax.set_xscale("log")
        metric = get_task(target).headline
        ax.set(title=target, xlabel="parameters", ylabel=f"{stat} of {metric} over languages")
        ax.legend(fontsize="small")
    return _save(fig, path)


def _fit_line(
    ax: Axes, analysis: Analysis, key: tuple[str, str], x: np.ndarray, color: str
) -> None:
    task, target = key
    fit = next(
        (s for s in analysis.scaling if (s.intermediate_task, s.target_task) == (task, target)),
        None,
    )
    if fit is None:
        return
    line = fit.fits["disp"]
    xs = np.array([x.min(), x.max()])
    ax.plot(xs, line.intercept + line.slope * (xs - line.x_center), "--", color=color, lw=1.2)
    ci = f" [{line.ci95[0]:+.2f}, {line.ci95[1]:+.2f}]" if line.ci95 else ""
    p = f", Holm p {fit.p_adjusted:.2g}" if fit.p_adjusted is not None else ""
    ax.annotate(
        f"{task}: {line.slope:+.2f}/decade{ci}{p}",
        xy=(0.02, 0.02 + 0.08 * len(ax.texts)),
        xycoords="axes fraction",
        fontsize="x-small",
    )


def delta_std_scaling(analysis: Analysis, path: Path) -> Path:
    """delta_disp (non-English, noise-corrected) against log10(parameters): per-model
    effects with their t intervals (over the model's own seeds where the contrast has no
    fit) and each fitted trend."""
    headline = [e for e in analysis.effects if _is_headline(e.block)]
    panels = _by_task(headline, lambda e: e.block.target_task)
    fig, axes = _figure(len(panels))
    for ax, (target, effects) in zip(axes, panels.items(), strict=True):
        for task, group in _by_task(effects, lambda e: e.block.intermediate_task).items():
            group.sort(key=lambda e: e.block.model_params)
            x = np.log10([float(e.block.model_params) for e in group])
            y = [e.delta_disp for e in group]
            ci = [_size_interval(analysis, e) for e in group]
            color = _errorbar(ax, list(x), y, ci, task, line="none")
            _fit_line(ax, analysis, (task, target), x, color)
        ax.axhline(0.0, color="black", linewidth=0.5)
        ax.set(title=target, xlabel="log10(parameters)", ylabel="delta_disp vs none")
        ax.legend(fontsize="small", loc="upper right")
    return _save(fig, path)


def _size_interval(analysis: Analysis, e: Effect) -> tuple[float, float]:
    b = e.block
    for fit in analysis.scaling:
        if (fit.intermediate_task, fit.target_task) == (b.intermediate_task, b.target_task):
            for point in fit.fits["disp"].sizes:
                if point.model == b.model and point.ci95 is not None:
                    return point.ci95
    d = e.per_seed["disp"]
    if d.size < 2:
        return (e.delta_disp, e.delta_disp)
    half = float(st.t.ppf(0.975, d.size - 1)) * float(d.std(ddof=1)) / math.sqrt(d.size)
    return (e.delta_disp - half, e.delta_disp + half)


def gain_matrix(analysis: Analysis, model: str) -> tuple[list[str], list[str], np.ndarray]:
    """(tasks, languages, gains): per-language headline gain over `none`, averaged over
    the target tasks that have the language; NaN where a task lacks the language."""
    sums: dict[tuple[str, str], list[float]] = {}
    for e in analysis.effects:
        b = e.block
        if b.model != model or not _is_headline(b):
            continue
        for lang, gain in zip(b.languages, e.gains, strict=True):
            sums.setdefault((b.intermediate_task, lang), []).append(float(gain))
    tasks = sorted({t for t, _ in sums})
    languages = sorted({lang for _, lang in sums})
    grid = np.full((len(tasks), len(languages)), np.nan)
    for (task, lang), values in sums.items():
        grid[tasks.index(task), languages.index(lang)] = float(np.mean(values))
    return tasks, languages, grid


def gains_heatmap(analysis: Analysis, model: str, path: Path) -> Path:
    tasks, languages, grid = gain_matrix(analysis, model)
    size = (WIDTH_PX / DPI, heatmap_height_px(len(tasks)) / DPI)
    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    height = heatmap_height_px(len(tasks))
    fig.subplots_adjust(left=0.12, right=0.98, bottom=80 / height, top=1 - 40 / height)
    bound = float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 1.0
    image = ax.imshow(grid, aspect="auto", cmap="RdBu", vmin=-bound, vmax=bound)
    ax.set_xticks(range(len(languages)), languages, fontsize=7, rotation=90)
    ax.set_yticks(range(len(tasks)), tasks, fontsize=8)
    ax.set_title(f"{model}: per-language gain over none (headline metric, mean over target tasks)")
    fig.colorbar(image, ax=ax, label="points")
    return _save(fig, path)


def write_plots(analysis: Analysis, out_dir: Path) -> list[Path]:
    """Every figure of the report into `out_dir`; returns their paths."""
    paths = []
    if analysis.cells:
        paths.append(statistic_vs_size(analysis, "mean", out_dir / "score_vs_size.png"))
        paths.append(statistic_vs_size(analysis, "std", out_dir / "std_vs_size.png"))
    if analysis.effects:
        paths.append(delta_std_scaling(analysis, out_dir / "delta_std_scaling.png"))
        models = sorted({(e.block.model_params, e.block.model) for e in analysis.effects})
        for _, model in models:
            name = re.sub(r"[^A-Za-z0-9._-]", "_", model)
            paths.append(gains_heatmap(analysis, model, out_dir / f"gains_{name}.png"))
    return paths
