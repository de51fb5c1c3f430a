"""The resolved hyperparameters of one task in one phase: every field, typed, frozen.

The spec (`orchestrator.spec.PhaseConfig`) resolves recipe <- phase defaults <- task
override into a `PhaseHparams`; the training loop's `TrainSpec` is built from all of it, so
a key the loop does not know cannot exist rather than being ignored. `as_dict` is the plain
form, `key_dict` what enters a cell's `trial_key` digest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from evaluation.data.multitask import DEFAULT_CAP
from storage.errors import UserError

# `eval_every` this large scores the dev set once, after the last step (the loop always
# evaluates at the end): jiant's phase 2 without evaluation during training.
EVAL_AT_END = 2**31 - 1


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
    # Examples per forward pass (a divisor of batch_size; None: batch_size): the unit of
    # randomness, of loss normalisation and of work shared out among workers.
    micro_batch_size: int | None = None
    # Multi-task mixing (phase 2's `multitask`): p_i ∝ min(n_i, mix_cap); None: proportional
    # to the training-set sizes (`evaluation.data.multitask.MultitaskSampler`).
    mix_cap: int | None = DEFAULT_CAP

    def __post_init__(self) -> None:
        if self.micro_batch_size is not None and self.batch_size % self.micro_batch_size:
            raise UserError(
                f"micro_batch_size {self.micro_batch_size} does not divide batch_size "
                f"{self.batch_size}"
            )

    @property
    def units_per_step(self) -> int:
        """The micro-batches of one optimizer step: `grad_accum` x `batch_size` /
        `micro_batch_size` (`micro_units`)."""
        return micro_units(self.batch_size, self.grad_accum, self.micro_batch_size)

    def split_problem(self, task: str, workers: int, model: str) -> str | None:
        """Why a step of `task` cannot be shared out among `workers` of `model` (None: it
        can). Every worker computes as many micro-batches of each step (`trainers.loop`), so
        that the numbers do not depend on the workers (issue 16); `micro_batch_size` sets how
        many there are."""
        units = self.units_per_step
        if units % workers == 0:
            return None
        return (
            f"task {task}: {units} micro-batches of {self.micro_batch_size or self.batch_size} "
            f"per step (grad_accum {self.grad_accum} x batch_size {self.batch_size} / "
            f"micro_batch_size) do not split across {workers} workers of model {model}; set "
            "micro_batch_size (it enters the cell key) or grad_accum"
        )

    def as_dict(self) -> dict[str, Any]:
        """Every field by name, values untouched."""
        return asdict(self)

    def key_dict(self) -> dict[str, Any]:
        """What enters cell keys: `as_dict` without `micro_batch_size` where it is the
        default (None or `batch_size`) and without `mix_cap` where it is the default cap, so
        that specs that never set them keep their keys."""
        out = self.as_dict()
        if out["micro_batch_size"] in (None, self.batch_size):
            del out["micro_batch_size"]
        if out["mix_cap"] == DEFAULT_CAP:
            del out["mix_cap"]
        return out


def micro_units(batch_size: int, grad_accum: int, micro_batch_size: int | None) -> int:
    """The micro-batches of `micro_batch_size` examples (None: `batch_size`) one optimizer
    step computes; `micro_batch_size` divides `batch_size` (`PhaseHparams` checks it)."""
    return grad_accum * (batch_size // (micro_batch_size or batch_size))


def hparam_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(PhaseHparams))
