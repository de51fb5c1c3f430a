"""Orchestration overhead per cell: a 48-cell sweep whose cells do trivial work.

Each cell sleeps `--work` seconds and records one real fragment through the real hooks
(store + ledger), so the figure includes Ray Tune, the ledger, the store and the lease,
but no training. Overhead per cell = (wall - total work / parallel slots) / cells.
Target: under 1 s per cell on these machines.

    unshare --net sh -c 'ip link set lo up && .venv/bin/python bench/sweep_overhead.py'
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from orchestrator.driver import run_sweep
from orchestrator.spec import validate
from trainers.cell import CellHooks
from trainers.job import CellJob

WORK_S = 0.5


def trivial_cell(job: CellJob, hooks: CellHooks) -> None:
    """Stand-in for run_cell: no training, one fragment of 15 rows through the hooks."""
    time.sleep(WORK_S)
    for task in job.config.target_tasks:
        rows = [
            {"target_task": task, "language": f"l{i}", "split": "test", "metric": "accuracy",
             "value": 50.0 + i, "n_examples": 10}
            for i in range(15)
        ]  # fmt: skip
        hooks.record(task, rows)


def main() -> None:
    global WORK_S
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=float, default=WORK_S, help="seconds of work per cell")
    parser.add_argument("--slots", type=int, default=4, help="max concurrent trials")
    args = parser.parse_args()
    WORK_S = args.work
    root = Path(tempfile.mkdtemp(prefix="xstilts-overhead-"))
    spec = validate({
        "name": "overhead", "storage": str(root / "runs"),
        "models": ["tiny-s", "tiny-m", "tiny-l"],
        "intermediate_tasks": ["none", "mnli", "qqp", "squad"],
        "target_tasks": ["xnli"], "seeds": [0, 1, 2, 3],
        "scheduling": {"max_concurrent_trials": args.slots, "max_failures": 0},
    })  # fmt: skip
    start = time.monotonic()
    outcome = run_sweep(spec, runner=trivial_cell)
    wall = time.monotonic() - start
    cells = len(outcome.done) + len(outcome.failed) + len(outcome.unfinished)
    overhead = (wall - cells * WORK_S / args.slots) / cells
    print(f"sweep_overhead: {len(outcome.done)}/{cells} cells done in {wall:.1f} s with "
          f"{args.slots} slots; overhead {overhead:.2f} s per cell (target < 1 s)")  # fmt: skip


if __name__ == "__main__":
    main()
