"""The report folder: summary.json, report.md, a self-contained report.html, and PNG plots.

``write_report(storage_fs, results_path, sweep, out_dir) -> ReportPaths`` reads
the results store (through `evaluation.analysis`), writes everything into `out_dir`, and
returns the paths and the three-line answer (``answer_lines(summary)``). Whether scores
come from synthetic data is read from the rows' `data_source` (provenance recorded where
they were written): a banner says so when all are synthetic, and which target tasks are
when a sweep mixes synthetic and own data. The markdown and
the HTML are rendered from one list of sections, so they always say the same thing; the
HTML inlines every plot as base64 and needs no other file.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from evaluation.analysis import DEFINITIONS, analyze
from evaluation.plots import write_plots
from evaluation.report_answer import answer_lines, loss_lines, params_text
from evaluation.report_tables import (
    cell_table,
    coverage_lines,
    missing_lines,
    per_size_table,
    phang_tables,
    scaling_table,
)

__all__ = ["ReportPaths", "answer_lines", "write_report"]

SYNTHETIC_BANNER = (
    "Synthetic data: these scores come from synthetic fixtures, not from real benchmark "
    "data. They exercise the pipeline and the analysis; they say nothing about real models."
)
MIXED_BANNER = (
    "Synthetic data in part: some scores come from synthetic fixtures, the others from "
    "real data. Data source per target task (rows): {sources}. Only the scores whose "
    "source is `local` or `hub` alone are about real data."
)


def data_banner(summary: Mapping[str, Any]) -> str | None:
    """The provenance warning of a report: all synthetic, mixed (which is which), or none."""
    if not summary.get("synthetic"):
        return None
    by_task: Mapping[str, Mapping[str, int]] = summary.get("data_sources", {})
    if all(set(by) == {"fixtures"} for by in by_task.values()):
        return SYNTHETIC_BANNER
    sources = "; ".join(
        f"{task}: " + ", ".join(f"{source} ({n})" for source, n in by.items())
        for task, by in by_task.items()
    )
    return MIXED_BANNER.format(sources=sources)


@dataclass(frozen=True)
class ReportPaths:
    out_dir: Path
    summary: Path  # summary.json
    markdown: Path  # report.md
    html: Path  # report.html, self-contained
    plots: tuple[Path, ...]
    answer: tuple[str, ...]  # answer_lines(summary)


@dataclass(frozen=True)
class Section:
    """One piece of the report: a heading, paragraph, list, table or image."""

    kind: str  # "h1" | "h2" | "p" | "warn" | "ul" | "table" | "img"
    text: str = ""
    items: Sequence[str] = ()
    header: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    image: Path | None = None


def _sections(summary: Mapping[str, Any], plots: list[Path]) -> list[Section]:
    out = [Section("h1", f"xstilts report — sweep {summary['sweep']}")]
    if banner := data_banner(summary):
        out.append(Section("warn", banner))
    out += [Section("h2", "Answer"), Section("ul", items=answer_lines(summary))]
    out += _quality(summary)
    out += [Section("h2", "Definitions"), Section("ul", items=DEFINITIONS)]
    header, rows = scaling_table(summary)
    out += [Section("h2", "Scaling of the STILTs effect with model size")]
    out.append(Section("p", _method_text(summary)))
    out.append(Section("table", header=header, rows=rows) if rows else Section("p", "No slope."))
    header, rows = per_size_table(summary)
    if rows:
        out += [Section("h2", "Per model size (the unit of the size question)")]
        out.append(Section("table", header=header, rows=rows))
    out += _loss_sections(summary)
    out.append(Section("h2", "Phang et al.-style table (headline metric)"))
    for title, (header, rows) in phang_tables(summary).items():
        out += [Section("p", title), Section("table", header=header, rows=rows)]
    from evaluation.analysis.languages import breakdown_table  # issue 15, item 7

    if by_language := breakdown_table(summary):  # skipped without per-language values
        caption, header, rows = by_language
        out += [Section("h2", "By language family / script / resource level")]
        out += [Section("p", caption), Section("table", header=header, rows=rows)]
    out += [Section("h2", "Plots")]
    out += [Section("img", p.stem.replace("_", " "), image=p) for p in plots]
    header, rows = cell_table(summary)
    out += [Section("h2", "Every cell"), Section("table", header=header, rows=rows)]
    return out


def _method_text(summary: Mapping[str, Any]) -> str:
    multi = summary["multiplicity"]
    primary = summary.get("primary")
    first = ""
    if primary:
        tested = "" if primary["tested"] else " (not found in this store)"
        first = (
            f" Primary contrast (declared in the spec): {primary['intermediate_task']} on "
            f"{primary['target_task']}{tested}, tested alone at {primary['alpha']}, outside "
            "the family."
        )
    fixes = "; ".join(f"{t}: {how}" for t, how in summary.get("noise_correction", {}).items())
    return (
        f"Estimand: {summary['estimand']['primary']}. Noise correction per target task: "
        f"{fixes or '—'}. Method: {summary['method']}. Multiplicity: "
        f"{multi['correction'].capitalize()} correction (family-wise error {multi['alpha']}) "
        f"over {multi['n_tests']} delta_disp slope test(s), one per (intermediate task, target "
        f"task) and one per intermediate task pooled over target tasks (`all`).{first}"
    )


def _loss_sections(summary: Mapping[str, Any]) -> list[Section]:
    """The loss-based view beside the metric-based one: the same fits on the per-language
    nll, Holm-adjusted as a family of their own and kept out of the answer."""
    out = [Section("h2", "Loss-based robustness (per-language NLL; not part of the answer)")]
    out.append(Section("ul", items=loss_lines(summary)))
    loss = summary.get("loss")
    if not loss or not loss["scaling"]:
        return out
    fixes = "; ".join(f"{t}: {how}" for t, how in loss["noise_correction"].items())
    multi = loss["multiplicity"]
    out.append(
        Section(
            "p",
            f"Estimand: {loss['estimand']['primary']} (nats; lower nll is better, "
            f"delta_disp > 0 is less even). Noise correction per target task: {fixes or '—'}. "
            f"Method: {summary['method']}. Multiplicity: {multi['correction'].capitalize()} "
            f"over {multi['n_tests']} nll delta_disp slope test(s), a family apart from the "
            "metric-based one.",
        )
    )
    header, rows = scaling_table(summary, loss["scaling"])
    out.append(Section("table", header=header, rows=rows))
    header, rows = per_size_table(summary, loss["scaling"])
    out.append(Section("table", header=header, rows=rows))
    return out


def _quality(summary: Mapping[str, Any]) -> list[Section]:
    cells = summary["cells"]
    sizes = sorted({c["model_params"] for c in cells})
    facts = [
        f"{len(cells)} cells; model sizes: {', '.join(params_text(s) for s in sizes) or 'none'}.",
        f"{len(summary['missing'])} missing item(s); {len(summary['conflicts'])} conflict(s).",
    ]
    if summary.get("effects_unavailable"):
        facts.append(f"STILTs effects unavailable: {summary['effects_unavailable']}.")
    out = [Section("h2", "Data"), Section("ul", items=facts + list(summary["notes"]))]
    if coverage := summary.get("language_coverage"):
        out += [Section("h2", "Languages each statistic covers")]
        out += [Section("ul", items=coverage_lines(coverage))]
    if summary["conflicts"]:
        lines = [_conflict_text(c) for c in summary["conflicts"]]
        out += [Section("h2", "Conflicting values (not averaged)"), Section("ul", items=lines)]
    if summary["missing"]:
        out += [Section("h2", "Missing"), Section("ul", items=missing_lines(summary["missing"]))]
    return out


def _conflict_text(c: Mapping[str, Any]) -> str:
    where = ", ".join(f"{k}={c[k]}" for k in ("model", "intermediate_task", "seed", "target_task"))
    return (
        f"{where}, {c['language']} {c['split']} {c['metric']}: values {c['values']} "
        f"(attempts {c['attempts']}), kept {c['kept']}"
    )


def _markdown(sections: list[Section]) -> str:
    lines: list[str] = []
    for s in sections:
        if s.kind == "h1":
            lines += [f"# {s.text}", ""]
        elif s.kind == "h2":
            lines += [f"## {s.text}", ""]
        elif s.kind == "warn":
            lines += [f"> **{s.text}**", ""]
        elif s.kind == "p":
            lines += [s.text, ""]
        elif s.kind == "ul":
            lines += [f"- {item}" for item in s.items] + [""]
        elif s.kind == "table":
            lines += [*_markdown_table(s), ""]
        elif s.kind == "img" and s.image is not None:
            lines += [f"![{s.text}]({s.image.name})", ""]
    return "\n".join(lines)


def _markdown_table(s: Section) -> list[str]:
    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [row(s.header), row(["---"] * len(s.header)), *(row(r) for r in s.rows)]


_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1300px;color:#222}"
    "table{border-collapse:collapse;font-size:13px;margin:0.5em 0 1.5em}"
    "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}"
    "th{background:#eee}td:first-child,th:first-child{text-align:left}"
    ".warn{background:#fff3cd;border:2px solid #d39e00;padding:0.8em;font-weight:bold}"
    "img{max-width:100%;border:1px solid #ddd}"
)


def _html_section(s: Section) -> str:
    esc = html.escape
    if s.kind in ("h1", "h2", "p"):
        return f"<{s.kind}>{esc(s.text)}</{s.kind}>"
    if s.kind == "warn":
        return f'<div class="warn">{esc(s.text)}</div>'
    if s.kind == "ul":
        return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in s.items) + "</ul>"
    if s.kind == "table":
        head = "".join(f"<th>{esc(h)}</th>" for h in s.header)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in s.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if s.kind == "img" and s.image is not None:
        data = base64.b64encode(s.image.read_bytes()).decode("ascii")
        alt = esc(s.text)
        return f'<h3>{alt}</h3><img alt="{alt}" src="data:image/png;base64,{data}">'
    return ""


def _html(sections: list[Section], title: str) -> str:
    body = "\n".join(_html_section(s) for s in sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_report(
    storage_fs: pafs.FileSystem | None,
    results_path: str | Path,
    sweep: str,
    out_dir: Path,
    primary: tuple[str, str] | None = None,
    languages: Mapping[str, Sequence[str]] | None = None,
) -> ReportPaths:
    """Analyse `sweep` from its results store and write the report folder `out_dir`.

    `storage_fs` is the orchestrator's resolved `pyarrow.fs` filesystem (None: a local
    directory) and `results_path` the store's path in it (``<storage>/<sweep>/results``).
    `primary` is the spec's primary contrast (intermediate task, target task or `all`);
    `languages`, per target task, the languages the spec evaluates (default: all).
    Raises `UserError` for an empty store.
    """
    analysis = analyze(storage_fs, results_path, sweep, primary, languages)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = analysis.summary()
    plots = write_plots(analysis, out_dir)
    sections = _sections(summary, plots)
    paths = ReportPaths(
        out_dir=out_dir,
        summary=out_dir / "summary.json",
        markdown=out_dir / "report.md",
        html=out_dir / "report.html",
        plots=tuple(plots),
        answer=tuple(answer_lines(summary)),
    )
    paths.summary.write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    paths.markdown.write_text(_markdown(sections))
    paths.html.write_text(_html(sections, f"xstilts report — {sweep}"))
    return paths
