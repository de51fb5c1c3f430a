"""Shared fixtures: one thread, a small synthetic corpus and in-memory examples."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import torch
from synth_examples import synthetic_texts

from storage.layout import SweepLayout
from trainers.celldata import DataAccess
from trainers.hparams import PhaseHparams
from trainers.job import CellConfig, CellJob, CellPaths, Runtime
from trainers.ladder import LADDER
from trainers.models import Pretrained, build_pretrained

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return synthetic_texts()


@pytest.fixture
def tiny(corpus: list[str], tmp_path_factory: pytest.TempPathFactory) -> Pretrained:
    cache = str(tmp_path_factory.mktemp("cache"))
    return build_pretrained(LADDER["tiny-s"], seed=0, corpus=lambda: corpus, cache_dir=cache)


CELL_TASKS = ("mnli", "xnli", "udpos", "xquad", "tatoeba")
HP = {
    "lr": 1e-3,
    "max_steps": 12,
    "batch_size": 16,
    "grad_accum": 1,
    "warmup_ratio": 0.1,
    "max_seq_length": 64,
    "eval_every": 6,
    "patience": 2,
    "weight_decay": 0.01,
    "max_grad_norm": 1.0,
}


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evaluation.data.fixtures import write_fixtures
    from evaluation.tasks import get_task

    root = tmp_path_factory.mktemp("fixtures") / "fx"
    return write_fixtures(
        root, seed=0, n_per_split=24, n_train=96, tasks=[get_task(n) for n in CELL_TASKS]
    )


class RecordingHooks:
    """A fake orchestrator: remembers what is done and every call it receives."""

    def __init__(self, phase2: bool = False, done: tuple[str, ...] = ()) -> None:
        self.p2 = phase2
        self.rows: dict[str, list[dict]] = {t: [] for t in done}
        self.calls: list[tuple] = []

    def phase2_done(self) -> bool:
        return self.p2

    def mark_phase2_done(self, checkpoint: str) -> None:
        self.p2 = True
        self.calls.append(("mark_phase2_done", checkpoint))

    def target_done(self, task: str) -> bool:
        return task in self.rows

    def record(self, task: str, rows: list[dict]) -> None:
        self.rows[task] = rows
        self.calls.append(("record", task))

    def progress(self, phase: str, target_task: str | None, detail: dict) -> None:
        self.calls.append(("progress", phase, target_task))


def typed(hparams: Mapping[str, Any]) -> dict[str, PhaseHparams]:
    """Per-task hyperparameters as `PhaseHparams` (plain dicts are converted)."""
    return {t: PhaseHparams(**hp) if isinstance(hp, Mapping) else hp for t, hp in hparams.items()}


def cell_job(root: Path, base: Path, **changes: Any) -> CellJob:
    """A job from flat fields: those of `CellConfig`, `DataAccess`, `CellPaths`, `Runtime`."""
    flat: dict[str, Any] = dict(
        sweep="t",
        trial_key="k",
        phase2_key="p",
        model=LADDER["tiny-s"],
        intermediate_task="mnli",
        phase2_tasks=("mnli",),
        seed=0,
        target_tasks=("xnli", "udpos", "xquad", "tatoeba"),
        phase2_hparams={"mnli": HP},
        phase3_hparams={t: HP for t in ("xnli", "udpos", "xquad", "tatoeba")},
        source="local",
        local_dir=str(root),
        native_dir=None,
        max_train=96,
        max_dev=16,
        max_eval=12,
        layout=SweepLayout.of(str(base), "sw"),  # phase2/p/..., cells/k/..., train, cache
        attempt=0,
        threads=1,
    )
    flat.update(changes)
    # One key for the cell and its targets: files under cells/<trial_key>/ as before.
    flat.setdefault("target_keys", {t: flat["trial_key"] for t in flat["target_tasks"]})
    flat["phase2_hparams"] = typed(flat["phase2_hparams"])
    flat["phase3_hparams"] = typed(flat["phase3_hparams"])

    def take(cls: type) -> dict[str, Any]:
        return {f.name: flat.pop(f.name) for f in fields(cls) if f.name in flat}

    data = DataAccess(**take(DataAccess))
    config = CellConfig(data=data, **take(CellConfig))
    paths = CellPaths(flat.pop("layout"), config.phase2_key, config.trial_key, config.target_keys)
    job = CellJob(config, paths, Runtime(**take(Runtime)))
    assert not flat, f"not fields of a job: {sorted(flat)}"
    return job
