"""`report` over a synthetic results store of about 1 million rows (target: under 30 s).

The store is a planted sweep shaped like a real one: 6 model sizes × 10 intermediate
tasks (with `none`) × 20 seeds × all 12 target tasks, the row set a real fragment has
(`evaluation.scorers.row_metrics`: every metric, the `<metric>_se` rows, `nll` and `nll_se`
for the tasks with a head) on the split each task reports, one fragment per (trial, target
task) — 14,400 fragments, 1,027,200 rows. Writing the store is not timed; the analysis and
the whole report (summary.json, report.md, report.html, plots) are, in wall-clock and in
CPU time of the process (user + sys, all its threads): on a shared machine the CPU time is
the figure to hold against the 30 s.

    .venv/bin/python bench/report_bench.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from evaluation.analysis import analyze
from evaluation.analysis.synthetic import Planted, write_planted
from evaluation.report import write_report
from evaluation.tasks import Role, task_names

MODELS = {f"m{i}": int(10 ** (8 + 0.5 * i)) for i in range(6)}
TASKS = (
    "none",
    "anli",
    "mnli",
    "qqp",
    "squad",
    "squad_v2",
    "hellaswag",
    "cosmosqa",
    "commonsenseqa",
    "multitask",
)


def plan() -> Planted:
    return Planted(
        sweep="bench",
        models=MODELS,
        intermediate_tasks=TASKS,
        target_tasks=tuple(task_names(Role.TARGET)),
        seeds=tuple(range(20)),
        noise=1.0,
        all_metrics=True,
    )


def _took(start: float, cpu: os.times_result) -> str:
    now = os.times()
    user, system = now.user - cpu.user, now.system - cpu.system
    wall = time.perf_counter() - start
    return f"{wall:.1f} s wall, {user + system:.1f} s CPU (user {user:.1f} + sys {system:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build the store (and report) here")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="xstilts-report-bench-"))
    results = root / "bench" / "results"
    start = time.perf_counter()
    n_rows = write_planted(results, plan()) if not results.exists() else 0
    print(f"store: {n_rows:,} rows written in {time.perf_counter() - start:.1f} s ({results})")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    start, cpu = time.perf_counter(), os.times()
    analysis = analyze(None, results, "bench")
    print(f"analysis: {_took(start, cpu)} ({len(analysis.cells)} cells)")
    start, cpu = time.perf_counter(), os.times()
    paths = write_report(None, results, "bench", root / "report")
    print(f"report:   {_took(start, cpu)}, store to report folder (target < 30 s)")
    print(f"          {paths.html}")
    for line in paths.answer:
        print("  " + line)


if __name__ == "__main__":
    main()
