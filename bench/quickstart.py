"""The quickstart sweep end to end: wall time, peak memory, and whether its models learn.

Runs `xstilts run quickstart` (set-up excluded: run `make setup` first) in a fresh folder,
as a new user does: its fixtures are generated there on first use. It samples the summed RSS
of the driver and every process of the Ray it started once a second, then prints wall time
and peak RSS against the targets (10 minutes, 8 GiB) and a table of English scores per model
size and target task (mean and min over seeds and intermediate tasks) against floors:

- every size beats chance on every target task. Chance is the best input-blind answer on the
  same English eval examples, scored by the task's own scorer: XNLI the most frequent label;
  UD-POS a constant tag, or tags drawn from the English training tag frequencies (mean of
  20 draws; seqeval merges a run of equal POS tags into one chunk, so a constant tag scores
  0); XQuAD a fixed part of the context (all of it, its first sentence, its first word or
  two). Tatoeba retrieves English sentences from every other language, so it has no English
  row: its line is the mean over its languages, against one of n candidates (100 / n).
- the largest size reaches English XNLI accuracy >= 55 and XQuAD F1 >= 35 (issue 19).

A summary of figures, not a timed test: it exits non-zero when the sweep fails or a line
fails (wall time included). The load average and the CPU time of the sweep's processes are
printed with the wall time: other work on the machine slows the sweep, not its CPU time.

    unshare --net sh -c 'ip link set lo up && .venv/bin/python bench/quickstart.py'
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import mean
from typing import Any

import psutil

from evaluation.predict import golds
from evaluation.scorers import get_scorer
from evaluation.tasks import TaskSpec, get_task
from orchestrator.jobs import data_access
from orchestrator.spec import load_spec
from storage.results import ResultsStore
from trainers.celldata import DataAccess
from trainers.ladder import get_model

XSTILTS = str(Path(sys.executable).with_name("xstilts"))
WALL_TARGET_S = 600
FLOORS = {"xnli": 55.0, "xquad": 35.0}  # the largest size's English scores (issue 19)
DRAWS = 20  # random tag sequences averaged for UD-POS chance


def tree(root: psutil.Process, marker: str) -> list[psutil.Process]:
    """`root`, its descendants and any process whose command line names `marker`."""
    procs = {root.pid: root}
    try:
        procs.update({p.pid: p for p in root.children(recursive=True)})
    except psutil.NoSuchProcess:
        return []
    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info["cmdline"] or []):
            procs[p.pid] = p
    return list(procs.values())


def sample(procs: list[psutil.Process], cpu: dict[int, float]) -> int:
    """The summed RSS of `procs`; records each one's CPU seconds so far in `cpu`."""
    total = 0
    for p in procs:
        try:
            with p.oneshot():
                total += p.memory_info().rss
                times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        cpu[p.pid] = times.user + times.system
    return total


def run_sweep(spec: str, work: Path) -> tuple[int, float, int, float]:
    """(exit status, wall seconds, peak RSS, CPU seconds of all its processes, to the last
    second each was seen) of `xstilts run` with `work` as its folder."""
    ray_tmp = work / "ray"
    env = {**os.environ, "XSTILTS_RAY_TEMP_DIR": str(ray_tmp)}
    cmd = [XSTILTS, "run", spec, "--storage", str(work / "runs")]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=work)
    root, peak, cpu = psutil.Process(proc.pid), 0, dict[int, float]()
    while proc.poll() is None:
        peak = max(peak, sample(tree(root, str(ray_tmp)), cpu))
        time.sleep(1)
    return proc.returncode, time.monotonic() - start, peak, sum(cpu.values())


# --- chance: the best input-blind answer on the eval examples, by scorer -----------------


def _score(spec: TaskSpec, predictions: Any, examples: Sequence[Any]) -> float:
    found = get_scorer(spec.scorer).score(predictions, golds(spec, examples), language="en")
    return float(found[spec.headline])


def _label_chance(spec: TaskSpec, examples: Sequence[Any], data: DataAccess) -> float:
    gold = golds(spec, examples)
    return max(_score(spec, [label] * len(gold), examples) for label in set(gold))


def _tag_chance(spec: TaskSpec, examples: Sequence[Any], data: DataAccess) -> float:
    counts = Counter(tag for tags in golds(spec, data.train(spec)) for tag in tags)
    tags, weights = list(counts), list(counts.values())
    lengths = [len(ex.tags) for ex in examples]
    rng = random.Random(0)
    drawn = [
        _score(spec, [rng.choices(tags, weights, k=n) for n in lengths], examples)
        for _ in range(DRAWS)
    ]
    constant = max(_score(spec, [[tag] * n for n in lengths], examples) for tag in tags)
    return max(constant, mean(drawn))


FIXED_SPANS: dict[str, Callable[[str], str]] = {
    "context": lambda text: text,
    "first sentence": lambda text: text.split(" . ")[0],
    "first word": lambda text: text.split()[0],
    "first two words": lambda text: " ".join(text.split()[:2]),
}


def _span_chance(spec: TaskSpec, examples: Sequence[Any], data: DataAccess) -> float:
    return max(
        _score(spec, {ex.id: part(ex.context) for ex in examples}, examples)
        for part in FIXED_SPANS.values()
    )


def _retrieval_chance(spec: TaskSpec, examples: Sequence[Any], data: DataAccess) -> float:
    return 100 / len(examples)  # one of the language's English sentences


# By scorer; a task scored otherwise is held to > 0.
CHANCE: dict[str, Callable[[TaskSpec, Sequence[Any], DataAccess], float]] = {
    "accuracy": _label_chance,
    "seqeval": _tag_chance,
    "squad": _span_chance,
    "mlqa": _span_chance,
    "tatoeba": _retrieval_chance,
}


def english(spec: TaskSpec) -> bool:
    """Whether the task has English rows (Tatoeba scores other languages into English)."""
    return "en" in spec.languages


def chance(spec: TaskSpec, data: DataAccess) -> float:
    """Chance on the languages a line reports: English, else the mean over all of them."""
    level = CHANCE.get(spec.scorer)
    if level is None:
        return 0.0
    languages = data.eval(spec).items()
    return mean(
        level(spec, ex, data) for lang, ex in languages if lang == "en" or not english(spec)
    )


# --- the table --------------------------------------------------------------------------


def run_scores(work: Path, sweep: str) -> dict[tuple[str, str], list[float]]:
    """(model, target task) -> the headline score of each cell: English, or the mean over the
    task's languages where it has no English row."""
    per_run: dict[tuple[str, str, str, int], list[float]] = defaultdict(list)
    for row in ResultsStore(str(work / "runs"), sweep).read().to_pylist():
        spec = get_task(row["target_task"])
        if row["metric"] != spec.headline or (english(spec) and row["language"] != "en"):
            continue
        key = (row["model"], spec.name, row["intermediate_task"], row["seed"])
        per_run[key].append(row["value"])
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (model, task, _, _), values in sorted(per_run.items()):
        scores[(model, task)].append(mean(values))
    return scores


def floor_lines(work: Path, spec_ref: str) -> list[tuple[str, bool]]:
    """One line per (size, target task): mean and min score, chance, floor, verdict."""
    os.chdir(work)  # the spec's relative data folder is where the sweep ran
    spec = load_spec(spec_ref)
    data = data_access(spec)
    scores = run_scores(work, spec.name)
    largest = max(spec.models, key=lambda name: get_model(name).params)
    lines = [(f"{'size':8} {'target':8} {'scored on':10} {'mean':>6} {'min':>6} "
              f"{'chance':>6}  floor", True)]  # fmt: skip
    for task in spec.target_tasks:
        task_spec = get_task(task)
        level = chance(task_spec, data)
        scope = "en" if english(task_spec) else "all langs"
        for model in spec.models:
            values = scores.get((model, task), [])
            need = FLOORS.get(task) if model == largest else None
            got = mean(values) if values else float("nan")
            ok = bool(values) and got > level and (need is None or got >= need)
            floor = f"> {level:.1f}" + (f" and >= {need:.0f}" if need is not None else "")
            low = min(values) if values else float("nan")
            text = (f"{model:8} {task:8} {scope:10} {got:6.1f} {low:6.1f} {level:6.1f}  "
                    f"{floor:20} {'PASS' if ok else 'FAIL'} ({len(values)} cells)")  # fmt: skip
            lines.append((text, ok))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="quickstart")
    parser.add_argument("--keep", type=Path, help="folder to use and keep")
    args = parser.parse_args()
    work = (args.keep or Path(tempfile.mkdtemp(prefix="xstilts-bench-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    spec_ref = str(Path(args.spec).resolve()) if Path(args.spec).is_file() else args.spec
    load = os.getloadavg()[0]
    status, wall, peak, cpu = run_sweep(spec_ref, work)
    timely = wall <= WALL_TARGET_S
    cores = os.cpu_count() or 1
    print(f"quickstart: exit {status}, wall {wall:,.0f} s (target <= {WALL_TARGET_S} s: "
          f"{'PASS' if timely else 'FAIL'}), peak RSS of all processes {peak / 2**30:.2f} GiB "
          f"(target < 8 GiB)\n  load average {load:.1f} before, {os.getloadavg()[0]:.1f} "
          f"after; CPU time of its processes {cpu:,.0f} s, {cpu / cores:,.0f} s over "
          f"{cores} CPUs")  # fmt: skip
    if status != 0:
        sys.exit(status)
    lines = floor_lines(work, spec_ref)
    print("\n".join(text for text, _ in lines))
    sys.exit(0 if timely and all(ok for _, ok in lines) else 1)


if __name__ == "__main__":
    main()
