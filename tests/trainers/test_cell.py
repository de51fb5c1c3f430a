from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from conftest import RecordingHooks, cell_job
from safetensors.torch import load_file

from evaluation.scorers import row_metrics
from evaluation.tasks import get_task
from storage.errors import UserError
from trainers.cell import run_cell
from trainers.celldata import derive_seed
from trainers.ladder import LADDER
from trainers.models import load_dir
from trainers.phase import phase_model

ROW_KEYS = {"target_task", "language", "split", "metric", "value", "n_examples"}


def trainings(caplog: pytest.LogCaptureFixture, what: str) -> int:
    return sum(r.getMessage().startswith(what) for r in caplog.records)


def test_run_cell_records_every_language_and_metric(fixture_root, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="trainers")
    hooks = RecordingHooks()
    run_cell(cell_job(fixture_root, tmp_path), hooks)
    assert list(hooks.rows) == ["xnli", "udpos", "xquad", "tatoeba"]
    for task, rows in hooks.rows.items():
        spec = get_task(task)
        assert {(r["language"], r["metric"]) for r in rows} == {
            (lang, m) for lang in spec.languages for m in row_metrics(spec)
        }
        assert all(set(r) == ROW_KEYS and 0 <= r["value"] <= 100 for r in rows)
        assert all(r["split"] == spec.report_split and r["n_examples"] > 0 for r in rows)
    assert hooks.calls[0] == ("progress", "phase2", None)
    assert ("mark_phase2_done", str(tmp_path / "sw" / "phase2" / "p" / "final")) in hooks.calls
    assert trainings(caplog, "phase2 start") == 1 and trainings(caplog, "phase3 start") == 3
    assert (tmp_path / "sw" / "cells" / "k" / "predictions" / "udpos" / "test-wo.tsv").exists()
    assert (tmp_path / "sw" / "cells" / "k" / "predictions" / "xquad" / "test-ro.json").exists()

    caplog.clear()
    again = RecordingHooks(phase2=True, done=("xnli",))
    run_cell(cell_job(fixture_root, tmp_path), again)
    assert trainings(caplog, "phase2 start") == 0 and trainings(caplog, "phase3 start") == 2
    assert again.rows["udpos"] == hooks.rows["udpos"]  # deterministic given the job


def test_phase3_gets_only_the_phase2_encoder_and_a_fresh_head(fixture_root, tmp_path) -> None:
    job = cell_job(fixture_root, tmp_path, target_tasks=("xnli",))
    run_cell(job, RecordingHooks())
    final = tmp_path / "sw" / "phase2" / "p" / "final"
    saved = load_file(str(final / "model.safetensors"))
    assert not any("head" in k or "classifier" in k for k in saved)
    pre = load_dir(str(final), LADDER["tiny-s"])
    data = job.config.data
    seed = derive_seed(0, "phase3", "xnli")
    model = phase_model(pre, ("xnli",), data, seed)
    for name, tensor in model.encoder.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    torch.manual_seed(seed)
    fresh = torch.nn.Linear(
        LADDER["tiny-s"].hidden, LADDER["tiny-s"].hidden
    )  # the head's first layer, built first from that seed
    assert torch.equal(model.heads["xnli"].dense.weight, fresh.weight)


def test_phase2_encoder_of_another_size_is_a_user_error(fixture_root, tmp_path) -> None:
    run_cell(cell_job(fixture_root, tmp_path, target_tasks=()), RecordingHooks())
    job = cell_job(fixture_root, tmp_path, model=LADDER["tiny-m"], target_tasks=("xnli",))
    with pytest.raises(UserError, match="tiny-m has 3 x 64"):
        run_cell(job, RecordingHooks(phase2=True))


def test_baseline_none_publishes_the_pretrained_encoder(fixture_root, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="trainers")
    job = cell_job(
        fixture_root, tmp_path, intermediate_task="none", phase2_tasks=(), target_tasks=("tatoeba",)
    )
    hooks = RecordingHooks()
    run_cell(job, hooks)
    assert trainings(caplog, "phase2 start") == 0 and hooks.p2
    assert len(hooks.rows["tatoeba"]) == len(get_task("tatoeba").languages)


def test_bad_data_source_is_a_user_error(fixture_root, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data source"):
        cell_job(fixture_root, tmp_path, source="ftp")  # refused as the job is built


def test_a_cell_that_lost_its_fence_writes_nothing(fixture_root, tmp_path: Path) -> None:
    def lost() -> None:
        raise UserError("sweep lease lost")

    job = cell_job(fixture_root, tmp_path, intermediate_task="none", phase2_tasks=(),
                   phase2_hparams={}, target_tasks=("tatoeba",), fence=lost)  # fmt: skip
    hooks = RecordingHooks()
    with pytest.raises(UserError, match="sweep lease lost"):
        run_cell(job, hooks)
    assert (
        not (tmp_path / "sw" / "phase2" / "p").exists() and not (tmp_path / "sw" / "cells").exists()
    )
    assert not hooks.p2 and not hooks.rows


def test_a_job_is_plain_picklable_values(fixture_root, tmp_path: Path) -> None:
    import pickle

    job = cell_job(fixture_root, tmp_path)
    assert pickle.loads(pickle.dumps(job)) == job
    assert job.config.phase3_hparams["xnli"].max_seq_length == 64
