"""SIGTERM (preemption, `ray job stop`) and SIGINT (Ctrl-C) to a running `xstilts run`.

The run stops within its grace period: the cell in training checkpoints at its next
step boundary, the lease is released, Ray is shut down, and the exit code is 143 / 130
with one line saying how to resume. Run again, the sweep ends with the rows of an
uninterrupted run, values included.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sweeps  # tests/orchestrator/sweeps.py, registered by conftest

from orchestrator.lease import live_holder
from storage.results import ResultsStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHANGES = {"target_tasks": ["xnli", "udpos"]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, fixtures: Path) -> dict:
    tmp = tmp_path_factory.mktemp("reference")
    spec = sweeps.write_spec(tmp / "mini.yaml", str(tmp / "runs"), fixtures, **CHANGES)
    out = sweeps.run(spec, tmp)
    assert out.returncode == 0, out.stderr[-3000:]
    return sweeps.logical(ResultsStore(str(tmp / "runs"), "mini").read())


def _in_phase(sweep: Path, phase: str) -> bool:
    """Some cell's ledger entry says it is running `phase`."""
    for path in (sweep / "ledger").glob("*.json"):
        try:
            running = json.loads(path.read_text()).get("running") or {}
        except (OSError, ValueError):
            continue
        if running.get("phase") == phase:
            return True
    return False


def _stop_when(spec: Path, tmp: Path, ready, signum: int, **env: str) -> tuple[int, str, float]:
    """Start `xstilts run`, send `signum` to the driver once `ready()`, return (exit code,
    stderr, seconds from the signal to the exit)."""
    proc = subprocess.Popen(
        [sweeps.XSTILTS, "run", str(spec)], env=sweeps.env_for(tmp, **env),
        start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 400
        while not ready():
            assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "the run never got there"
            time.sleep(0.1)
        sent = time.monotonic()
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
        return proc.returncode, err, time.monotonic() - sent
    finally:
        sweeps.kill_all(proc.pid, tmp)


@pytest.mark.parametrize(
    ("signum", "code", "phase"),
    [(signal.SIGTERM, 143, "phase2"), (signal.SIGINT, 130, "evaluate")],
    ids=["sigterm-mid-phase2", "sigint-mid-evaluation"],
)
def test_signal_stops_cleanly_and_resumes_to_the_uninterrupted_rows(
    tmp_path: Path, reference: dict, fixtures: Path, signum: int, code: int, phase: str
) -> None:
    storage = tmp_path / "runs"
    spec = sweeps.write_spec(tmp_path / "mini.yaml", str(storage), fixtures, **CHANGES)
    sweep = storage / "mini"
    if phase == "phase2":
        ready = lambda: any(sweep.glob("phase2/*/checkpoints/ckpt-*.pt"))  # noqa: E731
    else:
        ready = lambda: _in_phase(sweep, "evaluate")  # noqa: E731
    exit_code, err, seconds = _stop_when(spec, tmp_path, ready, signum)
    assert exit_code == code, err[-3000:]
    assert "Traceback" not in err and "Tuner.restore" not in err
    assert f"resume with `xstilts run {spec}`" in err
    assert seconds < 30 + 20, f"took {seconds:.0f} s to stop"
    assert live_holder(str(storage), "mini") is None  # the lease is released
    out = sweeps.run(spec, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    store = ResultsStore(str(storage), "mini")
    assert sweeps.logical(store.read()) == reference
    assert store.reading().conflicts == ()


DISTRIBUTED = {
    "intermediate_tasks": ["mnli"],
    "target_tasks": ["xnli"],
    # 2 micro-batches of 4 per step: they split over 2 workers (one each), and one process
    # computes both, with the same numbers (issue 16): the uninterrupted reference.
    "phase2": {"defaults": {**sweeps.MINI["phase2"]["defaults"], "micro_batch_size": 4}},
    "phase3": {"defaults": {**sweeps.MINI["phase3"]["defaults"], "micro_batch_size": 4}},
}


def test_sigterm_stops_a_zero_cell_at_an_agreed_step(tmp_path: Path, fixtures: Path) -> None:
    """A ZeRO-2 x 2 cell: both workers checkpoint the same step and end the Train run; the
    resumed sweep ends with the rows of an uninterrupted single-process run (to 1e-6)."""
    golden = tmp_path / "golden"
    spec = sweeps.write_spec(tmp_path / "golden.yaml", str(golden), fixtures, **DISTRIBUTED)
    out = sweeps.run(spec, tmp_path / "g")
    assert out.returncode == 0, out.stderr[-3000:]
    reference = sweeps.logical(ResultsStore(str(golden), "mini").read())
    storage = tmp_path / "runs"
    spec = sweeps.write_spec(
        tmp_path / "mini.yaml", str(storage), fixtures,
        resources={"tiny-s": {"workers": 2, "zero_stage": 2}}, **DISTRIBUTED,
    )  # fmt: skip
    train = storage / "mini" / "train"
    ready = lambda: any(p.name.startswith("checkpoint_") for p in train.rglob("*"))  # noqa: E731
    (tmp_path / "d").mkdir()
    code, err, seconds = _stop_when(
        spec, tmp_path / "d", ready, signal.SIGTERM, DS_ACCELERATOR="cpu"
    )
    assert code == 143, err[-3000:]
    assert seconds < 30 + 20, f"took {seconds:.0f} s to stop"
    assert "Traceback" not in err
    assert live_holder(str(storage), "mini") is None
    out = sweeps.run(spec, tmp_path / "d", DS_ACCELERATOR="cpu")
    assert out.returncode == 0, out.stderr[-3000:]
    rows = sweeps.logical(ResultsStore(str(storage), "mini").read())
    assert {k[1:] for k in rows} == {k[1:] for k in reference}
    by_rest = {k[1:]: v for k, v in reference.items()}
    for key, value in rows.items():
        assert value == pytest.approx(by_rest[key[1:]], rel=1e-6, abs=1e-9), key
