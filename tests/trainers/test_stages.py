"""Phase-3 stages: tasks trained on a target task's encoder before it (SIQA before COPA),
on fixtures, through the cell runner: in one process, and as Ray Train runs under ZeRO-2."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import HP, RecordingHooks, cell_job
from test_distributed import HP as DIST_HP  # batch 8 in 2 units: one per worker
from test_distributed import dist_model, ray_local  # noqa: F401 (a fixture)

from evaluation.tasks import get_task
from trainers.cell import run_cell
from trainers.ladder import LADDER

TASKS = ("siqa", "xcopa", "squad", "tatoeba")


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


# --- stages on Ray Train workers (ZeRO-2 x 2), against one process ---------------------------

STAGED = {"xcopa": ("siqa",), "tatoeba": ("squad",)}
ROW_TOLERANCE = 1e-4  # scores and nll, 0-100 scales; fp32 with dropout on


def staged_job(root: Path, base: Path, model):
    hp = {**DIST_HP, "max_steps": 2, "eval_every": 2}
    return cell_job(root, base, model=model, intermediate_task="none", phase2_tasks=(),
                    phase2_hparams={}, target_tasks=tuple(STAGED), stages=STAGED,
                    phase3_hparams={t: hp for t in ("siqa", "xcopa", "squad")}, max_train=32,
                    max_dev=8, max_eval=8)  # fmt: skip


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.usefixtures("ray_local")
def test_stages_on_zero_workers_match_one_process(stage_root, tmp_path, caplog) -> None:
    """XCOPA after SIQA and Tatoeba after SQuAD as Train runs (each stage's consolidated model
    published as the next start; retrieval reads the SQuAD stage's encoder) score what one
    process scores: the same stages, in the same order, from the same encoders."""
    plain = RecordingHooks()
    run_cell(staged_job(stage_root, tmp_path / "one", LADDER["tiny-s"]), plain)
    caplog.clear()
    caplog.set_level(logging.INFO, logger="trainers")
    zero = RecordingHooks()
    job = staged_job(stage_root, tmp_path / "zero", dist_model(workers=2, stage=2))
    run_cell(job, zero)
    runs = sorted(p.name for p in Path(job.paths.train_storage).iterdir())
    assert runs == ["k-phase3-tatoeba-stage-squad", "k-phase3-xcopa", "k-phase3-xcopa-stage-siqa"]
    messages = [r.getMessage() for r in caplog.records]
    order = [m.split(" k")[0] for m in messages if m.startswith(("phase3 stage", "phase3 start"))]
    assert order == ["phase3 stage siqa before xcopa", "phase3 start", "phase3 stage squad "
                     "before tatoeba"]  # fmt: skip
    assert list(zero.rows) == list(plain.rows) == list(STAGED)
    for task in STAGED:
        one = {(r["language"], r["metric"]): r["value"] for r in plain.rows[task]}
        two = {(r["language"], r["metric"]): r["value"] for r in zero.rows[task]}
        assert two.keys() == one.keys()
        gap = max(abs(two[k] - v) for k, v in one.items())
        print(f"{task}: ZeRO-2 x2 vs one process, {len(one)} rows within {gap:.1e}")
        assert gap < ROW_TOLERANCE
    # Once the rows are recorded, no stage file is left: checkpoints, layout, encoder.
    stages = list((tmp_path / "zero" / "sw" / "cells" / "k" / "phase3").glob("*/stages"))
    assert len(stages) == 2 and not any(p.is_file() for d in stages for p in d.rglob("*"))
