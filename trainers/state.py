"""Everything a training run must carry across an interruption, and its (de)serialisation.

`TrainState` is the loop's own state (step, data order and position per task, early
stopping, best weights, history); `snapshot` adds model, optimizer, scheduler and every RNG
(python, numpy, torch, CUDA) as plain values; `start` restores all of it from the newest
intact checkpoint, or seeds a fresh run.
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from trainers.checkpoint import CheckpointStore, Resume

log = logging.getLogger("trainers")
Optim = tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]


@dataclass
class TrainState:
    step: int = 0
    orders: dict[str, tuple[int, int]] = field(default_factory=dict)  # task -> (epoch, pos)
    best_score: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    stopped: bool = False
    best_weights: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    drawn: dict[str, int] = field(default_factory=dict)  # micro-batches drawn per task


def permutation(seed: int, task: str, epoch: int, n: int) -> list[int]:
    """The order of a task's training features in one epoch: a pure function of its key."""
    key = int.from_bytes(hashlib.sha256(f"{seed}/{task}/{epoch}".encode()).digest()[:8], "big")
    generator = torch.Generator().manual_seed(key & (2**63 - 1))
    return torch.randperm(n, generator=generator).tolist()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [
            name,
            torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            pos,
            has_gauss,
            cached,
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def snapshot(model: nn.Module, opt: Optim, state: TrainState) -> dict[str, Any]:
    optimizer, scheduler = opt
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "loop": {
            "step": state.step,
            "orders": {k: list(v) for k, v in state.orders.items()},
            "best_score": state.best_score,
            "best_step": state.best_step,
            "bad_evals": state.bad_evals,
            "stopped": state.stopped,
            "history": state.history,
            "drawn": state.drawn,
        },
        "best_weights": state.best_weights,
    }


def restore(model: nn.Module, opt: Optim, saved: dict[str, Any]) -> TrainState:
    optimizer, scheduler = opt
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    set_rng_state(saved["rng"])
    loop = saved["loop"]
    return TrainState(
        step=loop["step"],
        orders={k: (int(v[0]), int(v[1])) for k, v in loop["orders"].items()},
        best_score=loop["best_score"],
        best_step=loop["best_step"],
        bad_evals=loop["bad_evals"],
        stopped=loop["stopped"],
        best_weights=saved["best_weights"],
        history=list(loop["history"]),
        drawn=dict(loop["drawn"]),
    )


def start(
    model: nn.Module, opt: Optim, seed: int, store: CheckpointStore | None, policy: Resume
) -> TrainState:
    """A fresh, seeded state, or the state of the newest intact checkpoint."""
    found = store.resume(policy) if store is not None else None
    if found is None:
        seed_everything(seed)
        return TrainState()
    step, saved = found
    log.info("resuming from step %d of %s", step, store.uri if store else "")
    return restore(model, opt, saved)
