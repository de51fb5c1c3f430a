"""Phase-3 stages: tasks trained on a target task's encoder before it (SIQA before COPA),
on fixtures, through the cell runner."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import HP, RecordingHooks, cell_job

from evaluation.tasks import get_task
from trainers.cell import run_cell

TASKS = ("siqa", "xcopa")


@pytest.fixture(scope="module")
def stage_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evaluation.data.fixtures import write_fixtures

    root = tmp_path_factory.mktemp("stages") / "fx"
    return write_fixtures(
        root, seed=0, n_per_split=24, n_train=64, tasks=[get_task(t) for t in TASKS]
    )


def xcopa_job(root: Path, base: Path, stages: dict[str, tuple[str, ...]]):
    return cell_job(
        root,
        base,
        intermediate_task="none",
        phase2_tasks=(),
        phase2_hparams={},
        target_tasks=("xcopa",),
        phase3_hparams={"xcopa": HP, "siqa": HP},
        stages=stages,
    )


def test_siqa_trains_before_copa_on_the_same_encoder(stage_root, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="trainers")
    staged = RecordingHooks()
    job = xcopa_job(stage_root, tmp_path / "a", {"xcopa": ("siqa",)})
    run_cell(job, staged)
    messages = [r.getMessage() for r in caplog.records]
    stage = next(
        i for i, m in enumerate(messages) if m.startswith("phase3 stage siqa before xcopa")
    )
    start = next(i for i, m in enumerate(messages) if m.startswith("phase3 start"))
    assert stage < start and sum(m.startswith("phase3 start") for m in messages) == 1
    # Progress names the target task throughout, never the stage (the ledger knows targets).
    assert {c[2] for c in staged.calls if c[0] == "progress" and c[1] != "phase2"} == {"xcopa"}
    # The stage's checkpoints go once the target task's phase 3 is over.
    stages_dir = tmp_path / "a" / "sw" / "cells" / "k" / "phase3" / "xcopa" / "stages" / "siqa"
    assert not any(p.is_file() for p in stages_dir.rglob("*"))

    plain = RecordingHooks()
    run_cell(xcopa_job(stage_root, tmp_path / "b", {}), plain)
    assert {r["language"] for r in staged.rows["xcopa"]} == set(get_task("xcopa").languages)
    values = [(r["language"], r["metric"], r["value"]) for r in staged.rows["xcopa"]]
    assert values != [(r["language"], r["metric"], r["value"]) for r in plain.rows["xcopa"]]
