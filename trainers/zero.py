"""DeepSpeed ZeRO as the `trainers.loop.Engine` of one worker among several.

`deepspeed.initialize` is the only wrapper: the loop's own `torch.optim.AdamW` (weight-decay
groups) and warm-up/decay schedule are passed in as the client optimizer and scheduler, so no
DeepSpeed op is compiled, and the loop calls the model's submodules as in one process. The
hyperparameters keep their meaning: `batch_size` x `grad_accum` is the global batch; every
worker draws the step's units (`trainers.loop`: the order is a pure function of the seed, the
RNGs are seeded per unit) and computes every world-th (`share`), as many units as DeepSpeed's
`gradient_accumulation_steps`, each of `train_micro_batch_size_per_gpu` = `micro_batch_size`
examples. DeepSpeed divides the gradients by the world size; `backward` multiplies each
unit's loss (the loop's unit mean / units in the step) by it, so that the step's gradient is
the sum over units / units, as in one process. DeepSpeed clips the global norm. Weights,
gradients and optimizer states are fp32, as in one process; on a GPU the loop's bf16 autocast
computes in bf16 (the same numerics as one process, not DeepSpeed's bf16 mode).

A checkpoint is one folder per worker, published through `publish` (on Ray Train:
`ray.train.report`, which merges the folders): every rank's `save_checkpoint` shard and
rank 0's `loop.pt` (step, data positions, early stopping, history, best weights, and the
layout, ZeRO stage and world size, it was written under). Only rank 0 keeps the best weights;
gathering them is a collective that every rank enters (ZeRO-3), none is rank-0-only.
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
from trainers.checkpoint import CheckpointStore, Resume
from trainers.loop import TrainSpec, make_optimizer

# (folder or None, metrics) -> None; called by every rank with its own folder.
Publish = Callable[[str | None, dict[str, Any]], None]
LOOP_FILE = "loop.pt"


@dataclass(frozen=True)
class ZeroConfig:
    stage: int  # 2 or 3
    offload: bool = False  # optimizer states (and their step) on the CPU
    hidden: int | None = None  # the model's hidden size: buckets sized for it (`buckets`)


def buckets(stage: int, hidden: int) -> dict[str, Any]:
    """ZeRO's communication settings for a transformer of width `hidden` (elements, not bytes).

    ZeRO-3 takes the rules of Hugging Face's DeepSpeed integration for its `auto` values
    (`transformers.integrations.deepspeed`): reduce bucket hidden², prefetch bucket
    0.9·hidden², parameters under 10·hidden kept whole on every rank. ZeRO-2 reduces and
    all-gathers one transformer layer's parameters (12·hidden²: attention 4·h², feed-forward
    8·h²) per bucket: one collective per layer, overlapped with the next layer's backward,
    where hidden² buckets would issue about seven per layer from a host-bound loop.
    Communication overlaps computation and gradients live in one contiguous buffer. None of
    this changes what is summed, only how it is grouped.
    """
    out: dict[str, Any] = {"overlap_comm": True, "contiguous_gradients": True}
    if stage == 3:
        return out | {
            "reduce_bucket_size": hidden * hidden,
            "stage3_prefetch_bucket_size": int(0.9 * hidden * hidden),
            "stage3_param_persistence_threshold": 10 * hidden,
        }
    layer = 12 * hidden * hidden
    return out | {"reduce_bucket_size": layer, "allgather_bucket_size": layer}


def ds_config(spec: TrainSpec, zero: ZeroConfig, world: int) -> dict[str, Any]:
    units = spec.units_per_step
    if units % world:
        raise UserError(
            f"{units} micro-batches of {spec.unit_size} per step do not split across {world} "
            "workers"
        )
    stage: dict[str, Any] = {"stage": zero.stage}
    if zero.hidden:
        stage.update(buckets(zero.stage, zero.hidden))
    if zero.offload:
        stage["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    return {
        "train_micro_batch_size_per_gpu": spec.unit_size,
        "gradient_accumulation_steps": units // world,
        "train_batch_size": spec.unit_size * units,
        "gradient_clipping": spec.max_grad_norm,
        "zero_optimization": stage,
        "zero_allow_untested_optimizer": True,
        "zero_force_ds_cpu_optimizer": False,  # the client AdamW steps on the CPU when offloaded
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }


def layout(zero: ZeroConfig, world: int) -> str:
    """How a phase's checkpoints are laid out (`trainers.checkpoint`: resumed only alike)."""
    return f"ZeRO-{zero.stage} x {world} workers" + (", offloaded" if zero.offload else "")


def tag(step: int) -> str:
    return f"step-{step:09d}"


class ZeroEngine:
    """`Engine` over a DeepSpeed ZeRO-2/3 engine; `resume_dir` is a merged checkpoint folder;
    `phase_store` the phase's `CheckpointStore`, where rank 0 records the layout."""

    def __init__(self, model: nn.Module, spec: TrainSpec, steps: int, zero: ZeroConfig,
                 publish: Publish, resume_dir: str | None, resume: Resume,
                 phase_store: CheckpointStore | None = None) -> None:  # fmt: skip
        import deepspeed
        import torch.distributed as dist

        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        on_cuda = torch.cuda.is_available() and not zero.offload  # where the optimizer steps
        optimizer, scheduler = make_optimizer(model, spec, steps, on_cuda)
        self.engine, *_ = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            lr_scheduler=scheduler,
            config=ds_config(spec, zero, self.world),
            dist_init_required=False,
        )
        self.module: nn.Module = self.engine.module
        self.stage, self.layout = zero.stage, layout(zero, self.world)
        self.publish, self.resume_dir, self.resume = publish, resume_dir, resume
        self.phase_store = phase_store if self.rank == 0 else None

    def start(self, seed: int) -> train_state.TrainState:
        train_state.seed_everything(seed)
        if self.resume_dir is None or self.resume is Resume.NEVER:
            if self.resume is Resume.ALWAYS:
                raise UserError("resume 'always': the Train run has no checkpoint")
            return train_state.TrainState()
        loop = _load(os.path.join(self.resume_dir, LOOP_FILE))
        self.engine.load_checkpoint(self.resume_dir, tag=tag(loop["step"]))
        if self.rank != 0 and loop["best_weights"] is not None:
            loop["best_weights"] = {}
        return from_dict(loop)

    def share(self, units: int) -> range:
        return range(self.rank, units, self.world)  # ds_config refused an uneven split

    def before_forward(self) -> None:
        """What `DeepSpeedEngine.forward` does first (the loop calls the submodules itself):
        ZeRO-3 counts the micro-step here, and accumulates rather than overwrites the
        gradients of every unit after a step's first."""
        from deepspeed.runtime.base_optimizer import ZeROOptimizer

        if isinstance(self.engine.optimizer, ZeROOptimizer):
            self.engine.optimizer.clear_backward_seen_flag()

    def backward(self, loss: torch.Tensor) -> None:
        # The loop divides by the step's units; DeepSpeed divides by the world size (undone
        # here) and steps at the accumulation boundary.
        # DeepSpeed 0.19 tells the ZeRO optimizer whether this unit ends the step in a
        # backward prologue hooked onto `DeepSpeedEngine.forward`'s outputs, which the loop
        # does not call; `engine.backward` tells it only after the backward, when the
        # gradient hooks have already reduced every full bucket. Offloaded, those buckets took
        # the previous unit's answer (ZeRO-2 and ZeRO-3 alike): the optimizer stepped on the
        # step's first unit's gradient alone, and the others were accumulated, never stepped.
        self.engine.optimizer.set_gradient_accumulation_boundary(
            self.engine.is_gradient_accumulation_boundary()
        )
        self.engine.backward(loss * self.world, scale_wrt_gas=False)
        self.engine.step()

    def step(self, loss: float) -> float:
        import torch.distributed as dist

        if self.stage == 3:
            _clear_zero3_gradients(self.engine.optimizer)
        total = torch.tensor([loss], dtype=torch.float64, device=self.engine.device)
        dist.all_reduce(total)
        return float(total.item())

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
            if self.phase_store is not None:
                self.phase_store.record_layout(self.layout)
                self.phase_store = None  # once per run
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


def _clear_zero3_gradients(optimizer: Any) -> None:
    """Zero ZeRO-3's gradient partitions once a step has used them.

    DeepSpeed's ZeRO-3 (0.19) copies a parameter's reduced gradient into its slot of a flat
    partition buffer at a step's first micro-batch and adds to the slot after, but never clears
    it: a parameter without a gradient in a step (the head of a multitask phase's task that drew
    none of the step's micro-batches) would be clipped with and stepped on the gradient of the
    last step that used it, and a gradient first reached at a later micro-batch would be added
    to that one. Offloaded, the optimizer's fp32 gradients persist the same way (a step copies
    only the gradients it reduced). One process and ZeRO-2 step such a parameter on zeros.
    """
    optimizer.grad_partitions_flat_buffer.zero_()
    if optimizer.offload_optimizer:
        for group in optimizer.fp32_partitioned_groups_flat:
            if group.grad is not None:
                group.grad.zero_()


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
