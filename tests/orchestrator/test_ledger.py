"""The ledger: explicit, atomic per-cell records of what is done, running and failed.

Tests taking `storage_uri` are portable: tests/orchestrator/test_store_s3.py runs them
again against a real S3 server.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from orchestrator.ledger import CellState, Ledger
from storage.errors import UserError
from storage.files import resolve_storage

TARGETS = ("xnli", "udpos")


@pytest.fixture
def storage_uri(tmp_path: Path) -> str:
    return str(tmp_path / "root")


def test_an_unknown_cell_is_pending(storage_uri: str) -> None:
    ledger = Ledger(storage_uri, "sw")
    state = ledger.cell_state("k1")
    assert state == CellState("k1")
    assert state.status(TARGETS) == "pending"
    assert not ledger.phase2_done("k1") and not ledger.target_done("k1", "xnli")
    assert ledger.all_states() == {}


def test_a_cell_runs_to_done(storage_uri: str) -> None:
    ledger = Ledger(storage_uri, "sw")
    ledger.mark_running("k1", "phase2")
    assert ledger.cell_state("k1").status(TARGETS) == "running"
    ledger.mark_phase2_done("k1", "/ckpt/k1/phase2")
    ledger.mark_running("k1", "phase3", "xnli")
    running = ledger.cell_state("k1").running
    assert running is not None and (running.phase, running.target_task) == ("phase3", "xnli")
    ledger.mark_target_done("k1", "xnli", "k1__xnli__a000.parquet")
    ledger.mark_target_done("k1", "udpos", "k1__udpos__a000.parquet")
    state = Ledger(storage_uri, "sw").cell_state("k1")  # a fresh reader sees it all
    assert state.phase2_checkpoint == "/ckpt/k1/phase2" and state.phase2_done
    assert state.targets == {"xnli": "k1__xnli__a000.parquet", "udpos": "k1__udpos__a000.parquet"}
    assert state.running is None and state.status(TARGETS) == "done"
    assert state.updated_at is not None


def test_failure_is_one_line_and_a_retry_clears_it(storage_uri: str) -> None:
    ledger = Ledger(storage_uri, "sw")
    ledger.mark_running("k1", "phase2")
    ledger.mark_failed("k1", "Traceback ...\n  RuntimeError: injected failure\n" + "x" * 500)
    state = ledger.cell_state("k1")
    assert state.status(TARGETS) == "failed" and state.running is None
    assert state.failed is not None and "\n" not in state.failed and len(state.failed) <= 300
    assert state.failed.startswith("Traceback ... RuntimeError: injected failure")
    ledger.mark_running("k1", "phase2")
    assert ledger.cell_state("k1").failed is None


def test_cells_have_their_own_records(storage_uri: str) -> None:
    ledger = Ledger(storage_uri, "sw")
    ledger.mark_phase2_done("k1", "c1")
    ledger.mark_failed("k2", "boom")
    ledger.mark_running("k3", "evaluate", "udpos")
    storage = resolve_storage(storage_uri)
    names = storage.list_files(storage.path("sw", "ledger"))
    assert names == ["k1.json", "k2.json", "k3.json"]
    states = ledger.all_states()
    assert sorted(states) == ["k1", "k2", "k3"]
    assert states["k1"].phase2_done and states["k2"].failed == "boom"
    record = json.loads(storage.read_bytes(storage.path("sw", "ledger", "k1.json")) or b"")
    assert record["ledger_version"] == 1 and record["phase2_checkpoint"] == "c1"


def test_two_sweeps_keep_separate_ledgers(storage_uri: str) -> None:
    Ledger(storage_uri, "one").mark_phase2_done("k1", "c1")
    assert not Ledger(storage_uri, "two").phase2_done("k1")
    assert Ledger(storage_uri, "two").all_states() == {}


def test_states_ignore_temporaries(storage_uri: str) -> None:
    ledger = Ledger(storage_uri, "sw")
    ledger.mark_phase2_done("k1", "c1")
    storage = resolve_storage(storage_uri)
    with storage.fs.open_output_stream(storage.path("sw", "ledger", ".k2.json.77ab.tmp")) as out:
        out.write(b'{"half": ')
    assert list(ledger.all_states()) == ["k1"]


def test_corrupted_record_is_named_and_kept(storage_uri: str) -> None:
    ledger = Ledger(storage_uri, "sw")
    storage = resolve_storage(storage_uri)
    path = storage.path("sw", "ledger", "k9.json")
    if storage.is_local:
        storage.fs.create_dir(storage.path("sw", "ledger"))
    with storage.fs.open_output_stream(path) as out:
        out.write(b"{not json")
    with pytest.raises(UserError, match=r"corrupted ledger entry .*k9\.json"):
        ledger.cell_state("k9")
    assert storage.read_bytes(path) == b"{not json"


def test_no_temporary_is_left_behind(tmp_path: Path) -> None:
    ledger = Ledger(str(tmp_path), "sw")
    for phase in ("phase2", "phase3", "evaluate"):
        ledger.mark_running("k1", phase)
    assert sorted(p.name for p in (tmp_path / "sw" / "ledger").iterdir()) == ["k1.json"]


def test_states_travel_to_ray_workers(tmp_path: Path) -> None:
    ledger = Ledger(str(tmp_path), "sw")
    ledger.mark_running("k1", "phase3", "xnli")
    ledger.mark_target_done("k1", "xnli", "f.parquet")
    state = ledger.cell_state("k1")
    assert pickle.loads(pickle.dumps(state)) == state


def test_unsafe_trial_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="trial key"):
        Ledger(str(tmp_path), "sw").mark_phase2_done("../escape", "c")


def test_a_cell_sees_its_target_tasks_under_their_own_keys(tmp_path) -> None:
    from orchestrator.ledger import cell_view

    ledger = Ledger(str(tmp_path), "s")
    ledger.begin_attempt("cell")
    ledger.mark_target_done("t-xnli", "xnli", "t-xnli__xnli__a000.parquet", rows=15)
    ledger.mark_target_done("cell", "udpos", "cell__udpos__a000.parquet")  # an older ledger
    states = ledger.all_states()
    keys = {"xnli": "t-xnli", "udpos": "t-udpos", "xquad": "t-xquad"}
    view = cell_view(states, "cell", keys)
    assert view is not None and view.attempts == 1
    assert view.targets == {
        "xnli": "t-xnli__xnli__a000.parquet",
        "udpos": "cell__udpos__a000.parquet",
    }
    assert view.rows == {"xnli": 15}
    assert view.status(keys) == "pending"
    assert cell_view(states, "other-cell", {"xnli": "t-xnli"}).status(["xnli"]) == "done"
    assert cell_view(states, "nobody", {"xquad": "t-xquad"}) is None
