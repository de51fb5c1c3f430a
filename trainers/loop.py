"""The one training loop of phases 2 and 3.

A phase is a `TrainSpec` (plain values) plus the tasks it trains, each with its own head on
the shared encoder: one task for phase 3 and single-task phase 2, several for multitask
phase 2 (micro-batch i comes from the task that `evaluation.data.multitask`'s
sampler assigns to i). AdamW without decay on biases and
LayerNorm (fused or multi-tensor kernels: `adamw_kernel`), linear warm-up and decay, gradient
clipping and accumulation, bf16 autocast when `precision` says so. Every `eval_every` steps
the headline metric on the
English dev examples (mean over tasks) drives early stopping with `patience` (0: none);
the best weights are reloaded at the end. Checkpoints (`trainers.checkpoint`) hold every
piece of state, so a resumed run ends exactly where an uninterrupted one would.

Numbers do not depend on resources. An optimizer step draws `grad_accum` batches of
`batch_size` features (the order a pure function of seed, task and epoch) and cuts each into
units of `micro_batch_size`: the step's global units, numbered in order. A unit is the unit
of randomness (the RNGs are seeded from seed, step and unit number right before its batch is
collated and run: dropout and MLM masks do not depend on who computes it), of loss
normalisation (each unit's mean loss, divided by the number of units in the step) and of
work: the `Engine` says which
units this process computes (all of them in one process, every world-th under ZeRO) and sums
the gradients. Only `micro_batch_size` can change the numbers, and it enters the cell key.

Weights, optimizer and checkpoints belong to an `Engine`: `TorchEngine` here is the
single-process one; `trainers.zero.ZeroEngine` is DeepSpeed ZeRO on one of several workers.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from evaluation.data.multitask import DEFAULT_CAP, MultitaskSampler
from evaluation.predict import golds
from evaluation.scorers import get_scorer
from evaluation.tasks import TaskSpec
from storage.errors import UserError
from trainers import state as train_state
from trainers.checkpoint import ONE_PROCESS, CheckpointStore, Resume
from trainers.formats import head_for
from trainers.heads import Feature
from trainers.hparams import PhaseHparams, micro_units
from trainers.precision import bf16_autocast
from trainers.taskmodel import TaskModel, Tokenization, _to, predictor

log = logging.getLogger("trainers")


@dataclass(frozen=True)
class TrainSpec:
    lr: float
    batch_size: int
    grad_accum: int
    warmup_ratio: float
    eval_every: int
    patience: int
    weight_decay: float
    max_grad_norm: float
    seed: int
    epochs: float | None = None
    max_steps: int | None = None
    max_seq_length: int | None = None  # what the tasks were tokenised to (`trainers.phase`)
    checkpoint_every: int | None = None  # default: eval_every
    eval_batch_size: int = 64
    micro_batch_size: int | None = None  # None: batch_size
    precision: str = "fp32"  # "bf16": forward passes under bf16 autocast (`trainers.precision`)
    fused_optimizer: bool = True  # AdamW's fused kernel on CUDA, its foreach form elsewhere
    mix_cap: int | None = DEFAULT_CAP  # multitask mixing: p_i ∝ min(n_i, cap); None: ∝ n_i

    @property
    def unit_size(self) -> int:
        return self.micro_batch_size or self.batch_size

    @property
    def units_per_step(self) -> int:
        """The global units of one optimizer step (`batch_size` must be a multiple of
        `micro_batch_size`; `trainers.placement` refuses a spec where it is not)."""
        return micro_units(self.batch_size, self.grad_accum, self.micro_batch_size)

    @classmethod
    def from_hparams(cls, hparams: PhaseHparams, seed: int, **extra: Any) -> TrainSpec:
        """Every field of `hparams` (a field TrainSpec lacks is a TypeError, not dropped)."""
        return cls(seed=seed, **hparams.as_dict(), **extra)


@dataclass
class TaskData:
    """One task of a phase: spec, training features, English dev examples, tokenization."""

    spec: TaskSpec
    train: list[Feature]
    dev: Sequence[Any]
    tok: Tokenization


@dataclass
class TrainResult:
    steps: int
    best_score: float | None
    best_step: int | None
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)
    drawn: dict[str, int] = field(default_factory=dict)  # micro-batches per task


StepCallback = Callable[[int, float], None]
# (step, {"lr", "samples_per_s", and "dev_score" at an evaluation}): what a tracker logs;
# called right before `on_step`, and never stops training.
MetricsCallback = Callable[[int, dict[str, float]], None]


class StopRequested(Exception):
    """Raised by a `StepCallback` to stop training: the loop checkpoints this step first."""


class Engine(Protocol):
    """What the loop asks of the owner of weights, optimizer and checkpoints."""

    def start(self, seed: int) -> train_state.TrainState: ...  # fresh (seeded) or resumed

    def share(self, units: int) -> Sequence[int]: ...  # the step's units this process computes

    def before_forward(self) -> None: ...  # right before each unit's forward pass

    def backward(self, loss: torch.Tensor) -> None: ...  # one unit, loss / units in the step

    def step(self, loss: float) -> float: ...  # optimizer step; returns the global loss

    def weights(self) -> dict[str, torch.Tensor]: ...  # a copy of the full weights

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None: ...

    def save(self, state: train_state.TrainState) -> None: ...  # a checkpoint of everything


class TorchEngine:
    """One process, plain torch: AdamW + schedule, clipping, `CheckpointStore` files."""

    def __init__(self, model: nn.Module, opt: train_state.Optim, max_grad_norm: float,
                 checkpoints: CheckpointStore | None, resume: Resume) -> None:  # fmt: skip
        self.model, self.opt, self.max_grad_norm = model, opt, max_grad_norm
        self.checkpoints, self.resume = checkpoints, resume
        self.recorded = False  # the layout, before this run's first checkpoint

    def start(self, seed: int) -> train_state.TrainState:
        if self.checkpoints is not None and self.resume is not Resume.NEVER:
            self.checkpoints.check_layout(ONE_PROCESS)
        return train_state.start(self.model, self.opt, seed, self.checkpoints, self.resume)

    def share(self, units: int) -> Sequence[int]:
        return range(units)

    def before_forward(self) -> None:
        pass

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self, loss: float) -> float:
        optimizer, scheduler = self.opt
        for p in self.model.parameters():  # as under ZeRO: an unused weight steps on zeros
            if p.requires_grad and p.grad is None:  # (Adam moves it not, weight decay does)
                p.grad = torch.zeros_like(p)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(weights)

    def save(self, state: train_state.TrainState) -> None:
        if self.checkpoints is not None:
            if not self.recorded:
                self.checkpoints.record_layout(ONE_PROCESS)
                self.recorded = True
            self.checkpoints.save(state.step, train_state.snapshot(self.model, self.opt, state))


def total_steps(spec: TrainSpec, tasks: Mapping[str, TaskData]) -> int:
    if spec.max_steps:
        return spec.max_steps
    examples = sum(len(t.train) for t in tasks.values())
    return max(1, math.ceil((spec.epochs or 1.0) * examples / (spec.batch_size * spec.grad_accum)))


def multitask_sampler(
    tasks: Mapping[str, TaskData], seed: int, cap: int | None = DEFAULT_CAP
) -> MultitaskSampler | None:
    if len(tasks) < 2:
        return None
    return MultitaskSampler({name: len(t.train) for name, t in tasks.items()}, cap=cap, seed=seed)


def adamw_kernel(fused: bool, on_cuda: bool) -> tuple[bool | None, bool | None]:
    """AdamW's (`fused`, `foreach`): one fused kernel on CUDA, the multi-tensor form elsewhere
    (the same arithmetic as torch's per-parameter loop on a CPU); (None, None): torch's own."""
    if not fused:
        return None, None
    return (True, None) if on_cuda else (None, True)


def make_optimizer(
    model: nn.Module, spec: TrainSpec, steps: int, on_cuda: bool | None = None
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW and its schedule; `on_cuda`: where it will step (None: where the weights are)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if on_cuda is None:
        on_cuda = all(p.is_cuda for _, p in named)
    no_decay = [p for n, p in named if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in named if not (n.endswith("bias") or "LayerNorm" in n)]
    groups = [
        {"params": decay, "weight_decay": spec.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused, foreach = adamw_kernel(spec.fused_optimizer, on_cuda)
    optimizer = torch.optim.AdamW(groups, lr=spec.lr, fused=fused, foreach=foreach)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(spec, steps, step)
    )


def lr_factor(spec: TrainSpec, steps: int, step: int) -> float:
    """The schedule: the share of `spec.lr` optimizer step `step` (from 0) takes."""
    warmup = int(spec.warmup_ratio * steps)
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (steps - step) / max(1, steps - warmup))


def next_batch(state: train_state.TrainState, name: str, data: TaskData, spec: TrainSpec) -> list:
    """The next `batch_size` training features of a task, in this epoch's seeded order."""
    n = len(data.train)
    epoch, pos = state.orders.get(name, (0, 0))
    size = min(spec.batch_size, n)
    if pos + size > n:
        epoch, pos = epoch + 1, 0
    order = train_state.permutation(spec.seed, name, epoch, n)
    state.orders[name] = (epoch, pos + size)
    return [data.train[i] for i in order[pos : pos + size]]


def step_units(
    tasks: Mapping[str, TaskData],
    state: train_state.TrainState,
    spec: TrainSpec,
    sampler: MultitaskSampler | None,
) -> list[tuple[str, list[Feature]]]:
    """The step's global units (task, features), in order; every process draws them all."""
    units = []
    for micro in range(spec.grad_accum):
        index = state.step * spec.grad_accum + micro
        name = sampler.task_for_batch(index) if sampler else next(iter(tasks))
        state.drawn[name] = state.drawn.get(name, 0) + 1
        batch = next_batch(state, name, tasks[name], spec)
        size = spec.unit_size
        parts = [batch[i : i + size] for i in range(0, spec.batch_size, size)]
        if not all(parts):
            raise UserError(
                f"task {name}: {len(batch)} training examples cannot fill "
                f"{len(parts)} micro-batches of {size}"
            )
        units += [(name, part) for part in parts]
    return units


def train_step(
    model: TaskModel,
    tasks: Mapping[str, TaskData],
    state: train_state.TrainState,
    engine: Engine,
    spec: TrainSpec,
    sampler: MultitaskSampler | None,
) -> float:
    units = step_units(tasks, state, spec, sampler)
    total = torch.zeros((), dtype=torch.float64)  # summed where the losses are: no host sync
    for index in engine.share(len(units)):
        name, features = units[index]
        data = tasks[name]
        kind = head_for(data.spec)
        train_state.seed_unit(spec.seed, state.step, index)  # before collate: MLM masks
        batch = _to(kind.collate(features, _pad_id(data)), model)
        engine.before_forward()
        with bf16_autocast(model, spec.precision == "bf16"):
            logits = kind.forward(model.encoder, model.heads[name], batch)
        loss = kind.loss(logits, batch) / len(units)
        engine.backward(loss)
        total = total.to(loss.device) + loss.detach().double()
    return engine.step(float(total))


def _pad_id(data: TaskData) -> int:
    return int(data.tok.tokenizer.pad_token_id)


def dev_score(model: TaskModel, tasks: Mapping[str, TaskData], spec: TrainSpec) -> float | None:
    """Mean headline metric over the tasks' English dev examples (None without any)."""
    scores = []
    for data in tasks.values():
        if not data.dev:
            continue
        task = data.spec
        bf16 = spec.precision == "bf16"
        predict = predictor(model, task, data.tok, spec.eval_batch_size, bf16)
        result = get_scorer(task.scorer).score(
            predict(data.dev), golds(task, data.dev), language="en"
        )
        scores.append(result[task.headline])
    return sum(scores) / len(scores) if scores else None


def _evaluate(model: TaskModel, tasks: Mapping, state: train_state.TrainState, spec, loss,
              engine: Engine) -> float | None:  # fmt: skip
    score = dev_score(model, tasks, spec)
    state.history.append({"step": float(state.step), "loss": loss, "score": score or 0.0})
    if score is None:
        return None
    if state.best_score is None or score > state.best_score:
        state.best_score, state.best_step, state.bad_evals = score, state.step, 0
        state.best_weights = engine.weights()
    else:
        state.bad_evals += 1
        state.stopped = spec.patience > 0 and state.bad_evals >= spec.patience
    log.info(
        "step %d: dev %.3f (best %.3f @ %s)", state.step, score, state.best_score, state.best_step
    )
    return score


def train(
    model: TaskModel,
    tasks: Mapping[str, TaskData],
    spec: TrainSpec,
    *,
    checkpoints: CheckpointStore | None = None,
    resume: Resume = Resume.IF_AVAILABLE,
    on_step: StepCallback | None = None,
    engine: Engine | None = None,
    on_metrics: MetricsCallback | None = None,
) -> TrainResult:
    """Train `model`'s encoder and the tasks' heads; leave the best weights loaded.

    Without `engine`: one process (`TorchEngine` over `checkpoints` and `resume`).
    """
    steps = total_steps(spec, tasks)
    if engine is None:
        opt = make_optimizer(model, spec, steps)
        engine = TorchEngine(model, opt, spec.max_grad_norm, checkpoints, resume)
    state = engine.start(spec.seed)
    every = spec.checkpoint_every or spec.eval_every
    sampler = multitask_sampler(tasks, spec.seed, spec.mix_cap)
    model.train()
    while state.step < steps and not state.stopped:
        started = time.perf_counter()
        loss = train_step(model, tasks, state, engine, spec, sampler)
        samples = spec.batch_size * spec.grad_accum / max(time.perf_counter() - started, 1e-9)
        metrics = {"lr": spec.lr * lr_factor(spec, steps, state.step), "samples_per_s": samples}
        state.step += 1
        if state.step % spec.eval_every == 0 or state.step == steps:
            score = _evaluate(model, tasks, state, spec, loss, engine)
            if score is not None:
                metrics["dev_score"] = score
        if state.step % every == 0 or state.step == steps or state.stopped:
            engine.save(state)
        if on_metrics is not None:
            on_metrics(state.step, metrics)
        if on_step is not None:
            try:
                on_step(state.step, loss)
            except StopRequested:
                engine.save(state)  # this step boundary is where a rerun resumes
                raise
    if state.best_weights is not None:
        engine.load_weights(state.best_weights)
    model.eval()
    return TrainResult(
        state.step, state.best_score, state.best_step, state.stopped, state.history, state.drawn
    )
