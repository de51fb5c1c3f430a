"""DeepSpeed ZeRO through Ray Train inside a cell, on CPU: 2 workers, gloo, tiny-s.

Run the Ray tests in a private network namespace so that Ray binds 127.0.0.1:
``unshare --net sh -c 'ip link set lo up && .venv/bin/pytest -m integration
tests/trainers/test_distributed.py'``. Each starts its own Ray (4 logical CPUs, its own
temp dir) and shuts it down.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import RecordingHooks, cell_job
from ray import cloudpickle

from storage.errors import UserError
from trainers import distributed
from trainers.cell import run_cell
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
from trainers.hparams import PhaseHparams
from trainers.ladder import LADDER, ModelEntry, Resources
from trainers.loop import TrainSpec, train
from trainers.models import build_pretrained, load_dir
from trainers.phase import PHASE1_SEED, phase_model, phase_tasks
from trainers.placement import check_cell
from trainers.taskmodel import TaskModel
from trainers.zero import tag

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # test loops run in the workers

STEPS = 6
HP = {
    "lr": 1e-3,
    "max_steps": STEPS,
    "batch_size": 8,
    "micro_batch_size": 4,  # 2 units a step: one per worker
    "grad_accum": 1,
    "warmup_ratio": 0.0,
    "max_seq_length": 64,
    "eval_every": STEPS,
    "patience": 0,
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
}
ENV = {"DS_ACCELERATOR": "cpu", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
LOSS_TOLERANCE = 1e-6  # fp32, dropout on; measured 3e-8 (losses), 2.6e-7 (weights) in 6 steps
HEALTH_CHECK_S = 2  # ray.train.v2 DEFAULT_HEALTH_CHECK_INTERVAL_S
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


def phase2_run(job, name_task: str = "mnli") -> tuple[PhaseRun, TaskModel]:
    """The phase-2 run of `job` as `trainers.cell` would start it, and the trial's model."""
    cfg, data = job.config, job.config.data
    pre = build_pretrained(cfg.model, seed=PHASE1_SEED, corpus=data.corpus,
                           cache_dir=job.paths.cache_dir, corpus_key=data.corpus_key())  # fmt: skip
    model = phase_model(pre, ("mnli",), data, 7)
    source = start_source(job, pre)
    name = run_name(cfg.trial_key, "phase2", name_task)
    run = PhaseRun(job, "phase2", ("mnli",), cfg.phase2_hparams, 7, source, name,
                   job.paths.phase2_checkpoints)  # fmt: skip
    return run, model


def checkpoints(job, run: PhaseRun) -> list[Path]:
    root = Path(job.paths.train_storage) / run.name
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
        original = distributed.phase_model  # what the worker's `build` calls
        distributed.phase_model = lambda *a: no_dropout(original(*a))  # type: ignore[assignment]

    def on_step(step: int, loss: float) -> None:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps([rank, step, loss]) + "\n")
        if step in (stop_at, kill_at) and not marker.exists() and (kill_at is None or rank == 1):
            marker.touch()
            if kill_at is not None:
                # Train's controller collects reports every 2 s: one younger than that dies
                # with the worker, and the run resumes from the checkpoint before it.
                time.sleep(2 * HEALTH_CHECK_S + 1)
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
    assert {p.name for p in engine_dir.iterdir()} >= {"loop.pt", tag(STEPS)}  # no RNG state
    layout = tmp_path / "sw" / "phase2" / "p" / "checkpoints" / "layout.txt"
    assert layout.read_text() == f"ZeRO-{stage} x 2 workers"
    engine = get_fp32_state_dict_from_zero_checkpoint(str(engine_dir), tag=tag(STEPS))
    assert set(engine) == {k for k, _ in model.named_parameters()}
    for name, tensor in engine.items():  # fp32 on CPU: exact
        assert torch.equal(consolidated[name], tensor.float()), name
    load_consolidated(final_dir(job, run), model)  # what the trial does after fitting
    assert all(torch.equal(model.state_dict()[k], v) for k, v in engine.items())


def final_dir(job, run: PhaseRun) -> str:
    return str([c for c in checkpoints(job, run) if (c / DONE).exists()][-1])


# --- resume, a killed worker, loss equivalence -------------------------------------------------


@pytest.mark.integration
def test_stopped_run_resumes_from_its_checkpoint(fixture_root, tmp_path, ray_local) -> None:
    hp = {**HP, "eval_every": 3}  # a checkpoint every 3 steps
    job = dist_job(fixture_root, tmp_path, phase2_hparams={"mnli": hp}, max_failures=0)
    run, _ = phase2_run(job)
    log = tmp_path / "steps.jsonl"
    loop = functools.partial(logging_loop, log=str(log), stop_at=4)
    with pytest.raises(Exception, match="stopped after step 4"), fitted(run, loop):
        pass
    assert [s for s, _ in logged(log)] == [1, 2, 3, 4]
    log.write_text("")
    with fitted(run, loop) as final:  # same name: the run is restored, not started again
        assert json.loads((Path(final) / DONE).read_text())["steps"] == STEPS
    assert [s for s, _ in logged(log)] == [4, 5, 6]  # resumed at the step-3 checkpoint


@pytest.mark.integration
def test_killed_worker_is_replaced_and_the_run_finishes(fixture_root, tmp_path, ray_local) -> None:
    hp = {**HP, "eval_every": 2}
    job = dist_job(fixture_root, tmp_path, phase2_hparams={"mnli": hp}, max_failures=1)
    run, _ = phase2_run(job)
    log = tmp_path / "steps.jsonl"
    with fitted(run, functools.partial(logging_loop, log=str(log), kill_at=3)) as final:
        assert json.loads((Path(final) / DONE).read_text())["steps"] == STEPS
    assert Path(str(log) + ".failed").exists()
    steps = [s for s, _ in logged(log, rank=1)]
    assert steps == [1, 2, 3, 3, 4, 5, 6]  # killed after step 3, resumed from step 2


@pytest.mark.integration
@pytest.mark.parametrize("stage", [2, 3])
def test_zero_on_two_workers_matches_one_process(stage, fixture_root, tmp_path, ray_local) -> None:
    """Dropout on: the units' RNGs are keyed, so who computes a unit does not matter."""
    hp = {**HP, "micro_batch_size": 4, "grad_accum": 2}  # 4 units: 2 per worker
    loss_gap, weight_gap = gaps_to_one_process(fixture_root, tmp_path, dist_model(stage=stage), hp)
    print(f"ZeRO-{stage} x2 vs one process: losses within {loss_gap:.1e}, weights {weight_gap:.1e}")
    assert loss_gap < LOSS_TOLERANCE and weight_gap < LOSS_TOLERANCE


def gaps_to_one_process(root: Path, base: Path, model: ModelEntry, hp: dict) -> tuple[float, float]:
    """Phase 2 (mnli) of `model` on Ray Train and in one process: the largest gaps between
    their step losses and between their final weights."""
    job = dist_job(root, base, model=model, phase2_hparams={"mnli": hp})
    run, _ = phase2_run(job)
    log = base / "steps.jsonl"
    with fitted(run, functools.partial(logging_loop, log=str(log))) as final:
        zero = consolidated_state(final)
    data = job.config.data
    pre = load_dir(run.source)
    one = phase_model(pre, ("mnli",), data, run.seed)
    tasks = phase_tasks(data, pre, ("mnli",), job.config.phase2_hparams, job.paths.cache_dir)
    single: list[float] = []
    spec = TrainSpec.from_hparams(PhaseHparams(**hp), run.seed)
    train(one, tasks, spec, on_step=lambda step, loss: single.append(loss))
    losses = [loss for _, loss in logged(log)]
    assert len(losses) == len(single) == STEPS
    loss_gap = max(abs(a - b) for a, b in zip(losses, single, strict=True))
    weight_gap = max((zero[k] - v).abs().max().item() for k, v in one.state_dict().items()
                     if k in zero)  # fmt: skip
    return loss_gap, weight_gap


# --- resuming a half-trained phase under other resources ---------------------------------------


class StopAt(RecordingHooks):
    """Hooks that note phase 2's steps and stop the cell (as a kill would) after `stop`."""

    def __init__(self, stop: int | None = None) -> None:
        super().__init__()
        self.stop, self.steps = stop, []

    def progress(self, phase: str, target_task: str | None, detail: dict) -> None:
        super().progress(phase, target_task, detail)
        if phase == "phase2" and "step" in detail:
            self.steps.append(detail["step"])
            if detail["step"] == self.stop:
                raise RuntimeError(f"stopped after step {self.stop}")


REFUSED = (r"^the phase checkpointed in \S+/phase2/p/checkpoints was trained under {old} "
           r"and cannot resume under {new} \(the optimizer state is not mapped across "
           r"layouts\): run it under {old} again, or delete \S+ \(and its Ray Train run\) "
           r"to train it afresh$")  # fmt: skip


@pytest.mark.integration
def test_zero_phase_stopped_midway_is_refused_as_one_process(
    fixture_root, tmp_path, ray_local
) -> None:
    hp = {**HP, "eval_every": 3}  # a checkpoint at step 3
    job = dist_job(fixture_root, tmp_path, phase2_hparams={"mnli": hp}, max_failures=0)
    run, _ = phase2_run(job)
    loop = functools.partial(logging_loop, log=str(tmp_path / "steps.jsonl"), stop_at=4)
    with pytest.raises(Exception, match="stopped after step 4"), fitted(run, loop):
        pass
    one = dist_job(fixture_root, tmp_path, phase2_hparams={"mnli": hp}, model=LADDER["tiny-s"])
    with pytest.raises(UserError) as err:
        run_cell(one, RecordingHooks())
    pattern = REFUSED.format(old="ZeRO-2 x 2 workers", new="one process")
    assert re.match(pattern, one_line(err)), one_line(err)


@pytest.mark.integration
def test_one_process_phase_stopped_midway_is_refused_under_zero(
    fixture_root, tmp_path, ray_local
) -> None:
    hp = {**HP, "eval_every": 3}
    one = dist_job(fixture_root, tmp_path, phase2_hparams={"mnli": hp}, model=LADDER["tiny-s"])
    with pytest.raises(RuntimeError, match="stopped after step 4"):
        run_cell(one, StopAt(4))
    for workers, stage in ((2, 2), (2, 3)):
        zero = dist_job(fixture_root, tmp_path, phase2_hparams={"mnli": hp},
                        model=dist_model(workers=workers, stage=stage))  # fmt: skip
        with pytest.raises(UserError) as err:
            run_cell(zero, RecordingHooks())
        pattern = REFUSED.format(old="one process", new=f"ZeRO-{stage} x {workers} workers")
        assert re.match(pattern, one_line(err)), one_line(err)
    assert not (tmp_path / "sw" / "train").exists()  # refused before any Train run
    hooks = StopAt()
    run_cell(one, hooks)  # the layout it was checkpointed under resumes it
    assert hooks.steps == [4, 5, 6]


# --- a DeepSpeed cell through run_cell, and bad input -------------------------------------------


@pytest.mark.integration
def test_deepspeed_cell_writes_rows_of_the_same_schema(fixture_root, tmp_path, ray_local) -> None:
    plain, zero = RecordingHooks(), RecordingHooks()
    run_cell(dist_job(fixture_root, tmp_path / "plain", model=LADDER["tiny-s"]), plain)
    job = dist_job(fixture_root, tmp_path / "zero", stage=3)
    run_cell(job, zero)
    assert list(zero.rows) == list(plain.rows) == ["xnli"]
    assert ("mark_phase2_done", job.paths.phase2_final) in zero.calls
    schema = {(k, type(v)) for row in plain.rows["xnli"] for k, v in row.items()}
    assert {(k, type(v)) for row in zero.rows["xnli"] for k, v in row.items()} == schema
    assert {k for k, _ in schema} == ROW_KEYS
    keys = [(r["language"], r["metric"], r["n_examples"]) for r in plain.rows["xnli"]]
    assert [(r["language"], r["metric"], r["n_examples"]) for r in zero.rows["xnli"]] == keys
    train_runs = Path(job.paths.train_storage)
    assert sorted(p.name for p in train_runs.iterdir()) == ["k-phase2-mnli", "k-phase3-xnli"]


@pytest.mark.integration
def test_more_gpus_than_the_cluster_has_is_refused_at_once(
    fixture_root, tmp_path, ray_local
) -> None:
    job = dist_job(fixture_root, tmp_path, model=dist_model(workers=2, gpus_per_worker=1))
    with pytest.raises(UserError, match=r"2 workers x 1 CPU, 1 GPU can never be placed") as err:
        run_cell(job, RecordingHooks())
    assert "\n" not in str(err.value) and "holds 0" in str(err.value)
    assert not (tmp_path / "sw" / "phase2" / "p").exists()


NODE = {"CPU": 8.0, "GPU": 4.0}


def checked(tmp_path: Path, model: ModelEntry, nodes=(NODE,), memory: int = 2**36, **hp) -> None:
    phase = {"mnli": {**HP, "micro_batch_size": 2, **hp}}  # 4 units: up to 4 workers
    job = cell_job(tmp_path, tmp_path, model=model, phase2_hparams=phase, phase3_hparams={})
    check_cell(job, nodes=list(nodes), memory=memory)


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_gang_scheduling_counts_whole_bundles_per_node(tmp_path) -> None:
    model = dist_model(workers=4, gpus_per_worker=1, stage=2)
    checked(tmp_path, model, nodes=[NODE])  # 4 x 1 GPU on one 4-GPU node
    checked(tmp_path, model, nodes=[{"CPU": 2, "GPU": 2}] * 2)
    with pytest.raises(UserError) as err:
        checked(tmp_path, model, nodes=[{"CPU": 8, "GPU": 3}, {"CPU": 0, "GPU": 1}, {"CPU": 4}])
    assert one_line(err) == (
        "model tiny-s: 4 workers x 1 CPU, 1 GPU can never be placed together; "
        "the cluster (3 nodes, 12 CPU, 4 GPU) holds 3"
    )


def test_zero3_refuses_a_model_it_cannot_partition(tmp_path) -> None:
    res = Resources(workers=2, zero_stage=3)
    custom = dataclasses.replace(LADDER["tiny-s"], architecture="my-encoder", resources=res)
    with pytest.raises(UserError, match="ZeRO-3 cannot partition architecture 'my-encoder'"):
        checked(tmp_path, custom)
    (tmp_path / "remote").mkdir()
    (tmp_path / "remote" / "config.json").write_text('{"auto_map": {"AutoModel": "m.M"}}')
    local = dataclasses.replace(custom, architecture="xlm-roberta", source="local_dir",
                                location=str(tmp_path / "remote"))  # fmt: skip
    with pytest.raises(UserError, match="custom model code"):
        checked(tmp_path, local)
    tiny = dataclasses.replace(LADDER["tiny-s"], params=1, resources=res)
    with pytest.raises(UserError) as err:
        checked(tmp_path, tiny)
    assert one_line(err) == "model tiny-s: ZeRO-3 cannot partition 1 parameters across 2 workers"
    checked(tmp_path, dataclasses.replace(custom, architecture="xlm-roberta"))  # fine


def test_offload_needs_host_memory_for_the_optimizer_states(tmp_path) -> None:
    model = dataclasses.replace(dist_model(workers=4, gpus_per_worker=1, offload=True),
                                params=10_700_000_000)  # fmt: skip
    checked(tmp_path, model, memory=200 * 2**30)  # 16 B x 10.7e9 = 159 GiB on one node
    with pytest.raises(UserError) as err:
        checked(tmp_path, model, memory=64 * 2**30)
    assert one_line(err) == (
        "model tiny-s: offloading needs about 159.4 GiB of CPU memory per node "
        "(4 of 4 workers), this node has 64.0"
    )
    checked(tmp_path, model, nodes=[NODE_ONE_GPU] * 4, memory=64 * 2**30)  # one worker a node


NODE_ONE_GPU = {"CPU": 8.0, "GPU": 1.0}


def test_micro_batches_must_split_across_workers(tmp_path) -> None:
    with pytest.raises(UserError) as err:
        checked(tmp_path, dist_model(workers=2), batch_size=9, micro_batch_size=3)
    assert one_line(err) == (
        "task mnli: 3 micro-batches of 3 per step (grad_accum 1 x batch_size 9 / "
        "micro_batch_size) do not split across 2 workers of model tiny-s; set "
        "micro_batch_size (it enters the cell key) or grad_accum"
    )
    checked(tmp_path, dist_model(workers=2), batch_size=9, micro_batch_size=3, grad_accum=2)
    with pytest.raises(UserError, match=r"^micro_batch_size 4 does not divide batch_size 9$"):
        checked(tmp_path, dist_model(workers=2), batch_size=9, micro_batch_size=4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bf16 ZeRO-2)")
def test_bf16_consolidated_weights_match_the_engine_on_gpu(fixture_root, tmp_path) -> None:
    import ray

    temp = tempfile.mkdtemp(prefix="r", dir="/tmp")
    ray.init(address="local", _temp_dir=temp, include_dashboard=False)
    try:
        job = dist_job(fixture_root, tmp_path, model=dist_model(workers=1, gpus_per_worker=1))
        run, _ = phase2_run(job)
        with fitted(run) as final:
            consolidated = consolidated_state(final)
        assert consolidated["encoder.embeddings.word_embeddings.weight"].dtype == torch.float32
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        engine_dir = [c for c in checkpoints(job, run) if not (c / DONE).exists()][-1]
        engine = get_fp32_state_dict_from_zero_checkpoint(str(engine_dir), tag=tag(STEPS))
        for name, tensor in engine.items():  # fp32 weights, bf16 autocast compute: exact
            assert torch.equal(consolidated[name], tensor.float()), name
    finally:
        ray.shutdown()
