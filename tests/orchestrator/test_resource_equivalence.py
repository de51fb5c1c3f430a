"""Resources never change a cell's numbers: one cell through `xstilts run`, dropout on.

The same spec (tiny-s, mnli -> udpos, dropout as shipped) runs as one process, as DeepSpeed
ZeRO-2 on 2 workers and as ZeRO-3 on 2 workers (CPU, gloo), each in its own storage root;
the three stores must hold the same keys and the same values. A step has 4 units of 4
examples (batch 8 x grad_accum 2 / micro_batch_size 4): one process computes all four,
each worker two, with accumulation.

Bound: 1e-6 relative for every metric. One process sums the 4 units' gradients in order; 2
workers each sum two and DeepSpeed sums the two partial sums, and clips with its own norm
(sum of squares over partitions) where torch takes a norm of per-tensor norms: the same
numbers in another order, so the weights agree to a few float32 ulps. Scores are ratios of
counts (equal unless a prediction sits at an exact tie); `nll` moves with the weights.
Measured (printed): f1/precision/recall equal, nll within 9e-9, nll_se within 2e-7.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sweeps  # tests/orchestrator/sweeps.py, registered by conftest

from evaluation.data.fixtures import write_fixtures
from evaluation.tasks import get_task
from storage.results import ResultsStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HP = {"lr": 1.0e-3, "max_steps": 6, "batch_size": 8, "micro_batch_size": 4, "grad_accum": 2,
      "max_seq_length": 48, "eval_every": 3, "patience": 3}  # fmt: skip
CELL = {
    "models": ["tiny-s"],
    "intermediate_tasks": ["mnli"],
    "target_tasks": ["udpos"],
    "phase2": {"defaults": HP},
    "phase3": {"defaults": HP},
    "scheduling": {"max_concurrent_trials": 1, "max_failures": 0},
}
LAYOUTS = {
    "one process": None,
    "ZeRO-2 x 2": {"workers": 2, "zero_stage": 2, "cpus_per_worker": 1},
    "ZeRO-3 x 2": {"workers": 2, "zero_stage": 3, "cpus_per_worker": 1},
}
RELATIVE = 1e-6


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fixtures(
        tmp_path_factory.mktemp("fixtures") / "data", n_per_split=24, n_train=96,
        tasks=[get_task("mnli"), get_task("udpos")],
    )  # fmt: skip


def run_layout(tmp: Path, fixtures: Path, resources: dict | None) -> dict[tuple, float]:
    extra = {"resources": {"tiny-s": resources}} if resources else {}
    tmp.mkdir()
    spec = sweeps.write_spec(tmp / "cell.yaml", str(tmp / "runs"), fixtures, **CELL, **extra)
    out = sweeps.run(spec, tmp)
    assert out.returncode == 0, out.stderr[-3000:]
    return sweeps.logical(ResultsStore(str(tmp / "runs"), "mini").read())


def relative_gap(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def test_one_cell_gives_the_same_rows_on_any_resources(tmp_path: Path, fixtures: Path) -> None:
    stores = {name: run_layout(tmp_path / f"l{i}", fixtures, res)
              for i, (name, res) in enumerate(LAYOUTS.items())}  # fmt: skip
    reference = stores["one process"]
    assert {k[2] for k in reference} == set(get_task("udpos").languages)
    worst: dict[tuple[str, str], float] = {}
    for name, rows in stores.items():
        assert rows.keys() == reference.keys(), name  # one trial_key: resources not in it
        for key, value in rows.items():
            gap = relative_gap(value, reference[key])
            worst[name, key[-1]] = max(worst.get((name, key[-1]), 0.0), gap)
    print("largest relative gap to one process, per layout and metric:", worst)
    for (name, metric), gap in worst.items():
        assert gap <= RELATIVE, (name, metric, gap)
