"""Can a distributed cell ever run? Checked before any training, one line per refusal.

- **Gang scheduling.** Every worker of a Ray Train run holds its bundle (GPUs and CPUs per
  worker) at once, each bundle on one node. The cell is refused when the cluster's nodes
  (total resources of the live nodes, not what is free now) cannot hold all of them, rather
  than waiting for a placement that can never happen.
- **ZeRO-3 partitioning.** ZeRO-3 shards every parameter across the workers and gathers it
  in the forward hook of the module that owns it. A model cannot be partitioned when
  (a) its architecture is not one that transformers implements (a `local_dir` entry with
  custom code, `auto_map` in its config, or an unknown `model_type`): such code may read
  weights outside their module's forward and would see empty shards; or (b) it has fewer
  parameters than workers, so some worker would hold no shard at all.
- **CPU offload.** Offloaded optimizer states need about 16 bytes per parameter (fp32
  master weights, two Adam moments, gradients) in host memory, split across the workers;
  the workers that share the largest node must fit in this node's physical memory
  (`psutil.virtual_memory().total`; nodes are assumed alike).
- **Batch.** A step's `grad_accum` x `batch_size` examples are cut into micro-batches of
  `micro_batch_size` (`trainers.loop`); the workers share them out, as many each
  (`PhaseHparams.split_problem`, which `xstilts validate` runs over a whole spec too).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from storage.errors import UserError
from trainers.job import CellJob
from trainers.ladder import ModelEntry, Resources

OFFLOAD_BYTES_PER_PARAM = 16
Node = Mapping[str, float]  # resource name ("GPU", "CPU", ...) -> total on the node


def check_cell(
    job: CellJob, nodes: Sequence[Node] | None = None, memory: int | None = None
) -> None:
    """Refuse a distributed `CellJob` that cannot run (`nodes`, `memory`: Ray, psutil)."""
    model = job.config.model
    res = model.resources
    if res.zero_stage not in (None, 2, 3):
        raise UserError(f"model {model.name}: ZeRO stage {res.zero_stage} is not 2 or 3")
    check_batches(job, res.workers)
    if res.zero_stage == 3:
        check_partitionable(model, res.workers)
    nodes = live_nodes() if nodes is None else nodes
    check_gang(model.name, res, nodes)
    if res.offload:
        check_offload(model, res, nodes, memory)


def live_nodes() -> list[Node]:
    import ray

    return [n["Resources"] for n in ray.nodes() if n.get("Alive")]


def per_node(bundle: Mapping[str, float], node: Node) -> float:
    """How many bundles fit on one node (inf when the bundle asks for nothing)."""
    fits = [node.get(k, 0.0) // v for k, v in bundle.items() if v > 0]
    return min(fits) if fits else math.inf


def check_gang(model: str, res: Resources, nodes: Sequence[Node]) -> None:
    bundle = res.worker_bundle()
    room = sum(per_node(bundle, n) for n in nodes)
    if room < res.workers:
        have = {k: sum(n.get(k, 0.0) for n in nodes) for k in bundle}
        raise UserError(
            f"model {model}: {res.workers} workers x {_fmt(bundle)} can never be placed "
            f"together; the cluster ({len(nodes)} nodes, {_fmt(have)}) holds {int(room)}"
        )


def check_partitionable(model: ModelEntry, workers: int) -> None:
    from transformers import CONFIG_MAPPING

    custom = model.source == "local_dir" and "auto_map" in _config(model.location)
    if custom or model.architecture not in CONFIG_MAPPING:
        raise UserError(
            f"model {model.name}: ZeRO-3 cannot partition architecture {model.architecture!r} "
            "(custom model code); use zero_stage 2"
        )
    if model.params < workers:
        raise UserError(
            f"model {model.name}: ZeRO-3 cannot partition {model.params} parameters "
            f"across {workers} workers"
        )


def check_offload(
    model: ModelEntry, res: Resources, nodes: Sequence[Node], memory: int | None
) -> None:
    import psutil

    total = psutil.virtual_memory().total if memory is None else memory
    biggest = max((per_node(res.worker_bundle(), n) for n in nodes), default=1)
    sharing = min(res.workers, int(biggest) if math.isfinite(biggest) else res.workers)
    need = OFFLOAD_BYTES_PER_PARAM * model.params * sharing / res.workers
    if need > total:
        raise UserError(
            f"model {model.name}: offloading needs about {need / 2**30:.1f} GiB of CPU memory "
            f"per node ({sharing} of {res.workers} workers), this node has {total / 2**30:.1f}"
        )


def check_batches(job: CellJob, workers: int) -> None:
    from evaluation.tasks import get_task

    cfg = job.config
    trained = [*cfg.phase2_hparams.items()] + [
        (t, hp) for t, hp in cfg.phase3_hparams.items() if get_task(t).needs_target_training
    ]
    for task, hp in trained:
        problem = hp.split_problem(task, workers, cfg.model.name)
        if problem:
            raise UserError(problem)


def _config(location: str) -> dict[str, Any]:
    path = Path(location) / "config.json"
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _fmt(bundle: Mapping[str, float]) -> str:
    return ", ".join(f"{v:g} {k}" for k, v in bundle.items())
