"""Scheduling quality on a simulated cluster: the 132-cell `scaling` grid.

Declares logical GPUs with `ray.cluster_utils.Cluster` (default 8 nodes x 8 GPUs), runs
one Ray Tune trial per cell, each holding its model's GPUs as one gang (a placement group
packed on one node) and sleeping for its cost-model duration (`orchestrator.plan`) scaled
down `--scale` times. Cells are released as `xstilts run` releases them: longest estimated
wall time first (`plan.longest_first`), each as soon as its gang fits
(`orchestrator.scheduling`). Prints the makespan (from `Tuner.fit` to its return)
divided by the lower bound max(total GPU-time / GPUs, longest cell). Target: <= 1.15.

    unshare --net sh -c 'ip link set lo up && .venv/bin/python bench/simulated_cluster.py'
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import ray
from ray import tune
from ray.cluster_utils import Cluster

from orchestrator.plan import longest_first, plan
from orchestrator.scheduling import Gang, tuner_settings
from orchestrator.spec import load_spec
from trainers.ladder import LADDER


def sleeper(config: dict, seconds: dict[str, float], trace: str | None) -> None:
    start = time.time()
    time.sleep(seconds[config["trial_key"]])
    if trace:  # one JSON line per cell: when and where it ran
        node = ray.get_runtime_context().get_node_id()
        line = {"key": config["trial_key"], "node": node, "start": start, "end": time.time()}
        with open(trace, "a") as f:
            f.write(json.dumps(line) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--scale", type=float, default=1000.0, help="time scale-down factor")
    parser.add_argument("--trace", help="append each cell's start, end and node here (JSONL)")
    args = parser.parse_args()
    cells = plan(load_spec("scaling"))
    gpus = {p.cell.trial_key: LADDER[p.cell.model].resources.workers for p in cells}
    seconds = {p.cell.trial_key: p.gpu_hours * 3600 / gpus[p.cell.trial_key] / args.scale
               for p in cells}  # fmt: skip
    total_gpus = args.nodes * args.gpus_per_node
    bound = max(sum(seconds[k] * gpus[k] for k in seconds) / total_gpus, max(seconds.values()))

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(args.nodes):
        cluster.add_node(num_cpus=args.gpus_per_node, num_gpus=args.gpus_per_node)
    ray.init(address=cluster.address, log_to_driver=False)
    order = [c.trial_key for c in longest_first(load_spec("scaling"), cells)]
    gang = {k: Gang(({"CPU": 1.0, "GPU": 1.0},) * gpus[k]) for k in order}
    trainable = tune.with_resources(
        tune.with_parameters(sleeper, seconds=seconds, trace=args.trace),
        lambda config: tune.PlacementGroupFactory(
            [dict(b) for b in gang[config["trial_key"]].bundles], strategy="STRICT_PACK"
        ),
    )
    # As `xstilts run` would: at most as many trials as the smallest cells fit at once.
    slots = total_gpus // min(gpus.values())
    config, space = tuner_settings(order, gang, slots, durations=seconds)
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=config,
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(), verbose=0),
    )
    start = time.monotonic()
    tuner.fit()
    makespan = time.monotonic() - start
    ray.shutdown()
    cluster.shutdown()
    print(f"simulated_cluster: {len(cells)} cells on {args.nodes}x{args.gpus_per_node} GPUs, "
          f"scale 1/{args.scale:g}: makespan {makespan:.1f} s, lower bound {bound:.1f} s, "
          f"ratio {makespan / bound:.3f} (target <= 1.15)")  # fmt: skip


if __name__ == "__main__":
    main()
