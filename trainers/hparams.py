"""The resolved hyperparameters of one task in one phase: every field, typed, frozen.

The spec (`orchestrator.spec.PhaseConfig`) resolves recipe <- phase defaults <- task
override into a `PhaseHparams`; the training loop's `TrainSpec` is built from all of it, so
a key the loop does not know cannot exist rather than being ignored. `as_dict` is the plain
form that enters a cell's `trial_key` digest: the same keys and values the spec resolved.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class PhaseHparams:
    lr: float
    batch_size: int
    grad_accum: int
    warmup_ratio: float
    max_seq_length: int
    eval_every: int
    patience: int  # 0: no early stopping
    weight_decay: float
    max_grad_norm: float
    epochs: float | None = None  # None: one epoch (unless max_steps ends it)
    max_steps: int | None = None  # None: epochs decide

    def as_dict(self) -> dict[str, Any]:
        """Every field by name, values untouched (what is hashed into cell keys)."""
        return asdict(self)


def hparam_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(PhaseHparams))
