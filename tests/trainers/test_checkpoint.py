from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from resume_job import STEPS, outcome, run

from storage.errors import UserError
from trainers.checkpoint import CheckpointStore, Resume

HERE = Path(__file__).parent


class Interrupt(Exception):
    pass


def stop_at(k: int):
    def on_step(step: int, _loss: float) -> None:
        if step == k:
            raise Interrupt

    return on_step


def test_resumed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    full = outcome(*run(str(tmp_path / "full"), str(tmp_path / "c")))
    with pytest.raises(Interrupt):
        run(str(tmp_path / "cut"), str(tmp_path / "c"), stop_at(5))
    assert CheckpointStore(str(tmp_path / "cut")).steps() == [5, 4]
    resumed = outcome(*run(str(tmp_path / "cut"), str(tmp_path / "c")))
    assert resumed == full
    assert len(full["history"]) == STEPS // 3


def test_damaged_newest_checkpoint_falls_back_to_the_previous(tmp_path: Path) -> None:
    store = CheckpointStore(str(tmp_path))
    store.save(1, {"x": torch.ones(3)})
    store.save(2, {"x": torch.full((3,), 2.0)})
    store.save(3, {"x": torch.full((3,), 3.0)})
    assert store.steps() == [3, 2]
    newest = tmp_path / "ckpt-000000003.pt"
    newest.write_bytes(newest.read_bytes()[:-7])  # half-written
    (tmp_path / ".tmp-abc").write_bytes(b"partial")  # an interrupted write
    step, state = store.latest()
    assert step == 2 and torch.equal(state["x"], torch.full((3,), 2.0))


def test_flipped_byte_is_detected(tmp_path: Path) -> None:
    store = CheckpointStore(str(tmp_path))
    store.save(1, {"x": torch.ones(3)})
    path = tmp_path / "ckpt-000000001.pt"
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF
    path.write_bytes(bytes(blob))
    assert store.latest() is None


def test_resume_policies(tmp_path: Path) -> None:
    store = CheckpointStore(str(tmp_path))
    assert store.resume(Resume.IF_AVAILABLE) is None
    with pytest.raises(UserError, match="resume 'always'"):
        store.resume(Resume.ALWAYS)
    store.save(4, {"x": torch.ones(1)})
    assert store.resume(Resume.NEVER) is None
    assert store.resume(Resume.ALWAYS)[0] == 4


def test_relative_checkpoint_directory_is_a_user_error() -> None:
    with pytest.raises(UserError, match="neither absolute nor a URI"):
        CheckpointStore("relative/dir")


def _job(ckpt: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.getcwd()])}
    return subprocess.Popen(
        [sys.executable, str(HERE / "resume_job.py"), str(ckpt), str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.integration
def test_kill_minus_nine_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    full = _job(tmp_path / "full", tmp_path / "full.json")
    assert full.wait(timeout=300) == 0
    victim = _job(tmp_path / "cut", tmp_path / "cut.json")
    assert victim.stdout is not None
    for line in victim.stdout:
        if line.strip() == "STEP 6":
            os.kill(victim.pid, signal.SIGKILL)
            break
    assert victim.wait(timeout=60) == -signal.SIGKILL
    assert not (tmp_path / "cut.json").exists()
    assert CheckpointStore(str(tmp_path / "cut")).steps()[0] >= 6
    again = _job(tmp_path / "cut", tmp_path / "cut.json")
    assert again.wait(timeout=300) == 0
    assert json.loads((tmp_path / "cut.json").read_text()) == json.loads(
        (tmp_path / "full.json").read_text()
    )
