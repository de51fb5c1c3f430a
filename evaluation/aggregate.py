"""Official aggregation rules of XTREME and XTREME-R (``evaluate.py``).

- A task's average of each metric is the **unweighted mean over its languages**, summed in
  the task spec's language order (the official order), so the result does not depend on
  the order the scores arrive in.
- A task's ``avg_metric`` is (avg EM + avg F1) / 2 for QA tasks, else avg F1, avg accuracy
  or avg map@20, in that order of preference. The papers' headline tables print F1 for QA;
  that is `TaskAverage.headline` (the spec's headline metric).
- A benchmark group score (mean of ``avg_metric`` over the group's tasks) exists only when
  every task of the group is complete, and the overall score only when every task of the
  benchmark is. "Complete" means scored on all of the benchmark's languages for the task,
  since the official script refuses to run otherwise.

Benchmarks are their own objects here because a task's group depends on the benchmark:
XCOPA is in two XTREME-R groups, PAW-X and BUCC only in XTREME; XTREME's language lists
are XTREME-R's minus the languages XTREME-R added (UD-POS, PAN-X, Tatoeba, XQuAD).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from evaluation.tasks import get_task

QA_METRICS = ("exact_match", "f1")
_AVG_METRIC_PREFERENCE = ("f1", "accuracy", "map@20")


@dataclass(frozen=True)
class TaskAverage:
    task: str
    languages: Mapping[str, Mapping[str, float]]  # language -> metric -> value, spec order
    average: Mapping[str, float]  # metric -> unweighted mean over `languages`
    avg_metric: float  # the official per-task number
    headline: float  # average of the spec's headline metric (F1 for QA)


def ordered_languages(task: str, languages: Mapping[str, object]) -> list[str]:
    """The given languages in the task spec's order; unknown ones raise ValueError."""
    spec = get_task(task)
    unknown = sorted(set(languages) - set(spec.languages))
    if unknown:
        raise ValueError(f"{task}: languages not in the task: {' '.join(unknown)}")
    return [lang for lang in spec.languages if lang in languages]


def avg_metric(average: Mapping[str, float]) -> float:
    if all(m in average for m in QA_METRICS):
        return (average["exact_match"] + average["f1"]) / 2
    for metric in _AVG_METRIC_PREFERENCE:
        if metric in average:
            return average[metric]
    raise ValueError(f"no metric to rank by among {sorted(average)}")


def task_average(task: str, per_language: Mapping[str, Mapping[str, float]]) -> TaskAverage:
    """Average a task's per-language scores with the official rules."""
    langs = ordered_languages(task, per_language)
    if not langs:
        raise ValueError(f"{task}: no language scores to average")
    metrics = list(per_language[langs[0]])
    average = {m: sum(per_language[lang][m] for lang in langs) / len(langs) for m in metrics}
    ordered = {lang: MappingProxyType(dict(per_language[lang])) for lang in langs}
    return TaskAverage(
        task=task,
        languages=MappingProxyType(ordered),
        average=MappingProxyType(average),
        avg_metric=avg_metric(average),
        headline=average[get_task(task).headline],
    )


@dataclass(frozen=True)
class Benchmark:
    name: str
    tasks: tuple[str, ...]
    groups: Mapping[str, tuple[str, ...]]
    dropped_languages: Mapping[str, frozenset[str]]  # task -> spec languages not used here

    def languages(self, task: str) -> frozenset[str]:
        dropped = self.dropped_languages.get(task, frozenset())
        return frozenset(get_task(task).languages) - dropped


@dataclass(frozen=True)
class BenchmarkSummary:
    benchmark: str
    groups: Mapping[str, float]  # only groups whose every task is complete
    overall: float | None  # mean avg_metric over all tasks, when all are complete
    overall_headline: float | None  # the same with QA counted by F1 alone
    incomplete: tuple[str, ...]  # benchmark tasks missing or scored on too few languages


XTREME_R = Benchmark(
    name="xtreme-r",
    tasks=tuple("xnli xcopa udpos panx xquad mlqa tydiqa tatoeba mewslix lareqa".split()),
    groups=MappingProxyType(
        {
            "classification": ("xnli", "xcopa"),
            "tagging": ("udpos", "panx"),
            "qa": ("xquad", "mlqa", "tydiqa"),
            "retrieval": ("tatoeba", "mewslix"),
            "multi_choice": ("xcopa",),
        }
    ),
    dropped_languages=MappingProxyType({}),
)

XTREME = Benchmark(
    name="xtreme",
    tasks=("pawsx", "xnli", "udpos", "panx", "bucc2018", "tatoeba", "xquad", "mlqa", "tydiqa"),
    groups=MappingProxyType(
        {
            "classification": ("pawsx", "xnli"),
            "tagging": ("udpos", "panx"),
            "qa": ("xquad", "mlqa", "tydiqa"),
            "retrieval": ("bucc2018", "tatoeba"),
        }
    ),
    dropped_languages=MappingProxyType(
        {
            "udpos": frozenset({"lt", "pl", "uk", "wo", "ro"}),
            "panx": frozenset({"qu", "pl", "uk", "az", "lt", "pa", "gu", "ro"}),
            "tatoeba": frozenset({"az", "lt", "pl", "uk", "ro"}),
            "xquad": frozenset({"ro"}),
        }
    ),
)

BENCHMARKS = (XTREME_R, XTREME)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def summarize(benchmark: Benchmark, scores: Mapping[str, TaskAverage]) -> BenchmarkSummary:
    """Group and overall scores of one benchmark from per-task averages."""
    complete = {
        task
        for task in benchmark.tasks
        if task in scores and set(scores[task].languages) == benchmark.languages(task)
    }
    groups = {
        group: _mean([scores[t].avg_metric for t in tasks])
        for group, tasks in benchmark.groups.items()
        if complete.issuperset(tasks)
    }
    everything = complete.issuperset(benchmark.tasks)
    return BenchmarkSummary(
        benchmark=benchmark.name,
        groups=MappingProxyType(groups),
        overall=_mean([scores[t].avg_metric for t in benchmark.tasks]) if everything else None,
        overall_headline=_mean([scores[t].headline for t in benchmark.tasks])
        if everything
        else None,
        incomplete=tuple(t for t in benchmark.tasks if t not in complete),
    )
