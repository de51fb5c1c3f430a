"""DeepSpeed ZeRO through Ray Train inside a cell, on CPU: 2 workers, gloo, tiny-s.

Run the Ray tests in a private network namespace so that Ray binds 127.0.0.1:
``unshare --net sh -c 'ip link set lo up && .venv/bin/pytest -m integration
tests/trainers/test_distributed.py'``. Each starts its own Ray (4 logical CPUs, its own
temp dir) and shuts it down.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import cell_job
from ray import cloudpickle

from trainers import cell
from trainers.distributed import (
    DONE,
    PhaseRun,
    consolidated_state,
    fitted,
    load_consolidated,
    run_name,
    run_worker,
    start_source,
)
from trainers.ladder import LADDER, ModelEntry, Resources
from trainers.zero import tag

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # test loops run in the workers

STEPS = 6
HP = {
    "lr": 1e-3,
    "max_steps": STEPS,
    "batch_size": 8,
    "grad_accum": 1,
    "warmup_ratio": 0.0,
    "max_seq_length": 64,
    "eval_every": STEPS,
    "patience": 0,
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
}
ENV = {"DS_ACCELERATOR": "cpu", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
ROW_KEYS = {"target_task", "language", "split", "metric", "value", "n_examples"}


def dist_model(workers: int = 2, stage: int | None = 2, **res) -> ModelEntry:
    resources = Resources(workers=workers, cpus_per_worker=1, zero_stage=stage, **res)
    return dataclasses.replace(LADDER["tiny-s"], resources=resources)


def dist_job(root: Path, base: Path, stage: int = 2, **changes):
    fields = dict(
        model=dist_model(stage=stage),
        phase2_hparams={"mnli": HP},
        phase3_hparams={"xnli": HP},
        target_tasks=("xnli",),
        max_train=64,
    )
    fields.update(changes)
    return cell_job(root, base, **fields)


@pytest.fixture
def ray_local(tmp_path: Path) -> Iterator[None]:
    import ray

    # AF_UNIX socket paths are limited to 107 bytes: a short folder beside tmp_path's root.
    temp = tempfile.mkdtemp(prefix="r", dir=tmp_path.anchor + "tmp")
    ray.init(address="local", num_cpus=4, runtime_env={"env_vars": ENV}, _temp_dir=temp,
             include_dashboard=False, log_to_driver=False)  # fmt: skip
    yield
    ray.shutdown()


def phase2_run(job, name_task: str = "mnli") -> tuple[PhaseRun, cell.TaskModel]:
    """The phase-2 run of `job` as `trainers.cell` would start it, and the trial's model."""
    data = cell.data_access(job)
    pre = cell.build_pretrained(job.model, seed=cell.PHASE1_SEED, corpus=data.corpus,
                                cache_dir=job.cache_dir, corpus_key=data.corpus_key())  # fmt: skip
    model = cell.phase_model(pre, ("mnli",), data, 7)
    source = start_source(job, pre, "phase2")
    name = run_name(job.trial_key, "phase2", name_task)
    return PhaseRun(job, "phase2", ("mnli",), job.phase2_hparams, 7, source, name), model


def checkpoints(job, run: PhaseRun) -> list[Path]:
    root = Path(job.cell_dir) / "train" / run.name
    return sorted(p for p in root.glob("checkpoint_*") if p.is_dir())


def no_dropout(model: torch.nn.Module) -> torch.nn.Module:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        setattr(model.encoder.config, key, 0.0)
    return model


def logging_loop(config: dict, log: str, stop_at: int | None = None, kill_at: int | None = None,
                 dropout: bool = True) -> None:  # fmt: skip
    """A worker loop: `run_worker` with an on_step that logs (rank, step, loss) and can fail
    once (marker file beside the log): raise at `stop_at`, or SIGKILL rank 1 at `kill_at`."""
    import ray.train

    rank = ray.train.get_context().get_world_rank()
    marker = Path(log + ".failed")
    if not dropout:
        original = cell.phase_model
        cell.phase_model = lambda *a: no_dropout(original(*a))  # type: ignore[assignment]

    def on_step(step: int, loss: float) -> None:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps([rank, step, loss]) + "\n")
        if step in (stop_at, kill_at) and not marker.exists() and (kill_at is None or rank == 1):
            marker.touch()
            if kill_at is not None:
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"stopped after step {step}")

    run_worker(config["run"], on_step)


def logged(log: Path, rank: int = 0) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    return [(step, loss) for r, step, loss in rows if r == rank]


# --- ZeRO-2 / ZeRO-3 training, checkpoints, consolidation ------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("stage", [2, 3])
def test_zero_trains_checkpoints_and_consolidates(stage, fixture_root, tmp_path, ray_local) -> None:
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    job = dist_job(fixture_root, tmp_path, stage=stage)
    run, model = phase2_run(job)
    with fitted(run) as final:
        done = json.loads((Path(final) / DONE).read_text())
        consolidated = consolidated_state(final)
    assert done == {"run": run.name, "phase": "phase2", "tasks": ["mnli"], "steps": STEPS}
    engine_dir = [c for c in checkpoints(job, run) if not (c / DONE).exists()][-1]
    assert {p.name for p in engine_dir.iterdir()} >= {"loop.pt", "rng-rank0.pt", "rng-rank1.pt"}
    engine = get_fp32_state_dict_from_zero_checkpoint(str(engine_dir), tag=tag(STEPS))
    assert set(engine) == {k for k, _ in model.named_parameters()}
    for name, tensor in engine.items():  # fp32 on CPU: exact
        assert torch.equal(consolidated[name], tensor.float()), name
    load_consolidated(final_dir(job, run), model)  # what the trial does after fitting
    assert all(torch.equal(model.state_dict()[k], v) for k, v in engine.items())


def final_dir(job, run: PhaseRun) -> str:
    return str([c for c in checkpoints(job, run) if (c / DONE).exists()][-1])
