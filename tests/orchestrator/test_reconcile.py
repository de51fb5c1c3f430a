"""A fragment moved aside or unreadable makes its target task be scored again."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from orchestrator.driver import reconcile
from orchestrator.ledger import Ledger
from storage.results import ResultsStore

ROW = {
    "model": "tiny-s", "model_params": 1, "intermediate_task": "none", "seed": 0,
    "language": "en", "split": "test", "metric": "accuracy", "value": 50.0,
    "n_examples": 4, "task_version": 1, "data_source": "local",
}  # fmt: skip


def test_missing_fragment_is_forgotten_and_others_kept(tmp_path: Path) -> None:
    store, ledger = ResultsStore(str(tmp_path), "s"), Ledger(str(tmp_path), "s")
    kept = store.write_rows([ROW], trial_key="k1", target_task="xnli", attempt=0)
    gone = store.write_rows([ROW], trial_key="k1", target_task="pawsx", attempt=0)
    ledger.mark_target_done("k1", "xnli", kept)
    ledger.mark_target_done("k1", "pawsx", gone)
    (tmp_path / "s" / "results" / gone).rename(tmp_path / "aside.parquet")
    reconcile(ledger, store, Console(quiet=True))
    assert ledger.target_done("k1", "xnli")
    assert not ledger.target_done("k1", "pawsx")


def test_unreadable_fragment_is_scored_again_and_left_in_place(tmp_path: Path) -> None:
    store, ledger = ResultsStore(str(tmp_path), "s"), Ledger(str(tmp_path), "s")
    fragment = store.write_rows([ROW], trial_key="k1", target_task="xnli", attempt=0)
    ledger.mark_target_done("k1", "xnli", fragment)
    path = tmp_path / "s" / "results" / fragment
    path.write_bytes(path.read_bytes()[:40])  # truncated
    console = Console(record=True, width=200)
    reconcile(ledger, store, console)
    assert not ledger.target_done("k1", "xnli") and path.exists()
    assert f"fragment {fragment} is unreadable" in console.export_text()
