"""Experiment tracking (orchestrator.tracking) and the quiet terminal (orchestrator.terminal).

Every store is read back with its own tool, never with ours: MLflow's client, TensorBoard's
event reader, W&B's run files. The unit tests drive a cell's tracker as the cell runner's
hooks do (a killed attempt is one that is never closed); the end-to-end test kills a real
`xstilts run` with SIGKILL mid-phase, resumes it, and compares the MLflow store with the
results store.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator import tracking
from orchestrator.grid import expand, result_config
from orchestrator.jobs import build_jobs
from orchestrator.spec import load_spec, validate
from orchestrator.tracking import CellTracker, Targets, WandbTarget
from storage.layout import SweepLayout
from trainers.job import CellConfig

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

TRACKED = {
    "mlflow": {"uri": "http://127.0.0.1:5000", "experiment": "elsewhere"},
    "wandb": {"project": "p", "mode": "online"},
    "tensorboard": True,
    "log_every": 10,
}


@pytest.mark.parametrize("name", ["quickstart", "phang2020", "scaling"])
def test_tracking_never_enters_a_key(name: str) -> None:
    plain = load_spec(name)
    tracked = validate({**plain.model_dump(exclude_defaults=True), "tracking": TRACKED})
    assert tracked.tracking.log_every == 10
    assert [c.trial_key for c in expand(plain)] == [c.trial_key for c in expand(tracked)]
    assert [c.phase2_key for c in expand(plain)] == [c.phase2_key for c in expand(tracked)]
    assert result_config(plain) == result_config(tracked)


def test_a_bad_tracking_section_names_its_field() -> None:
    raw = load_spec("quickstart").model_dump(exclude_defaults=True)
    with pytest.raises(Exception, match=r"tracking\.wandb\.mode"):
        validate({**raw, "tracking": {"wandb": {"project": "p", "mode": "sometimes"}}})


def test_credentials_in_the_mlflow_uri_are_refused_unechoed() -> None:
    raw = load_spec("quickstart").model_dump(exclude_defaults=True)
    expected = r"tracking\.mlflow\.uri: .*MLFLOW_TRACKING_PASSWORD"
    with pytest.raises(Exception, match=expected) as err:
        validate({**raw, "tracking": {"mlflow": {"uri": "https://me:s3cr3t@mlflow.example"}}})
    assert "s3cr3t" not in str(err.value)


def test_default_store_is_under_the_sweep_for_local_storage_only(tmp_path: Path) -> None:
    local = SweepLayout.of(str(tmp_path), "sw")
    assert tracking.mlflow_uri(None, local.mlruns) == (tmp_path / "sw" / "mlruns").as_uri()
    remote = SweepLayout.of("s3://bucket/prefix?region=eu-west-1", "sw")
    assert tracking.mlflow_uri(None, remote.mlruns) is None
    assert tracking.mlflow_uri("sqlite:///x.db", None) == "sqlite:///x.db"
    assert tracking.mlflow_uri("rel/dir", None) == Path("rel/dir").resolve().as_uri()


# --- one cell's tracker ----------------------------------------------------------------------


def job_of(tmp: Path, **changes: Any) -> CellConfig:
    raw = {
        "name": "trk",
        "storage": str(tmp / "runs"),
        "models": ["tiny-s"],
        "intermediate_tasks": ["mnli"],
        "target_tasks": ["xnli"],
        "seeds": [3],
        "data": {"source": "local", "local_dir": str(tmp / "data")},
        "phase2": {"defaults": {"lr": 1.0e-3, "max_steps": 14, "batch_size": 8}},
        **changes,
    }
    spec = validate(raw)
    jobs = build_jobs(spec, SweepLayout.of(spec.storage, spec.name), expand(spec))
    return next(iter(jobs.values())).config


def steps(tracker: CellTracker, phase: str, target: str | None, first: int, last: int) -> None:
    tracker.progress(phase, target, {})  # a phase starts (no step), as the cell runner does
    for step in range(first, last + 1):
        detail = {"step": step, "loss": 1.0 / step, "lr": 1e-3, "samples_per_s": 100.0 + step}
        if step % 5 == 0:
            detail["dev_score"] = 10.0 * step
        tracker.progress(phase, target, detail)


ROWS = [
    {"split": "test", "metric": "accuracy", "language": lang, "value": v}
    for lang, v in [("en", 81.25), ("de", 70.5), ("sw", 33.333333333333336)]
]


def started(found: Targets, pending: list[str]) -> Targets:
    found, notices = tracking.start_sweep(found)
    pending += notices
    return found


def test_a_killed_and_resumed_cell_keeps_one_run_per_phase_with_each_step_once(
    tmp_path: Path,
) -> None:
    from mlflow import MlflowClient

    job = job_of(tmp_path)
    uri = (tmp_path / "mlruns").as_uri()
    notices: list[str] = []
    found = started(Targets("trk", "trk", mlflow_uri=uri), notices)
    assert notices == [] and found.sweep_run is not None
    first = CellTracker(found, job)
    steps(first, "phase2", None, 1, 7)  # killed at step 7: never closed
    again = CellTracker(found, job)  # the next attempt resumes from the checkpoint at 5
    steps(again, "phase2", None, 6, 14)
    steps(again, "phase3", "xnli", 1, 4)
    again.progress("evaluate", "xnli", {"languages": 3})
    again.scores("xnli", ROWS)  # killed after logging the scores, before the ledger said so
    last = CellTracker(found, job)
    steps(last, "phase3", "xnli", 1, 4)
    last.progress("evaluate", "xnli", {})
    last.scores("xnli", ROWS)
    last.close()

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("trk")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    by_level: dict[str, list] = {}
    for run in runs:
        by_level.setdefault(run.data.tags["level"], []).append(run)
    assert {k: len(v) for k, v in by_level.items()} == {"sweep": 1, "cell": 1, "phase": 2}
    (cell,) = by_level["cell"]
    assert cell.data.tags["mlflow.parentRunId"] == found.sweep_run
    assert cell.info.status == "FINISHED"
    phases = {r.data.tags["phase"]: r for r in by_level["phase"]}
    assert set(phases) == {"phase2", "phase3"}
    for run in phases.values():
        tags = run.data.tags
        assert tags["mlflow.parentRunId"] == cell.info.run_id
        assert (tags["cell_key"], tags["model"], tags["seed"]) == (job.trial_key, "tiny-s", "3")
        assert tags["intermediate_task"] == "mnli"
    assert phases["phase2"].data.tags["trial_key"] == job.trial_key
    assert phases["phase3"].data.tags["trial_key"] == job.target_keys["xnli"]  # as its rows
    assert phases["phase3"].data.tags["target_task"] == "xnli"
    assert "target_task" not in phases["phase2"].data.tags
    assert phases["phase2"].data.params["lr"] == "0.001"
    assert phases["phase2"].data.params["max_steps"] == "14"

    def history(run: Any, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]

    p2 = phases["phase2"]
    assert history(p2, "loss") == [(s, 1.0 / s) for s in range(1, 15)]
    assert [s for s, _ in history(p2, "samples_per_s")] == list(range(1, 15))
    assert history(p2, "dev_score") == [(5, 50.0), (10, 100.0)]
    p3 = phases["phase3"]
    assert [s for s, _ in history(p3, "loss")] == [1, 2, 3, 4]
    for row in ROWS:
        key = f"test/accuracy/{row['language']}"
        assert history(p3, key) == [(0, row["value"])]  # logged once, the exact value


def test_log_every_thins_the_steps_but_keeps_every_evaluation(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    job = job_of(tmp_path)
    uri = (tmp_path / "mlruns").as_uri()
    found = started(Targets("trk", "trk", mlflow_uri=uri, log_every=4), [])
    tracker = CellTracker(found, job)
    steps(tracker, "phase2", None, 1, 14)
    tracker.close()
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("trk")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id], "tags.level = 'phase'")
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [4, 8, 12]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "dev_score")] == [5, 10]


def test_unusable_backends_are_named_once_and_never_fail_a_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, no W&B settings
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    dead = "http://127.0.0.1:9"  # nothing listens on the discard port
    wandb = WandbTarget("p", "online", None, str(tmp_path / "wandb"))
    found, notices = tracking.start_sweep(Targets("trk", "trk", mlflow_uri=dead, wandb=wandb))
    assert found.mlflow_uri is None and found.wandb is None
    assert len(notices) == 2
    assert notices[0].startswith(f"tracking: MLflow at {dead} is off: ")
    assert notices[1].startswith("tracking: W&B is off: ")
    # A server that goes away after the check: the cell's tracker warns once, then carries on.
    caplog.set_level(logging.WARNING, logger="orchestrator.tracking")
    job = job_of(tmp_path)
    tracker = CellTracker(Targets("trk", "trk", mlflow_uri=dead), job)
    steps(tracker, "phase2", None, 1, 6)
    tracker.scores("xnli", ROWS)
    tracker.close("FAILED")
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and job.trial_key in warned[0] and "MLflow" in warned[0]


def test_a_run_taken_over_logs_nothing_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    monkeypatch.setattr(tracking, "FENCE_EVERY_S", 0.0)
    taken = [False]

    def fence() -> None:
        if taken[0]:
            raise RuntimeError("another run took over this run's lease")

    job = job_of(tmp_path)
    uri = (tmp_path / "mlruns").as_uri()
    tracker = CellTracker(started(Targets("trk", "trk", mlflow_uri=uri), []), job, fence)
    steps(tracker, "phase2", None, 1, 4)
    taken[0] = True  # paused past the lease's ttl, taken over, woken up
    steps(tracker, "phase2", None, 5, 9)
    tracker.close()
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("trk")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id], "tags.level = 'phase'")
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2, 3, 4]


def test_wandb_offline_writes_its_run_files(tmp_path: Path) -> None:
    job = job_of(tmp_path)
    directory = tmp_path / "wandb"
    found = started(Targets("trk", "trk", wandb=WandbTarget("xstilts", "offline", None,
                                                            str(directory))), [])  # fmt: skip
    tracker = CellTracker(found, job)
    steps(tracker, "phase2", None, 1, 6)
    tracker.close()
    run_id = f"{job.trial_key}-phase2"
    (folder,) = list((directory / "wandb").glob(f"offline-run-*-{run_id}"))
    records = folder / f"run-{run_id}.wandb"
    assert records.is_file() and records.stat().st_size > 0
    # The records are W&B's own binary log (read by `wandb sync`; no Python reader ships):
    # the metric names and the run's name are in it.
    data = records.read_bytes()
    assert b"loss" in data and b"dev_score" in data and b"tiny-s/mnli/3 phase2" in data


def test_tensorboard_event_files_hold_the_loss_curve_once(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    job = job_of(tmp_path)
    root = tmp_path / "tb"
    found = started(Targets("trk", "trk", tensorboard=str(root)), [])
    killed = CellTracker(found, job)
    steps(killed, "phase3", "xnli", 1, 7)
    killed.backends[0].close("KILLED")  # what reached the disk before the kill
    resumed = CellTracker(found, job)
    steps(resumed, "phase3", "xnli", 6, 10)
    resumed.scores("xnli", ROWS)
    resumed.close()
    folder = root / job.target_keys["xnli"] / "phase3-xnli"
    assert len(list(folder.glob("events.out.tfevents.*"))) == 2
    events = EventAccumulator(str(folder))
    events.Reload()
    loss = events.Scalars("loss")
    assert [e.step for e in loss] == list(range(1, 11))
    assert [e.value for e in loss] == pytest.approx([1.0 / s for s in range(1, 11)])
    assert [e.step for e in events.Scalars("dev_score")] == [5, 10]
    assert events.Scalars("test/accuracy/de")[0].value == pytest.approx(70.5)


# --- the quiet terminal ----------------------------------------------------------------------


def test_quiet_sends_everything_but_our_lines_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "run.log"
    script = f"""
import logging, os, sys
from orchestrator import terminal
with terminal.quiet({str(log)!r}):
    print("tune box")
    os.write(2, b"C++ core line\\n")
    logging.getLogger("ray").warning("ray notice")
    terminal.say("our line")
print("after", file=sys.stderr)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert out.stdout == ""
    assert out.stderr == "our line\nafter\n"
    text = log.read_text()
    assert "tune box" in text and "C++ core line" in text and "ray notice" in text


# --- end to end: kill -9 mid-phase, resume, read the MLflow store ----------------------------


def _sweeps() -> Any:
    if "sweeps" in sys.modules:
        return sys.modules["sweeps"]
    spec = importlib.util.spec_from_file_location("sweeps", Path(__file__).with_name("sweeps.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sweeps"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.integration
@pytest.mark.slow
def test_kill_9_mid_phase_and_resume_track_each_cell_phase_once(tmp_path: Path) -> None:
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from evaluation.data.fixtures import write_fixtures
    from storage.results import ResultsStore

    sweeps = _sweeps()
    fixtures = write_fixtures(tmp_path / "data", n_per_split=48)
    storage = tmp_path / "runs"
    spec = sweeps.write_spec(
        tmp_path / "mini.yaml", str(storage), fixtures,
        intermediate_tasks=["mnli"], target_tasks=["xnli"], tracking={"tensorboard": True},
    )  # fmt: skip
    sweeps.run_and_kill(spec, tmp_path, "phase3_step:6")
    out = sweeps.run(spec, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    # The terminal: our lines only; Ray's and Tune's in the log file it names.
    assert "Configuration for experiment" not in out.stdout + out.stderr
    assert "View detailed results" not in out.stdout + out.stderr
    logs = sorted((storage / "mini" / "logs").glob("run-*.log"))
    assert len(logs) == 2 and str(logs[-1]) in out.stderr.replace("\n", "")
    assert "Configuration for experiment" in logs[-1].read_text()

    rows = ResultsStore(str(storage), "mini").read().to_pylist()
    assert rows
    client = MlflowClient(tracking_uri=(storage / "mini" / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("mini")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    phases = [r for r in runs if r.data.tags["level"] == "phase"]
    keys = [(r.data.tags["trial_key"], r.data.tags["phase"], r.data.tags.get("target_task"))
            for r in phases]  # fmt: skip
    (trial_key,) = {r["trial_key"] for r in rows}  # the target task's own key
    (cell_key,) = {r.data.tags["cell_key"] for r in runs if r.data.tags["level"] != "sweep"}
    expected = [(cell_key, "phase2", None), (trial_key, "phase3", "xnli")]
    assert sorted(keys, key=str) == sorted(expected, key=str)
    assert all(r.info.status == "FINISHED" for r in runs)
    p3 = next(r for r in phases if r.data.tags["phase"] == "phase3")
    for row in rows:
        assert {k: p3.data.tags[k] for k in ("model", "intermediate_task", "seed")} == {
            "model": row["model"], "intermediate_task": row["intermediate_task"],
            "seed": str(row["seed"]),
        }  # fmt: skip
    finals = {k: v for k, v in p3.data.metrics.items() if k.count("/") == 2}
    assert finals == {f"{r['split']}/{r['metric']}/{r['language']}": r["value"] for r in rows}
    max_steps = {"phase2": 14, "phase3": 10}
    for run in phases:
        for key in ("loss", "lr", "samples_per_s"):
            got = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert got == list(range(1, max_steps[run.data.tags["phase"]] + 1)), (key, got)
    # TensorBoard, killed and resumed alike: each step once, the same losses as MLflow's.
    events = EventAccumulator(str(storage / "mini" / "tensorboard" / trial_key / "phase3-xnli"))
    events.Reload()
    mlflow_loss = client.get_metric_history(p3.info.run_id, "loss")
    assert [(e.step, pytest.approx(e.value)) for e in events.Scalars("loss")] == [
        (m.step, m.value) for m in mlflow_loss
    ]
