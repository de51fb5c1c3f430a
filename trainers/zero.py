"""DeepSpeed ZeRO as the `trainers.loop.Engine` of one worker among several.

`deepspeed.initialize` is the only wrapper: the loop's own `torch.optim.AdamW` (weight-decay
groups) and warm-up/decay schedule are passed in as the client optimizer and scheduler, so no
DeepSpeed op is compiled, and the loop calls the model's submodules as in one process. The
hyperparameters keep their meaning: `batch_size` is the global batch, every worker draws the
same batch (the data order is a pure function of the seed) and trains on its share
(`local`); DeepSpeed averages the gradients, clips the global norm and accumulates over
`grad_accum` micro-batches. bf16 on a GPU that supports it, fp32 otherwise.

A checkpoint is one folder per worker, published through `publish` (on Ray Train:
`ray.train.report`, which merges the folders): every rank's `save_checkpoint` shard, every
rank's RNG state, and rank 0's `loop.pt` (step, data positions, early stopping, history,
best weights). Only rank 0 keeps the best weights (16-bit on a GPU); gathering them is a
collective that every rank enters (ZeRO-3), none is rank-0-only.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from storage.errors import UserError
from trainers import state as train_state
from trainers.checkpoint import Resume
from trainers.heads import Feature
from trainers.loop import TrainSpec, make_optimizer

# (folder or None, metrics) -> None; called by every rank with its own folder.
Publish = Callable[[str | None, dict[str, Any]], None]
LOOP_FILE = "loop.pt"


@dataclass(frozen=True)
class ZeroConfig:
    stage: int  # 2 or 3
    offload: bool = False  # optimizer states (and their step) on the CPU
    bf16: bool = False


def ds_config(spec: TrainSpec, zero: ZeroConfig, world: int) -> dict[str, Any]:
    if spec.batch_size % world:
        raise UserError(f"batch_size {spec.batch_size} is not a multiple of {world} workers")
    stage: dict[str, Any] = {"stage": zero.stage}
    if zero.offload:
        stage["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    return {
        "train_micro_batch_size_per_gpu": spec.batch_size // world,
        "gradient_accumulation_steps": spec.grad_accum,
        "train_batch_size": spec.batch_size * spec.grad_accum,
        "gradient_clipping": spec.max_grad_norm,
        "zero_optimization": stage,
        "bf16": {"enabled": zero.bf16},
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,  # the client AdamW steps on the CPU when offloaded
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }


def tag(step: int) -> str:
    return f"step-{step:09d}"


class ZeroEngine:
    """`Engine` over a DeepSpeed ZeRO-2/3 engine; `resume_dir` is a merged checkpoint folder."""

    def __init__(self, model: nn.Module, spec: TrainSpec, steps: int, zero: ZeroConfig,
                 publish: Publish, resume_dir: str | None, resume: Resume) -> None:  # fmt: skip
        import deepspeed
        import torch.distributed as dist

        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        optimizer, scheduler = make_optimizer(model, spec, steps)
        self.engine, *_ = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            lr_scheduler=scheduler,
            config=ds_config(spec, zero, self.world),
            dist_init_required=False,
        )
        self.module: nn.Module = self.engine.module
        self.stage = zero.stage
        self.publish, self.resume_dir, self.resume = publish, resume_dir, resume

    def start(self, seed: int) -> train_state.TrainState:
        if self.resume_dir is None or self.resume is Resume.NEVER:
            if self.resume is Resume.ALWAYS:
                raise UserError("resume 'always': the Train run has no checkpoint")
            train_state.seed_everything(seed)
            return train_state.TrainState()
        loop = _load(os.path.join(self.resume_dir, LOOP_FILE))
        self.engine.load_checkpoint(self.resume_dir, tag=tag(loop["step"]))
        rng = os.path.join(self.resume_dir, f"rng-rank{self.rank}.pt")
        train_state.set_rng_state(_load(rng if os.path.exists(rng) else _rng_file(0, self)))
        if self.rank != 0 and loop["best_weights"] is not None:
            loop["best_weights"] = {}
        return from_dict(loop)

    def local(self, batch: list[Feature]) -> list[Feature]:
        if len(batch) < self.world:
            raise UserError(f"a batch of {len(batch)} cannot be shared by {self.world} workers")
        return batch[self.rank :: self.world]

    def backward(self, loss: torch.Tensor) -> None:
        # The loop divides by grad_accum itself; DeepSpeed steps at the accumulation boundary.
        self.engine.backward(loss, scale_wrt_gas=False)
        self.engine.step()

    def step(self, loss: float) -> float:
        import torch.distributed as dist

        total = torch.tensor([loss], dtype=torch.float64, device=self.engine.device)
        dist.all_reduce(total)
        return float(total.item()) / self.world

    def weights(self) -> dict[str, torch.Tensor]:
        """The full weights on rank 0 (on the CPU), {} elsewhere; every rank must call it."""
        with self._gathered(None):
            if self.rank != 0:
                return {}
            return {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()}

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Rank 0's `weights` into every rank's module (not the optimizer: after training)."""
        import torch.distributed as dist

        with self._gathered(0):
            if self.rank == 0:
                self.module.load_state_dict(weights)
        if self.stage < 3:
            for p in self.module.parameters():
                dist.broadcast(p.data, src=0)

    def save(self, state: train_state.TrainState) -> None:
        with tempfile.TemporaryDirectory(prefix="zero-ckpt-") as tmp:
            self.engine.save_checkpoint(tmp, tag=tag(state.step))
            torch.save(train_state.rng_state(), _rng_file(self.rank, self, tmp))
            if self.rank == 0:
                torch.save(to_dict(state), os.path.join(tmp, LOOP_FILE))
            last = state.history[-1] if state.history else {}
            self.publish(tmp, {"step": state.step, "loss": last.get("loss", float("nan"))})

    def _gathered(self, modifier_rank: int | None) -> Any:
        import deepspeed

        params = list(self.module.parameters())
        return deepspeed.zero.GatheredParameters(
            params, modifier_rank=modifier_rank, enabled=self.stage == 3
        )


def _rng_file(rank: int, engine: ZeroEngine, root: str | None = None) -> str:
    return os.path.join(root or engine.resume_dir or "", f"rng-rank{rank}.pt")


def _load(path: str) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def to_dict(state: train_state.TrainState) -> dict[str, Any]:
    out = {f.name: getattr(state, f.name) for f in fields(state)}
    out["orders"] = {k: list(v) for k, v in state.orders.items()}
    return out


def from_dict(saved: dict[str, Any]) -> train_state.TrainState:
    saved = dict(saved)
    saved["orders"] = {k: (int(v[0]), int(v[1])) for k, v in saved["orders"].items()}
    return train_state.TrainState(**saved)
