"""Planning a 10,000-cell sweep: time and peak memory of `expand` + `plan` (+ rendering).

The `scaling` spec with enough seeds for >= 10,000 cells (4 models x 11 intermediate
settings x 228 seeds = 10,032). Targets: under 5 s and under 1 GiB.

    .venv/bin/python bench/plan_bench.py
"""

from __future__ import annotations

import io
import resource
import time

from rich.console import Console

from orchestrator import plan_view
from orchestrator.grid import expand
from orchestrator.plan import plan
from orchestrator.spec import SweepSpec, load_spec


def main() -> None:
    raw = load_spec("scaling").model_dump()
    raw["seeds"] = list(range(228))
    start = time.perf_counter()
    spec = SweepSpec.model_validate(raw)
    cells = expand(spec)
    plans = plan(spec)
    planned = time.perf_counter() - start
    sink = Console(file=io.StringIO(), width=200)
    plan_view.Console = lambda: sink  # type: ignore[assignment,misc]
    plan_view.show_plan(spec, show_cells=True)
    total = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"plan_bench: {len(cells):,} cells ({len(plans):,} plans): validate+expand+plan "
          f"{planned:.2f} s, with the full cell table {total:.2f} s (target < 5 s); "
          f"peak RSS {peak:.2f} GiB (target < 1 GiB)")  # fmt: skip


if __name__ == "__main__":
    main()
