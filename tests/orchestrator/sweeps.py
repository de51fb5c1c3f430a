"""Helpers of the end-to-end sweep tests: a minimal spec, running `xstilts run` for real,
killing it (and the Ray it started) with SIGKILL, and reading the store back."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

XSTILTS = str(Path(sys.executable).with_name("xstilts"))
# `xstilts run SPEC` with injected faults (a failing cell, a pause point): faults.py.
FAULTY_RUN = [sys.executable, str(Path(__file__).resolve().with_name("faults.py"))]
# The smallest spec that still exercises every path: two cells (baseline and one
# intermediate task), one target task of each format with all of its languages.
MINI: dict[str, Any] = {
    "name": "mini",
    "models": ["tiny-s"],
    "intermediate_tasks": ["none", "mnli"],
    "target_tasks": ["xnli", "udpos", "xquad", "tatoeba"],
    "seeds": [0],
    "data": {"source": "local", "max_examples": {"train": 96, "dev": 16, "eval": 12}},
    "phase2": {"defaults": {"lr": 1.0e-3, "max_steps": 14, "batch_size": 8, "grad_accum": 1,
                            "max_seq_length": 48, "eval_every": 5, "patience": 3}},
    "phase3": {"defaults": {"lr": 1.0e-3, "max_steps": 10, "batch_size": 8, "grad_accum": 1,
                            "max_seq_length": 48, "eval_every": 5, "patience": 3}},
    "scheduling": {"max_concurrent_trials": 2, "max_failures": 1},
}  # fmt: skip


def write_spec(path: Path, storage: str, fixtures: Path, **changes: Any) -> Path:
    spec = {**MINI, "storage": storage, **changes}
    spec["data"] = {**MINI["data"], "local_dir": str(fixtures)}
    path.write_text(yaml.safe_dump(spec))
    return path


def ray_dir(tmp: Path) -> Path:
    """A short Ray temp dir for `tmp`: Ray's socket paths must stay under 107 bytes."""
    return Path("/tmp") / f"xr-{hashlib.sha256(str(tmp).encode()).hexdigest()[:10]}"


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "XSTILTS_RAY_TEMP_DIR": str(ray_dir(tmp)), "COLUMNS": "200"}
    env.update(extra)
    return env


def run(
    spec: Path,
    tmp: Path,
    *args: str,
    timeout: float = 600,
    cwd: Path | None = None,
    faults: tuple[str, ...] = (),
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    """`xstilts [ARGS] SPEC` (default: run); with `faults` (faults.py options), a faulty run."""
    if faults:
        command = [*FAULTY_RUN, str(spec), *faults]
    else:
        command = [XSTILTS, *args, str(spec)] if args else [XSTILTS, "run", str(spec)]
    return subprocess.run(
        command,
        capture_output=True, text=True, timeout=timeout, env=env_for(tmp, **extra),
        start_new_session=True, cwd=cwd,
    )  # fmt: skip


def run_and_kill(spec: Path, tmp: Path, point: str, timeout: float = 400) -> str:
    """Start `xstilts run`, wait until a trial reaches `point`, then SIGKILL everything."""
    marker = tmp / "paused"
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [*FAULTY_RUN, str(spec), "--pause-at", point, "--marker", str(marker)],
        env=env_for(tmp), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {point}: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            kill_all(proc.pid, tmp)
            raise AssertionError(f"{point} not reached in {timeout} s")
        time.sleep(0.2)
    kill_all(proc.pid, tmp)
    proc.wait(timeout=30)
    return marker.read_text()


def kill_all(pgid: int, tmp: Path) -> None:
    """SIGKILL the driver's process group and any process of the Ray it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    needle = str(ray_dir(tmp))
    for pid in _pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline or needle in environ:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    time.sleep(1)


def _pids() -> list[int]:
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and int(p.name) != os.getpid()
    ]


def logical(table: pa.Table) -> dict[tuple, float]:
    """{(trial_key, target_task, language, split, metric): value} — fails on duplicates."""
    out: dict[tuple, float] = {}
    for row in table.to_pylist():
        key = (row["trial_key"], row["target_task"], row["language"], row["split"], row["metric"])
        assert key not in out, f"duplicate logical key {key}"
        out[key] = row["value"]
    return out


def one_epoch_phase2(batch_size: int) -> dict[str, Any]:
    """MINI's phase 2 run by epochs (one) instead of steps: an arm's step count then shows
    how many examples it trained on."""
    phase2 = {**MINI["phase2"]["defaults"], "epochs": 1.0, "batch_size": batch_size}
    del phase2["max_steps"]
    return {"defaults": phase2}


def arm_rows(sweep: Path) -> tuple[dict[str, str], set[str]]:
    """({intermediate_task: trial_key}, languages) of the rows in the sweep's store, read
    back by DuckDB."""
    import duckdb

    rows = duckdb.sql(
        f"select distinct intermediate_task, trial_key, language "
        f"from read_parquet('{sweep}/results/**/*.parquet')"
    ).fetchall()
    return {task: key for task, key, _ in rows}, {lang for *_, lang in rows}


def phase2_steps(sweep: Path) -> dict[str, int]:
    """Intermediate task -> optimizer steps its cell's phase 2 logged to the sweep's MLflow
    store (one loss a step), read by MLflow's own client."""
    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the store a sweep writes
    client = MlflowClient(tracking_uri=(sweep / "mlruns").as_uri())
    experiment = client.get_experiment_by_name(sweep.name)
    assert experiment is not None
    return {
        (run.info.run_name or "").split("/")[1]: len(
            client.get_metric_history(run.info.run_id, "loss")
        )
        for run in client.search_runs([experiment.experiment_id])
        if (run.info.run_name or "").endswith(" phase2")
    }
