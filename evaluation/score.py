"""`xstilts score`: official-equivalent scoring of two submission trees.

Both trees use the layout ``<root>/<task>/test-<lang>.<ext>`` (`evaluation.submission`).
Tasks are those whose folder exists in both trees (or the ones asked for); languages are
those present, and the prediction and label trees must hold the same ones. Everything is
read and scored before anything is printed, so bad input gives one `UserError` and no
output; warnings go to stderr after a successful run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evaluation import aggregate
from evaluation.aggregate import BenchmarkSummary, TaskAverage
from evaluation.scorers import get_scorer
from evaluation.submission import Warn, language_files, load_language
from evaluation.tasks import Role, TaskSpec, get_task, suggest, task_names
from storage.errors import UserError


def _task_dirs(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        raise UserError(f"{root}: not a directory")
    known = task_names(Role.TARGET)
    dirs = {}
    for path in sorted(root.iterdir()):
        if path.name.startswith(".") or not path.is_dir():
            continue
        if path.name not in known:
            raise UserError(f"{path}: unknown task folder{suggest(path.name, known)}")
        dirs[path.name] = path
    return dirs


Trees = tuple[tuple[Path, dict[str, Path]], tuple[Path, dict[str, Path]]]


def _requested(name: str, trees: Trees) -> str:
    spec = get_task(name)
    if spec.role is not Role.TARGET:
        raise UserError(f"{name!r} is an intermediate task; only target tasks are scored")
    for root, dirs in trees:
        if name not in dirs:
            raise UserError(f"{root / name}: no such task folder")
    return name


def select_tasks(trees: Trees, tasks: Sequence[str] | None, warn: Warn) -> list[str]:
    """Tasks to score: those asked for (all must exist in both trees), else all in both.

    `trees` holds (root, task folders by name) of the prediction and the label tree.
    """
    if tasks is not None:
        return [_requested(name, trees) for name in dict.fromkeys(tasks)]
    (_, preds), (_, labels) = trees
    for name in sorted(preds.keys() ^ labels.keys()):
        only = "predictions" if name in preds else "labels"
        warn(f"{name}: folder only in the {only} tree; not scored")
    return [name for name in task_names(Role.TARGET) if name in preds and name in labels]


def _language_pairs(spec: TaskSpec, pred_dir: Path, label_dir: Path, warn: Warn):
    pred_files = language_files(pred_dir, spec, warn)
    label_files = language_files(label_dir, spec, warn)
    for lang in spec.languages:
        if (lang in pred_files) != (lang in label_files):
            where = label_dir if lang in pred_files else pred_dir
            missing = where / f"test-{lang}.{spec.file_ext}"
            raise UserError(f"{missing}: missing ({lang} is in the other tree)")
    if not label_files:
        raise UserError(f"{label_dir}: no test-<lang>.{spec.file_ext} files")
    langs = [lang for lang in spec.languages if lang in label_files]
    if len(langs) < len(spec.languages):
        absent = " ".join(lang for lang in spec.languages if lang not in label_files)
        warn(f"{spec.name}: averaged over {len(langs)} of {len(spec.languages)} languages "
             f"(absent: {absent})")  # fmt: skip
    return [(lang, pred_files[lang], label_files[lang]) for lang in langs]


def score_task(spec: TaskSpec, pred_dir: Path, label_dir: Path, warn: Warn) -> TaskAverage:
    scorer = get_scorer(spec.scorer)
    per_language = {}
    for lang, pred_path, label_path in _language_pairs(spec, pred_dir, label_dir, warn):
        preds, golds = load_language(spec, pred_path, label_path, warn)
        try:
            per_language[lang] = scorer.score(preds, golds, language=lang)
        except ValueError as err:
            raise UserError(f"{pred_path}: cannot score against {label_path} ({err})") from None
    return aggregate.task_average(spec.name, per_language)


def score_trees(
    predictions: Path, labels: Path, tasks: Sequence[str] | None, warn: Warn
) -> dict[str, TaskAverage]:
    """Per-task averages of every selected task; raises UserError on any bad input."""
    pred_dirs, label_dirs = _task_dirs(predictions), _task_dirs(labels)
    if predictions.resolve() == labels.resolve():
        warn("the prediction and label trees are the same folder")
    selected = select_tasks(((predictions, pred_dirs), (labels, label_dirs)), tasks, warn)
    return {
        name: score_task(get_task(name), pred_dirs[name], label_dirs[name], warn)
        for name in selected
    }


def as_document(
    scores: dict[str, TaskAverage], summaries: Sequence[BenchmarkSummary]
) -> dict[str, Any]:
    """The JSON document: per task, per language and average scores; benchmark summaries."""
    tasks = {
        name: {
            "languages": {lang: dict(values) for lang, values in task.languages.items()},
            "average": dict(task.average),
            "avg_metric": task.avg_metric,
        }
        for name, task in scores.items()
    }
    benchmarks = {
        s.benchmark: {
            "groups": dict(s.groups),
            "overall": s.overall,
            "overall_headline": s.overall_headline,
            "incomplete": list(s.incomplete),
        }
        for s in summaries
    }
    return {"tasks": tasks, "benchmarks": benchmarks}


def _task_table(task: TaskAverage) -> Table:
    metrics = list(task.average)
    table = Table(
        title=task.task, title_justify="left", caption=f"avg_metric {task.avg_metric:.2f}"
    )
    table.add_column("language")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for lang, values in task.languages.items():
        table.add_row(lang, *(f"{values[m]:.2f}" for m in metrics))
    table.add_row("average", *(f"{task.average[m]:.2f}" for m in metrics), style="bold")
    return table


def _summary_table(summaries: Sequence[BenchmarkSummary]) -> Table:
    table = Table(title="benchmarks (groups only when complete)", title_justify="left")
    for column in ("benchmark", "score", "value"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for s in summaries:
        for group, value in s.groups.items():
            table.add_row(s.benchmark, group, f"{value:.2f}")
        if s.overall is not None and s.overall_headline is not None:
            table.add_row(s.benchmark, "overall", f"{s.overall:.2f}", style="bold")
            table.add_row(s.benchmark, "overall (QA by F1)", f"{s.overall_headline:.2f}")
        else:
            table.add_row(s.benchmark, "overall", f"n/a ({len(s.incomplete)} tasks incomplete)")
    return table


def _print(scores: dict[str, TaskAverage], summaries: list[BenchmarkSummary], as_json: bool):
    if as_json:
        print(json.dumps(as_document(scores, summaries), indent=2))
        return
    console = Console(file=sys.stdout)
    for task in scores.values():
        console.print(_task_table(task))
    console.print(_summary_table(summaries))


def run(predictions: Path, labels: Path, tasks: Sequence[str] | None, as_json: bool) -> None:
    """Score a prediction tree against a label tree and print the result (JSON or tables)."""
    warnings: list[str] = []
    scores = score_trees(Path(predictions), Path(labels), tasks, warnings.append)
    summaries = [aggregate.summarize(benchmark, scores) for benchmark in aggregate.BENCHMARKS]
    for message in warnings:
        print(f"warning: {message}", file=sys.stderr)
    _print(scores, summaries, as_json)
