"""One training phase of a cell on Ray Train workers, with DeepSpeed ZeRO (Tune over Train).

`fit_phase` runs inside the cell's Tune trial: it builds a `ray.train.torch.TorchTrainer`
(Train V2) for one `PhaseRun` (phase 2, a target task's phase 3, or one of its stages: each
starts from an encoder URI and has its own checkpoint directory) with one worker per
`Resources.workers`, a run name derived from the trial key (or target key),
phase and task (the same name after a retry restores the run), storage under
`CellJob.paths.train_storage` and `FailureConfig(CellJob.config.max_failures)`, and fits it.
Each worker (`worker`) rebuilds the phase's model and data with `trainers.phase`, exactly as
the single-process path does,
runs the same `trainers.loop.train` with `trainers.zero.ZeroEngine`, resumes from
`ray.train.get_checkpoint()`, and ends with one consolidated Hugging Face model (the best
weights gathered to rank 0; `heads.safetensors` beside it) reported as the run's last
checkpoint, which `fit_phase` returns. The trial never loads it: Ray tasks with a worker's
bundle publish it and predict from it (`trainers.remote`), outside DeepSpeed, with the same
code as a single-process cell. A run whose last checkpoint is already the consolidated model
only reports it again. Asked to stop (`CellJob.runtime.stop`), the workers agree on one step
(`agreed_stop`), checkpoint it and end the run; `fit` then raises `StopRequested`, and the
next run resumes from that step.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from storage.files import Fence, fetch_dir
from trainers.checkpoint import CheckpointStore, Resume
from trainers.hparams import PhaseHparams
from trainers.job import CellJob
from trainers.loop import StepCallback, StopRequested, TrainSpec, total_steps, train
from trainers.models import Pretrained, load_dir
from trainers.phase import phase_model, phase_tasks, publish_encoder, train_spec
from trainers.taskmodel import TaskModel
from trainers.zero import ZeroConfig, ZeroEngine, layout

log = logging.getLogger("trainers")
DONE = "consolidated.json"
STOPPED = "stopped"  # a worker metric: the run stopped when asked, checkpointed
HEADS = "heads.safetensors"
KEEP = 2  # Train checkpoints kept per run: the last engine checkpoint and the final model


@dataclass(frozen=True)
class PhaseRun:
    """Everything a worker needs to rebuild one phase (plain, picklable values)."""

    job: CellJob
    phase: str  # "phase2" | "phase3"
    names: tuple[str, ...]
    hparams: Mapping[str, PhaseHparams]
    seed: int
    source: str  # the encoder to start from: a Hub id, a directory or a URI
    name: str  # the Train run name
    checkpoints: str  # the phase's `CheckpointStore`: the layout its checkpoints were made under


def run_name(trial_key: str, phase: str, task: str) -> str:
    return f"{trial_key}-{phase}-{task}"


def fit_phase(run: PhaseRun) -> Any:
    """Train the encoder and the heads of `run.names` on workers from `run.source`; the
    run's last checkpoint (`ray.train.Checkpoint`, the consolidated model).

    The write fence is checked before the run starts, and by every worker before each
    checkpoint it hands to Ray Train (which writes it to the Train storage).
    """
    job = run.job
    cfg = job.config
    if job.runtime.fence is not None:
        job.runtime.fence()
    if cfg.resume is not Resume.NEVER:
        res = cfg.model.resources
        store = CheckpointStore(run.checkpoints, job.runtime.fence)
        store.check_layout(layout(zero_config(job), res.workers))
    log.info("%s on %d workers: Train run %s", run.phase, cfg.model.resources.workers, run.name)
    return fit(run)


def phase2_run(job: CellJob, seed: int) -> PhaseRun:
    """Phase 2 of a cell as a Train run, from `start_source` (published already)."""
    cfg, paths = job.config, job.paths
    name = run_name(cfg.trial_key, "phase2", cfg.intermediate_task)
    source = start_source(job, None)
    return PhaseRun(job, "phase2", cfg.phase2_tasks, cfg.phase2_hparams, seed, source, name,
                    paths.phase2_checkpoints)  # fmt: skip


def phase3_run(job: CellJob, task: str, seed: int, source: str) -> PhaseRun:
    """Phase 3 of target task `task` as a Train run, from the encoder at `source` (the
    phase-2 encoder, or the last stage's: `trainers.stages`)."""
    cfg, paths = job.config, job.paths
    name = run_name(cfg.target_keys[task], "phase3", task)
    return PhaseRun(job, "phase3", (task,), cfg.phase3_hparams, seed, source, name,
                    paths.phase3_checkpoints(task))  # fmt: skip


def start_source(job: CellJob, pre: Pretrained | None) -> str:
    """Where phase 2 starts: the pretrained model (a model built from a config is published
    beside phase 2 first, as `phase1`: `pre` here, or already by the caller when None)."""
    if job.config.model.source != "local_config":
        return str(job.config.model.location)
    uri = job.paths.phase1_encoder
    if pre is not None:
        publish_encoder(pre, uri, job.paths.cache_dir, job.runtime.fence)
    return uri


def fit(run: PhaseRun, loop: Callable[[dict], None] | None = None) -> Any:
    """Fit the Train run; its last checkpoint (the consolidated model). A run its workers
    stopped when asked (`agreed_stop`) raises `StopRequested`: it resumes from there."""
    result = trainer(run, loop or worker).fit()
    if (result.metrics or {}).get(STOPPED):
        raise StopRequested(f"Train run {run.name}")
    if result.checkpoint is None:
        raise RuntimeError(f"Train run {run.name} ended without a checkpoint")
    return result.checkpoint


@contextlib.contextmanager
def fitted(run: PhaseRun, loop: Callable[[dict], None] | None = None) -> Any:
    """Fit the Train run; yield a local directory holding its consolidated model."""
    with fit(run, loop).as_directory() as final:
        yield final


def trainer(run: PhaseRun, loop: Callable[[dict], None]) -> Any:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    res = run.job.config.model.resources
    return TorchTrainer(
        loop,
        train_loop_config={"run": run},
        scaling_config=ScalingConfig(
            num_workers=res.workers,
            use_gpu=bool(res.gpus_per_worker),
            resources_per_worker=res.worker_bundle(),
        ),
        run_config=RunConfig(
            name=run.name,
            storage_path=run.job.paths.train_storage,
            failure_config=FailureConfig(max_failures=run.job.config.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=KEEP),
        ),
    )


# --- inside each Train worker ---------------------------------------------------------------


def worker(config: dict[str, Any]) -> None:
    """`train_loop_per_worker`: one phase on this rank; `config["on_step"]` is a test hook."""
    run_worker(config["run"], config.get("on_step"))


def run_worker(run: PhaseRun, on_step: StepCallback | None = None) -> None:
    import ray.train

    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    threads = run.job.runtime.threads or run.job.config.model.resources.cpus_per_worker
    torch.set_num_threads(max(1, int(threads)))
    fence = run.job.runtime.fence
    checkpoint = ray.train.get_checkpoint()
    opened = checkpoint.as_directory() if checkpoint else contextlib.nullcontext(None)
    with opened as resume_dir:
        if resume_dir and os.path.exists(os.path.join(resume_dir, DONE)):
            report_final(resume_dir if _rank() == 0 else None, {"resumed": True}, fence)
            return
        pre, model, tasks, spec = build(run)
        store = CheckpointStore(run.checkpoints, fence)
        engine = ZeroEngine(model, spec, total_steps(spec, tasks), zero_config(run.job),
                            functools.partial(report, fence=fence), resume_dir,
                            run.job.config.resume, store)  # fmt: skip
        try:
            result = train(model, tasks, spec, engine=engine,
                           on_step=agreed_stop(run.job.runtime.stop, on_step))  # fmt: skip
        except StopRequested:  # every rank checkpointed this step: end the run, not fail it
            ray.train.report({STOPPED: True})
            return
    weights = engine.weights()  # every rank: a collective under ZeRO-3
    with tempfile.TemporaryDirectory(prefix="consolidated-") as tmp:
        if _rank() == 0:
            write_consolidated(weights, pre, run, result.steps, tmp)
        report_final(tmp if _rank() == 0 else None, {"steps": result.steps}, fence)


def agreed_stop(
    stop: Callable[[], bool] | None, also: StepCallback | None = None
) -> StepCallback | None:
    """A step callback raising `StopRequested` on every rank at the same step once any
    rank's `stop()` says so (one all-reduce of a flag per step), after `also`."""
    if stop is None:
        return also

    def check(step: int, loss: float) -> None:
        if also is not None:
            also(step, loss)
        device = (
            torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else None
        )
        flag = torch.tensor([1.0 if stop() else 0.0], device=device)
        if torch.distributed.is_initialized():
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if flag.item() > 0:
            raise StopRequested(f"step {step}")

    return check


def build(run: PhaseRun) -> tuple[Pretrained, TaskModel, dict, TrainSpec]:
    """The phase's model and data, as the single-process path builds them."""
    cfg, cache_dir = run.job.config, run.job.paths.cache_dir
    if cfg.model.source == "hub" and run.phase == "phase2":
        pre = load_dir(run.source, cfg.model)  # the entry's shape checked, its attention kernel
    else:
        pre = load_dir(fetch_dir(run.source, os.path.join(cache_dir, "start", run.name)), cfg.model)
    model = phase_model(pre, run.names, cfg.data, run.seed, cfg.model.execution)
    tasks = phase_tasks(cfg.data, pre, run.names, run.hparams, cache_dir)
    return pre, model, tasks, train_spec(run.hparams[run.names[0]], run.seed, cfg.model.execution)


def zero_config(job: CellJob) -> ZeroConfig:
    res = job.config.model.resources
    hidden = job.config.model.hidden
    return ZeroConfig(stage=res.zero_stage or 2, offload=res.offload, hidden=hidden)


def report(directory: str | None, metrics: dict[str, Any], fence: Fence | None = None) -> None:
    """Report one step to Ray Train, with a checkpoint directory to persist (fenced)."""
    import ray.train

    if directory is not None and fence is not None:
        fence()
    checkpoint = ray.train.Checkpoint.from_directory(directory) if directory else None
    ray.train.report(metrics, checkpoint=checkpoint)


def report_final(directory: str | None, metrics: dict[str, Any], fence: Fence | None) -> None:
    """Every rank reports; rank 0 with the consolidated model (copied: it may be restored)."""
    if directory is None:
        report(None, metrics, fence)
        return
    with tempfile.TemporaryDirectory(prefix="final-") as tmp:
        shutil.copytree(directory, tmp, dirs_exist_ok=True)
        report(tmp, metrics, fence)


def _rank() -> int:
    import ray.train

    return int(ray.train.get_context().get_world_rank())


# --- the consolidated model -----------------------------------------------------------------


def write_consolidated(
    weights: dict[str, torch.Tensor], pre: Pretrained, run: PhaseRun, steps: int, out: str
) -> None:
    """`weights` (a TaskModel's full state) as a Hugging Face encoder + tokenizer + heads."""
    from transformers import AutoModel

    encoder = _part(weights, "encoder.")
    heads = {k: v.contiguous() for k, v in _part(weights, "heads.").items()}
    with torch.device("meta"):
        model = AutoModel.from_config(pre.encoder.config)
    model.load_state_dict(encoder, strict=True, assign=True)
    model.save_pretrained(out)
    pre.tokenizer.save_pretrained(out)  # type: ignore[attr-defined]
    save_file(heads, os.path.join(out, HEADS))
    done = {"run": run.name, "phase": run.phase, "tasks": list(run.names), "steps": steps}
    with open(os.path.join(out, DONE), "w", encoding="utf-8") as f:
        json.dump(done, f)


def _part(weights: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)}


def consolidated_state(directory: str) -> dict[str, torch.Tensor]:
    """A TaskModel state dict from a consolidated folder (encoder and heads)."""
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(directory, dtype=torch.float32)
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    state.update({f"heads.{k}": v for k, v in load_file(os.path.join(directory, HEADS)).items()})
    return state


def load_consolidated(directory: str, model: TaskModel) -> None:
    model.load_state_dict(consolidated_state(directory), strict=True)
