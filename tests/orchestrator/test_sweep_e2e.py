"""End to end: `xstilts run` on an embedded Ray, on CPU, killed for real and resumed.

Every test here runs the real CLI in a subprocess (inside the private network namespace
the README's test command sets up) on the smallest spec that exercises every path
(tests/orchestrator/sweeps.py). The uninterrupted run of the same spec is the golden
reference: a killed-and-resumed sweep must end with exactly its rows, values included.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest
import sweeps  # tests/orchestrator/sweeps.py, registered by conftest

from evaluation.scorers import row_metrics
from evaluation.tasks import get_task
from orchestrator.ledger import Ledger
from storage.files import is_temporary
from storage.results import ResultsStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, fixtures: Path) -> dict:
    """An uninterrupted run of the mini spec: the golden rows."""
    tmp = tmp_path_factory.mktemp("reference")
    spec = sweeps.write_spec(tmp / "mini.yaml", str(tmp / "runs"), fixtures)
    out = sweeps.run(spec, tmp)
    assert out.returncode == 0, out.stderr[-3000:]
    return {"rows": ResultsStore(str(tmp / "runs"), "mini").read(), "root": tmp / "runs"}


def expected_rows() -> int:
    per_cell = sum(
        len(get_task(t).languages) * len(row_metrics(get_task(t)))
        for t in sweeps.MINI["target_tasks"]
    )
    return per_cell * 2  # two cells


def test_store_holds_exactly_the_expected_rows(reference: dict) -> None:
    table = reference["rows"]
    assert table.num_rows == expected_rows()
    sweeps.logical(table)  # no duplicate logical key
    results = reference["root"] / "mini" / "results"
    plain = ds.dataset(str(results), format="parquet").to_table()
    assert plain.num_rows == expected_rows()  # one attempt each: nothing to deduplicate
    count = duckdb.sql(f"select count(*) from read_parquet('{results}/*.parquet')").fetchall()
    assert count == [(expected_rows(),)]
    for task in sweeps.MINI["target_tasks"]:
        langs = {r for r in table.filter(ds.field("target_task") == task)["language"].to_pylist()}
        assert langs == set(get_task(task).languages)


def test_second_run_redoes_nothing(tmp_path: Path, reference: dict, fixtures: Path) -> None:
    spec = sweeps.write_spec(tmp_path / "mini.yaml", str(reference["root"]), fixtures)
    before = sorted(p.name for p in (reference["root"] / "mini" / "results").iterdir())
    out = sweeps.run(spec, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "2 of 2 cells done" in out.stderr
    assert sorted(p.name for p in (reference["root"] / "mini" / "results").iterdir()) == before


@pytest.mark.parametrize(
    "point",
    ["phase2_step:8", "phase3_step:6", "evaluate", "after_fragment"],
    ids=["during-phase2", "during-phase3", "during-evaluation", "between-fragment-and-ledger"],
)
def test_kill_9_and_resume_gives_the_uninterrupted_rows(
    tmp_path: Path, reference: dict, fixtures: Path, point: str
) -> None:
    storage = tmp_path / "runs"
    spec = sweeps.write_spec(tmp_path / "mini.yaml", str(storage), fixtures)
    sweeps.run_and_kill(spec, tmp_path, point)
    p2_final = list((storage / "mini" / "phase2").glob("*/final"))
    stamps = {p: p.stat().st_mtime_ns for p in p2_final}
    out = sweeps.run(spec, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    store = ResultsStore(str(storage), "mini")
    assert sweeps.logical(store.read()) == sweeps.logical(reference["rows"])
    assert store.reading().conflicts == ()
    # Readers see whole fragments only; no temporary is left where readers look.
    results = storage / "mini" / "results"
    assert all(not p.name.endswith(".tmp") for p in results.iterdir() if not p.name.startswith("."))
    ds.dataset(str(results), format="parquet").to_table()
    # A phase-2 model whose final checkpoint existed was not trained again.
    for path, stamp in stamps.items():
        assert path.stat().st_mtime_ns == stamp, f"{path} was republished"


def test_failing_cell_does_not_stop_the_others(tmp_path: Path, fixtures: Path) -> None:
    spec = sweeps.write_spec(
        tmp_path / "mini.yaml", str(tmp_path / "runs"), fixtures,
        target_tasks=["xnli"],
    )  # fmt: skip
    out = sweeps.run(spec, tmp_path, faults=("--fail", "tiny-s/mnli/0"))
    assert out.returncode == 1
    assert "failed: tiny-s/mnli/0: RuntimeError: injected failure" in out.stderr
    status = sweeps.run(spec, tmp_path, "status")
    assert status.returncode == 0
    line = next(ln for ln in status.stdout.splitlines() if "tiny-s/mnli/0" in ln)
    assert "failed" in line and "injected failure" in line
    assert "tiny-s/none/0" in status.stdout and "1 done" in status.stdout
    ledger = Ledger(str(tmp_path / "runs"), "mini")
    failed = [s for s in ledger.all_states().values() if s.failed]
    assert len(failed) == 1 and failed[0].attempts == 2  # max_failures=1: tried twice


def test_result_affecting_change_is_refused(
    tmp_path: Path, reference: dict, fixtures: Path
) -> None:
    phase3 = {"defaults": {**sweeps.MINI["phase3"]["defaults"], "lr": 5.0e-4}}
    spec = sweeps.write_spec(tmp_path / "x.yaml", str(reference["root"]), fixtures, phase3=phase3)
    before = sorted(p.name for p in (reference["root"] / "mini" / "results").iterdir())
    out = sweeps.run(spec, tmp_path)
    assert out.returncode == 2
    assert "was run with a different result-affecting config" in out.stderr
    assert "phase3.xnli" in out.stderr and "Traceback" not in out.stderr
    assert sorted(p.name for p in (reference["root"] / "mini" / "results").iterdir()) == before


def test_kill_and_resume_on_s3(tmp_path: Path, reference: dict, fixtures: Path, s3_server) -> None:
    storage = s3_server.uri("kill-resume")
    spec = sweeps.write_spec(tmp_path / "mini.yaml", storage, fixtures)
    sweeps.run_and_kill(spec, tmp_path, "phase3_step:6")
    out = sweeps.run(spec, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    store = ResultsStore(storage, "mini")
    assert sweeps.logical(store.read()) == sweeps.logical(reference["rows"])
    assert store.reading().conflicts == ()


def test_deepspeed_cell_through_xstilts_run(
    tmp_path: Path, reference: dict, fixtures: Path
) -> None:
    """A tiny-s cell on 2 Ray Train workers with ZeRO-2 (gloo, DS_ACCELERATOR=cpu), driven
    by its Tune trial, writes rows of the same schema and keys as the single-process run."""
    spec = sweeps.write_spec(
        tmp_path / "mini.yaml", str(tmp_path / "runs"), fixtures,
        intermediate_tasks=["mnli"], target_tasks=["xnli"],
        resources={"tiny-s": {"workers": 2, "zero_stage": 2}},
        **{p: {"defaults": {**sweeps.MINI[p]["defaults"], "micro_batch_size": 4}}
           for p in ("phase2", "phase3")},  # 2 micro-batches a step: one per worker
    )  # fmt: skip
    out = sweeps.run(spec, tmp_path, DS_ACCELERATOR="cpu")
    assert out.returncode == 0, out.stderr[-3000:]
    rows = ResultsStore(str(tmp_path / "runs"), "mini").read()
    single = reference["rows"].filter(ds.field("intermediate_task") == "mnli")
    single = single.filter(ds.field("target_task") == "xnli")
    assert rows.schema == single.schema
    # Trial keys differ (this spec has one target task, the reference four); the rest of
    # every logical key is the same.
    assert {k[1:] for k in sweeps.logical(rows)} == {k[1:] for k in sweeps.logical(single)}


def test_relative_storage_is_relative_to_where_the_user_runs(
    tmp_path: Path, fixtures: Path
) -> None:
    """Tune runs trials in other working directories; `./runs` must still mean here."""
    spec = sweeps.write_spec(
        tmp_path / "mini.yaml", "./runs", fixtures,
        intermediate_tasks=["none"], target_tasks=["xnli"],
    )  # fmt: skip
    out = sweeps.run(spec, tmp_path, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = ResultsStore(str(tmp_path / "runs"), "mini").read()
    assert rows.num_rows == len(get_task("xnli").languages) * len(row_metrics(get_task("xnli")))


def test_cells_of_different_sizes_kill_9_and_resume(tmp_path: Path, fixtures: Path) -> None:
    """Gangs of two sizes go through `scheduling.ListSearcher` (not Tune's grid): killed
    during phase 3 and run again, the sweep ends with the rows of an uninterrupted run."""
    mixed = dict(
        models=["tiny-s", "tiny-m"], intermediate_tasks=["none"], target_tasks=["xnli"],
        resources={"tiny-m": {"cpus_per_worker": 2}},
    )  # fmt: skip
    golden = tmp_path / "golden"
    spec = sweeps.write_spec(tmp_path / "golden.yaml", str(golden), fixtures, **mixed)
    out = sweeps.run(spec, tmp_path / "g")
    assert out.returncode == 0, out.stderr[-3000:]
    storage = tmp_path / "runs"
    spec = sweeps.write_spec(tmp_path / "mini.yaml", str(storage), fixtures, **mixed)
    sweeps.run_and_kill(spec, tmp_path, "phase3_step:6")
    out = sweeps.run(spec, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = ResultsStore(str(storage), "mini").read()
    assert sweeps.logical(rows) == sweeps.logical(ResultsStore(str(golden), "mini").read())
    assert len(rows) == 2 * len(get_task("xnli").languages) * len(row_metrics(get_task("xnli")))


def _signal_run(pgid: int, tmp: Path, signum: int) -> None:
    """Send `signum` to a driver's process group and every process of the Ray it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)
    needle = str(sweeps.ray_dir(tmp))
    for pid in (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if pid != os.getpid() and (needle in environ or needle in cmdline):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


def _contents(sweep_dir: Path) -> dict[str, str]:
    """Every file a run owns under the sweep (not Tune's state, the lease or the node
    cache), by its content: a rewrite of a ledger entry changes its timestamps. In-flight
    temporaries are not content (every reader skips them): a run stopped mid-write leaves
    one (a file, or a folder being published), and deletes it when it wakes and finds the
    sweep taken over."""
    own = ("ledger", "results", "phase2", "cells", "sweep.json")
    return {
        str(p.relative_to(sweep_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(sweep_dir.rglob("*"))
        if p.is_file()
        and p.relative_to(sweep_dir).parts[0] in own
        and not any(is_temporary(part) for part in p.relative_to(sweep_dir).parts)
    }


@pytest.mark.slow
def test_a_paused_run_that_was_taken_over_writes_nothing(
    tmp_path: Path, reference: dict, fixtures: Path
) -> None:
    """The first run is stopped (SIGSTOP, its Ray too) mid-phase-3 past the lease's ttl; a
    second run takes the sweep over and finishes it; the first, continued, stops with one
    line naming the second and writes nothing; the store equals the uninterrupted run's."""
    storage = tmp_path / "runs"
    scheduling = {**sweeps.MINI["scheduling"], "lease_ttl_s": 3}
    spec = sweeps.write_spec(tmp_path / "mini.yaml", str(storage), fixtures, scheduling=scheduling)
    first = tmp_path / "first"
    first.mkdir()
    proc = subprocess.Popen(
        [sweeps.XSTILTS, "run", str(spec)], env=sweeps.env_for(first), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 400
        cells = storage / "mini" / "cells"
        while not any(cells.glob("*/phase3/*/checkpoints/ckpt-*.pt")):
            assert proc.poll() is None, proc.stderr.read()[-2000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "phase 3 never checkpointed"
            time.sleep(0.05)
        _signal_run(proc.pid, first, signal.SIGSTOP)
        time.sleep(4)  # past the ttl: the first run's heartbeat is 4 s old
        second = tmp_path / "second"
        second.mkdir()
        out = sweeps.run(spec, second)
        assert out.returncode == 0, out.stderr[-3000:]
        before = _contents(storage / "mini")
        _signal_run(proc.pid, first, signal.SIGCONT)
        _, err = proc.communicate(timeout=300)
    finally:
        sweeps.kill_all(proc.pid, first)
    assert proc.returncode != 0
    assert "another run took over this run's lease" in err, err[-3000:]
    assert _contents(storage / "mini") == before
    store = ResultsStore(str(storage), "mini")
    assert sweeps.logical(store.read()) == sweeps.logical(reference["rows"])
