"""Everything a training run must carry across an interruption, and its (de)serialisation.

`TrainState` is the loop's own state (step, data order and position per task, early
stopping, best weights, history); `snapshot` adds model, optimizer and scheduler as plain
values; `start` restores all of it from the newest intact checkpoint, or seeds a fresh run.

No RNG state is carried: every random draw of training is keyed (`permutation` by seed, task
and epoch; `seed_unit` by seed, step and unit right before a unit's forward pass), so a
resumed run, on any number of processes, draws what an uninterrupted one would.
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


def _key(*parts: object) -> int:
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def permutation(seed: int, task: str, epoch: int, n: int) -> list[int]:
    """The order of a task's training features in one epoch: a pure function of its key."""
    generator = torch.Generator().manual_seed(_key(seed, task, epoch))
    return torch.randperm(n, generator=generator).tolist()


def seed_unit(seed: int, step: int, unit: int) -> None:
    """Seed every RNG (python, numpy, torch on the CPU and every GPU) for one unit of a step."""
    seed_everything(_key(seed, "unit", step, unit))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def snapshot(model: nn.Module, opt: Optim, state: TrainState) -> dict[str, Any]:
    optimizer, scheduler = opt
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
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
