"""The cluster path for real: `cluster/submit.sh` against a local Ray head on 127.0.0.1.

A module fixture starts `ray start --head` with the dashboard, token authentication (a
token of its own in a temporary file, through `RAY_AUTH_TOKEN_PATH`: the machine's
`~/.ray/auth_token` is never read or written) and a metrics export port, on free ports,
under its own session, with PATH leading to this virtualenv as the cluster configs
arrange on the nodes. It is stopped by SIGKILL of exactly the processes it started (every
process whose command line or environment names its temporary folder, which all of them
inherit); never with `ray stop`, which would stop every Ray on the machine.

The sweep is the two-cell mini spec of the end-to-end tests (tests/orchestrator/sweeps.py),
submitted with `cluster/submit.sh` (the user's path: `ray job submit --working-dir .
--runtime-env cluster/runtime_env.yaml` with one submission id per attempt). The spec file
travels with the working dir, so it is written into a temporary folder inside the
repository, removed afterwards. Run inside a private network namespace:
``unshare --net sh -c 'ip link set lo up && .venv/bin/pytest -m "integration or slow"
tests/cluster/test_job_submit.py'``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from evaluation.data.fixtures import write_fixtures
from evaluation.scorers import row_metrics
from evaluation.tasks import get_task
from orchestrator.grid import expand
from orchestrator.ledger import Ledger, cell_view
from orchestrator.spec import load_spec
from storage.results import ResultsStore

ROOT = Path(__file__).resolve().parents[2]
SUBMIT = ROOT / "cluster" / "submit.sh"
VENV_BIN = Path(sys.executable).parent
RAY = str(VENV_BIN / "ray")

if "sweeps" in sys.modules:
    sweeps = sys.modules["sweeps"]
else:
    _spec = importlib.util.spec_from_file_location(
        "sweeps", ROOT / "tests" / "orchestrator" / "sweeps.py"
    )
    assert _spec is not None and _spec.loader is not None
    sweeps = importlib.util.module_from_spec(_spec)
    sys.modules["sweeps"] = sweeps
    _spec.loader.exec_module(sweeps)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JOB_TIMEOUT_S = 300
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


@dataclass(frozen=True)
class Head:
    tmp: Path  # short folder of its own: Ray's temp dir, the token
    token: str
    dashboard: str  # http://127.0.0.1:<port>, the job API
    metrics: str  # http://127.0.0.1:<port>/metrics
    env: dict[str, str]  # environment of the `ray` CLI and submit.sh

    def api(self, path: str) -> Any:
        request = urllib.request.Request(
            self.dashboard + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def job(self, submission_id: str) -> dict[str, Any]:
        return self.api(f"/api/jobs/{submission_id}")

    def logs(self, submission_id: str) -> str:
        try:
            return self.api(f"/api/jobs/{submission_id}/logs")["logs"][-4000:]
        except (OSError, ValueError, KeyError) as err:
            return f"(no logs: {err})"

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def kill_processes_naming(needle: str) -> None:
    """SIGKILL every process whose command line or environment names `needle`.

    Every process of the head (and of its jobs) inherits `RAY_AUTH_TOKEN_PATH`, which lies
    in the head's own temporary folder, so this is exactly what the fixture started.
    """
    for _ in range(3):  # a dying raylet may still be spawning
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
                environ = (proc / "environ").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if needle in cmdline or needle in environ:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(proc.name), signal.SIGKILL)
        time.sleep(0.5)


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
    tmp = Path(tempfile.mkdtemp(prefix="xstilts-head-", dir="/tmp"))  # short: socket paths
    token = secrets.token_hex(32)
    token_path = tmp / "auth_token"
    token_path.write_text(token)
    token_path.chmod(0o600)
    gcs, dashboard, metrics, client, agent = free_ports(5)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "XSTILTS_"))}
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN_PATH=str(token_path),
        RAY_metrics_report_interval_ms="1000",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",  # as the nodes' venv is
    )
    command = [
        RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={gcs}",
        "--include-dashboard=true", "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}", f"--dashboard-agent-listen-port={agent}",
        f"--ray-client-server-port={client}", f"--metrics-export-port={metrics}",
        f"--temp-dir={tmp / 'ray'}", "--num-cpus=4", "--disable-usage-stats",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, env=env, start_new_session=True, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    cli_env = {**env, "RAY_ADDRESS": f"http://127.0.0.1:{dashboard}"}
    node = Head(
        tmp=tmp,
        token=token,
        dashboard=f"http://127.0.0.1:{dashboard}",
        metrics=f"http://127.0.0.1:{metrics}/metrics",
        env=cli_env,
    )
    try:
        out, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, out[-3000:]
        deadline = time.monotonic() + 90
        while True:  # the job API answers a little after `ray start` returns
            try:
                node.api("/api/jobs/")
                break
            except (OSError, ValueError):
                assert time.monotonic() < deadline, "the job API did not come up in 90 s"
                time.sleep(1)
        yield node
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()  # `ray start` itself, if it is still starting
        kill_processes_naming(str(tmp))
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fixtures(tmp_path_factory.mktemp("fixtures") / "data", n_per_split=48)


@pytest.fixture(scope="module")
def spec_dir() -> Iterator[Path]:
    """Spec files travel with the working dir, so they must live inside the repository."""
    path = ROOT / "tests" / "cluster" / f".job-submit-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def submit(head: Head, spec: Path) -> str:
    """`cluster/submit.sh SPEC`; returns the submission id it announced."""
    expected = head.cli(str(SUBMIT), "--print-id", str(spec))
    assert expected.returncode == 0, expected.stderr
    out = head.cli(str(SUBMIT), str(spec))
    assert out.returncode == 0, out.stderr[-3000:]
    submission_id = expected.stdout.strip()
    assert re.fullmatch(r"xstilts-mini-\d+", submission_id), expected.stdout
    assert f"submitting {submission_id} " in out.stderr
    assert head.token not in out.stdout + out.stderr  # the token is never shown
    return submission_id


def wait_for(head: Head, submission_id: str, timeout: float = JOB_TIMEOUT_S) -> str:
    deadline = time.monotonic() + timeout
    while (status := head.job(submission_id)["status"]) not in TERMINAL:
        assert time.monotonic() < deadline, f"{submission_id} still {status}"
        time.sleep(1)
    return status


def expected_keys(views: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """(target key, task, language, metric) of every row the cells should have written."""
    return {
        (key, task, language, metric)
        for cell in views.values()
        for task, key in cell.target_keys.items()
        for language in get_task(task).languages
        for metric in row_metrics(get_task(task))
    }


def cells(storage: Path, spec: Path) -> dict[str, Any]:
    """Each cell of the spec, with its target keys and how the ledger sees it."""
    states = Ledger(str(storage), "mini").all_states()
    parsed = load_spec(str(spec), storage=str(storage))
    return {
        c.trial_key: SimpleNamespace(
            target_keys=c.target_keys, view=cell_view(states, c.trial_key, c.target_keys)
        )
        for c in expand(parsed)
    }


def all_done(storage: Path, spec: Path) -> bool:
    found = cells(storage, spec).values()
    targets = sweeps.MINI["target_tasks"]
    return len(found) == 2 and all(c.view and c.view.status(targets) == "done" for c in found)


def check_rows(storage: Path, spec: Path) -> dict[tuple, float]:
    """Every cell × target task × language × metric, each logical key once."""
    store = ResultsStore(str(storage), "mini")
    table = store.read()
    rows = sweeps.logical(table)  # fails on a duplicate logical key
    views = cells(storage, spec)
    assert len(views) == 2, views  # the two cells of the mini spec
    fields = ("trial_key", "target_task", "language", "metric")
    got = {tuple(row[f] for f in fields) for row in table.to_pylist()}
    assert got == expected_keys(views)
    assert table.num_rows == len(got)
    assert store.reading().conflicts == ()
    return rows


@pytest.fixture(scope="module")
def first_sweep(
    head: Head, fixtures: Path, spec_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    storage = tmp_path_factory.mktemp("first") / "runs"
    spec = sweeps.write_spec(spec_dir / "first.yaml", str(storage), fixtures)
    submission_id = submit(head, spec)
    status = wait_for(head, submission_id)
    return {"id": submission_id, "status": status, "storage": storage, "spec": spec}


def test_submitted_sweep_succeeds_and_stores_every_row(head: Head, first_sweep: dict) -> None:
    submission_id = first_sweep["id"]
    assert first_sweep["status"] == "SUCCEEDED", head.logs(submission_id)
    job = head.job(submission_id)
    assert job["type"] == "SUBMISSION" and job["driver_exit_code"] == 0
    spec = str(first_sweep["spec"].relative_to(ROOT))  # as the uploaded working dir has it
    assert job["entrypoint"] == f"xstilts run {spec}"
    attempt = submission_id.rsplit("-", 1)[1]
    assert job["metadata"] == {"sweep": "mini", "attempt": attempt, "spec": spec}
    status = head.cli(RAY, "job", "status", submission_id)
    assert status.returncode == 0 and f"Job '{submission_id}' succeeded" in status.stdout
    storage, spec_path = first_sweep["storage"], first_sweep["spec"]
    assert all_done(storage, spec_path), cells(storage, spec_path)
    check_rows(storage, spec_path)


def metric_total(text: str, name: str, sweep: str) -> float | None:
    total = None
    for line in text.splitlines():
        if line.startswith(name + "{") and f'sweep="{sweep}"' in line:
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_export_endpoint_has_xstilts_rows(head: Head, first_sweep: dict) -> None:
    assert first_sweep["status"] == "SUCCEEDED", head.logs(first_sweep["id"])
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(head.metrics, timeout=10) as response:
            text = response.read().decode()
        rows = metric_total(text, "ray_xstilts_rows_written_total", "mini")
        if rows or time.monotonic() > deadline:
            break
        time.sleep(1)
    found = sorted({ln.split("{")[0] for ln in text.splitlines() if ln.startswith("ray_xstilts")})
    assert rows is not None and rows > 0, f"xstilts series on the metrics port: {found}"
    assert "ray_xstilts_cells_done_total" in found


def test_stopped_job_resubmitted_completes_without_redoing_phase2(
    head: Head,
    first_sweep: dict,
    fixtures: Path,
    spec_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    storage = tmp_path_factory.mktemp("stopped") / "runs"
    spec = sweeps.write_spec(spec_dir / "stopped.yaml", str(storage), fixtures)
    first = submit(head, spec)
    ledger = Ledger(str(storage), "mini")
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not any(s.phase2_done or s.targets for s in ledger.all_states().values()):
        status = head.job(first)["status"]
        assert status not in TERMINAL, f"{first} ended {status} early: {head.logs(first)}"
        assert time.monotonic() < deadline, "no phase-2 model done or target task scored in time"
        time.sleep(0.5)
    stop = head.cli(RAY, "job", "stop", first)
    assert stop.returncode == 0, stop.stderr[-2000:]
    assert wait_for(head, first, timeout=60) == "STOPPED", head.logs(first)
    assert not all_done(storage, spec), "the sweep had finished before it was stopped"
    finals = list((storage / "mini" / "phase2").glob("*/final"))
    assert finals, "the ledger shows progress but no phase-2 model has a final checkpoint"
    stamps = {p: p.stat().st_mtime_ns for p in finals}

    second = submit(head, spec)
    assert int(second.rsplit("-", 1)[1]) == int(first.rsplit("-", 1)[1]) + 1
    assert wait_for(head, second) == "SUCCEEDED", head.logs(second)
    rows = check_rows(storage, spec)
    assert rows == check_rows(first_sweep["storage"], first_sweep["spec"])  # uninterrupted
    for path, stamp in stamps.items():
        assert path.stat().st_mtime_ns == stamp, f"{path} was trained and published again"
    assert all_done(storage, spec), cells(storage, spec)
