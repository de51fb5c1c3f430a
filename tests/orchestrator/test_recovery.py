"""The ledger, not Tune's saved state, decides what runs — after a finished sweep too.

A finished sweep is copied (its Tune state included), then damaged the ways the error
messages and a user's accidents damage it: a fragment moved aside, one ledger entry
deleted, the whole ledger deleted, a fragment truncated. `xstilts run` must then run
exactly what is missing and end with the uninterrupted rows; `status` must not call a
cell whose fragment is damaged "done".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sweeps  # tests/orchestrator/sweeps.py, registered by conftest

from orchestrator.ledger import Ledger
from storage.results import ResultsStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TARGETS = ["xnli", "udpos"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, fixtures: Path) -> dict:
    """A finished sweep of two cells and two target tasks: the golden rows."""
    tmp = tmp_path_factory.mktemp("finished")
    spec = sweeps.write_spec(tmp / "mini.yaml", str(tmp / "runs"), fixtures, target_tasks=TARGETS)
    out = sweeps.run(spec, tmp)
    assert out.returncode == 0, out.stderr[-3000:]
    assert list((tmp / "runs" / "mini" / "tune").iterdir()), "no Tune state to be stuck on"
    rows = sweeps.logical(ResultsStore(str(tmp / "runs"), "mini").read())
    return {"rows": rows, "root": tmp / "runs"}


def _copy(finished: dict, tmp: Path, fixtures: Path) -> tuple[Path, Path]:
    root = tmp / "runs"
    shutil.copytree(finished["root"], root)
    spec = sweeps.write_spec(tmp / "mini.yaml", str(root), fixtures, target_tasks=TARGETS)
    return root / "mini", spec


def _fragment(sweep: Path) -> tuple[str, str, str]:
    """(trial key, target task, fragment) of one recorded target task."""
    ledger = Ledger(str(sweep.parent), "mini")
    key, state = next((k, s) for k, s in sorted(ledger.all_states().items()) if s.targets)
    task, fragment = sorted(state.targets.items())[0]
    return key, task, fragment


def _all_done(spec: Path, tmp: Path) -> None:
    status = sweeps.run(spec, tmp, "status")
    assert status.returncode == 0 and "2 done" in status.stdout, status.stdout


def _rerun(spec: Path, tmp: Path, sweep: Path, finished: dict) -> str:
    out = sweeps.run(spec, tmp)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    store = ResultsStore(str(sweep.parent), "mini")
    assert sweeps.logical(store.read()) == finished["rows"]
    assert store.reading().conflicts == ()
    return out.stderr


def test_fragment_moved_aside_is_scored_again(
    tmp_path: Path, finished: dict, fixtures: Path
) -> None:
    sweep, spec = _copy(finished, tmp_path, fixtures)
    key, task, fragment = _fragment(sweep)
    (sweep / "results" / fragment).rename(tmp_path / fragment)
    status = sweeps.run(spec, tmp_path, "status")
    assert "1 done" in status.stdout and f"{fragment} is gone" in status.stderr
    err = _rerun(spec, tmp_path, sweep, finished)
    assert f"fragment {fragment} is gone; {task} will be scored again" in err
    assert Ledger(str(sweep.parent), "mini").target_done(key, task)


def test_truncated_fragment_is_scored_again_and_status_says_so(
    tmp_path: Path, finished: dict, fixtures: Path
) -> None:
    sweep, spec = _copy(finished, tmp_path, fixtures)
    fragment = _fragment(sweep)[2]
    path = sweep / "results" / fragment
    path.write_bytes(path.read_bytes()[:100])
    status = sweeps.run(spec, tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert "1 done" in status.stdout
    assert f"fragment {fragment} is unreadable" in status.stderr
    # The damaged file stays where it is (never deleted); the reader skips it.
    err = sweeps.run(spec, tmp_path).stderr
    assert f"fragment {fragment} is unreadable" in err and path.exists()
    assert sweeps.logical(ResultsStore(str(sweep.parent), "mini").read()) == finished["rows"]


def test_ledger_entry_deleted_reruns_that_cell(
    tmp_path: Path, finished: dict, fixtures: Path
) -> None:
    sweep, spec = _copy(finished, tmp_path, fixtures)
    key, task, _ = _fragment(sweep)
    entries = [p for p in (sweep / "ledger").rglob("*") if p.is_file() and key in p.name]
    assert len(entries) == 1, entries
    entries[0].unlink()
    _rerun(spec, tmp_path, sweep, finished)
    assert Ledger(str(sweep.parent), "mini").target_done(key, task)
    _all_done(spec, tmp_path)


def test_ledger_deleted_reruns_every_cell(tmp_path: Path, finished: dict, fixtures: Path) -> None:
    sweep, spec = _copy(finished, tmp_path, fixtures)
    shutil.rmtree(sweep / "ledger")
    _rerun(spec, tmp_path, sweep, finished)
    _all_done(spec, tmp_path)


def test_adding_a_target_task_runs_only_its_own_work(
    tmp_path: Path, finished: dict, fixtures: Path
) -> None:
    """The finished sweep (xnli, udpos) gains xquad: every cell gets a new trial key, but
    the phase-3 work, predictions and rows of xnli and udpos are kept as they are."""
    sweep, _ = _copy(finished, tmp_path, fixtures)
    before = {
        p.relative_to(sweep): p.stat().st_mtime_ns
        for p in sorted(sweep.rglob("*"))
        if p.is_file() and p.relative_to(sweep).parts[0] in ("results", "cells", "phase2")
    }
    spec = sweeps.write_spec(
        tmp_path / "more.yaml", str(sweep.parent), fixtures, target_tasks=[*TARGETS, "xquad"]
    )
    out = sweeps.run(spec, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "0 of 2 cells done" in out.stderr  # new trial keys: both cells run
    after = {p.relative_to(sweep): p.stat().st_mtime_ns for p in sweep.rglob("*") if p.is_file()}
    assert {p: after.get(p) for p in before} == before  # nothing of the old work rewritten
    new = {p for p in after if p not in before and p.parts[0] in ("results", "cells")}
    assert new and all("xquad" in str(p) for p in new), sorted(map(str, new))
    rows = ResultsStore(str(sweep.parent), "mini").read()
    logical = sweeps.logical(rows)  # fails on a duplicate logical key
    old = {k: v for k, v in logical.items() if k[1] in TARGETS}
    assert old == finished["rows"]  # same keys (trial key included) and values
    assert {k[1] for k in logical} == {*TARGETS, "xquad"}
