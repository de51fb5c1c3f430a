"""Node loss: the node running a cell disappears mid-training; the cell still finishes,
resuming from its last checkpoint on the other node (ray.cluster_utils.Cluster)."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from evaluation.data.fixtures import write_fixtures
from evaluation.scorers import row_metrics
from evaluation.tasks import get_task
from orchestrator.driver import run_sweep
from orchestrator.spec import validate
from storage.results import ResultsStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# faults.py (pause points, the trace) rides into the Ray workers by value.
if "faults" in sys.modules:
    faults = sys.modules["faults"]
else:
    _spec = importlib.util.spec_from_file_location("faults", Path(__file__).with_name("faults.py"))
    assert _spec is not None and _spec.loader is not None
    faults = importlib.util.module_from_spec(_spec)
    sys.modules["faults"] = faults
    _spec.loader.exec_module(faults)


def remove_node_when_paused(cluster: Cluster, marker: Path, removed: list[str]) -> None:
    """Wait for the paused trial, find the node running it, remove that node ungracefully."""
    from ray.util.state import list_workers

    deadline = time.monotonic() + 300
    while not marker.exists():
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)
    pid = int(marker.read_text().split()[1])
    workers = list_workers(filters=[("pid", "=", pid)], raise_on_missing_output=False)
    node_id = workers[0].node_id
    node = next(n for n in cluster.worker_nodes if n.node_id == node_id)
    cluster.remove_node(node, allow_graceful=False)
    removed.append(node_id)


def test_cell_survives_the_loss_of_its_node(tmp_path: Path) -> None:
    fixtures = write_fixtures(tmp_path / "fixtures", n_per_split=48)
    marker, trace = tmp_path / "paused", tmp_path / "trace"
    runner = faults.FaultyRunner(pause_at="phase2_step:8", marker=str(marker), trace=str(trace))
    env = {"TOKENIZERS_PARALLELISM": "false"}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, runtime_env={"env_vars": env}, log_to_driver=False)
    removed: list[str] = []
    watcher = threading.Thread(target=remove_node_when_paused, args=(cluster, marker, removed))
    watcher.start()
    try:
        spec = validate({
            "name": "nodeloss", "storage": str(tmp_path / "runs"), "models": ["tiny-s"],
            "intermediate_tasks": ["mnli"], "target_tasks": ["xnli"], "seeds": [0],
            "data": {"source": "local", "local_dir": str(fixtures),
                     "max_examples": {"train": 96, "dev": 16, "eval": 12}},
            "phase2": {"defaults": {"lr": 1.0e-3, "max_steps": 14, "batch_size": 8,
                                    "grad_accum": 1, "max_seq_length": 48, "eval_every": 5}},
            "phase3": {"defaults": {"lr": 1.0e-3, "max_steps": 6, "batch_size": 8,
                                    "grad_accum": 1, "max_seq_length": 48, "eval_every": 3}},
            "scheduling": {"max_failures": 2},
        })  # fmt: skip
        outcome = run_sweep(spec, runner=runner)
    finally:
        watcher.join(timeout=30)
        ray.shutdown()
        cluster.shutdown()
    assert removed, "the cell's node was never removed"
    assert outcome.exit_code == 0, outcome.failed
    xnli = get_task("xnli")
    rows = ResultsStore(str(tmp_path / "runs"), "nodeloss").read().num_rows
    assert rows == len(xnli.languages) * len(row_metrics(xnli))
    # The second attempt resumed phase 2 from the step-5 checkpoint, not from step 1.
    lines = [ln.split() for ln in trace.read_text().splitlines() if " phase2 " in ln]
    first_step = {ln[1]: int(ln[4]) for ln in reversed(lines)}
    assert first_step["attempt=0"] == 1
    assert first_step["attempt=1"] == 6
