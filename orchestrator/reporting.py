"""`xstilts report`: the analysis of a sweep's results store, written as a report folder."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from orchestrator.spec import SweepSpec
from storage.files import resolve_storage
from storage.layout import SweepLayout


def default_out(spec: SweepSpec) -> Path:
    return Path(SweepLayout.of(spec.storage, spec.name).report)


def primary_contrast(spec: SweepSpec) -> tuple[str, str] | None:
    """The spec's declared primary contrast (analysis.primary), if any."""
    if spec.analysis is None or spec.analysis.primary is None:
        return None
    return (spec.analysis.primary.intermediate_task, spec.analysis.primary.target_task)


def make_report(spec: SweepSpec, out: Path | None) -> Path:
    from evaluation.report import write_report

    storage = resolve_storage(SweepLayout.of(spec.storage, spec.name).results)
    out_dir = (out or default_out(spec)).resolve()
    console = Console()
    with console.status(f"analysing sweep {spec.name!r}"):
        paths = write_report(
            None if storage.is_local else storage.fs,
            storage.root,
            spec.name,
            out_dir,
            primary=primary_contrast(spec),
            languages={t: spec.eval_languages(t) for t in spec.target_tasks},
        )
    console.print(f"report: {paths.html}")
    for line in paths.answer:
        console.print(line)
    return paths.html
