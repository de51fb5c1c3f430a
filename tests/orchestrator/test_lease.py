"""The sweep lease: one live run per sweep, takeover of a dead holder's lease.

Tests taking `storage_uri` are portable: tests/orchestrator/test_store_s3.py runs them
again against a real S3 server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from orchestrator.lease import Lease, live_holder
from storage.errors import UserError
from storage.files import resolve_storage


@pytest.fixture
def storage_uri(tmp_path: Path) -> str:
    return str(tmp_path / "root")


def lease_files(storage_uri: str, sweep: str = "sw") -> list[str]:
    storage = resolve_storage(storage_uri)
    return storage.list_files(storage.path(sweep, "lease"))


def plant_record(storage_uri: str, generation: int, host: str, pid: int, age_s: float) -> None:
    """A lease record as another run would have left it."""
    storage = resolve_storage(storage_uri)
    record = {
        "generation": generation,
        "host": host,
        "pid": pid,
        "token": "elsewhere",
        "heartbeat_at": time.time() - age_s,
        "ttl_s": 60.0,
        "released": False,
    }
    path = storage.path("sw", "lease", f"gen-{generation:09d}.json")
    storage.publish(path, json.dumps(record).encode())


def test_a_second_run_is_refused_while_the_first_lives(storage_uri: str) -> None:
    with Lease(storage_uri, "sw"):
        holder = live_holder(storage_uri, "sw")
        assert holder is not None and holder.pid == os.getpid()
        with pytest.raises(UserError, match=rf"sweep 'sw' is already running \(pid {os.getpid()}"):
            Lease(storage_uri, "sw").acquire()
    assert live_holder(storage_uri, "sw") is None


def test_generations_grow_and_old_ones_go(storage_uri: str) -> None:
    for _ in range(3):
        with Lease(storage_uri, "sw"):
            pass
    assert lease_files(storage_uri) == ["gen-000000003.json"]


def test_a_fresh_lease_on_another_host_is_respected(storage_uri: str) -> None:
    plant_record(storage_uri, 4, "other-host", 12345, age_s=5)
    expected = r"pid 12345 on other-host, last heartbeat [56] s ago.*run again in 5[345] s"
    with pytest.raises(UserError, match=expected):
        Lease(storage_uri, "sw").acquire()


def test_an_expired_lease_is_taken_over(storage_uri: str) -> None:
    plant_record(storage_uri, 4, "other-host", 12345, age_s=600)
    with Lease(storage_uri, "sw") as lease:
        holder = live_holder(storage_uri, "sw")
        assert holder is not None and holder.token == lease.token and holder.generation == 5
    assert lease_files(storage_uri) == ["gen-000000005.json"]


def test_two_sweeps_have_separate_leases(storage_uri: str) -> None:
    with Lease(storage_uri, "one"), Lease(storage_uri, "two"):
        assert lease_files(storage_uri, "one") == lease_files(storage_uri, "two")


def test_heartbeat_refreshes_the_record(storage_uri: str) -> None:
    with Lease(storage_uri, "sw", heartbeat_s=0.05):
        first = live_holder(storage_uri, "sw")
        time.sleep(0.5)
        later = live_holder(storage_uri, "sw")
    assert first is not None and later is not None
    assert later.heartbeat_at > first.heartbeat_at


def test_a_run_that_was_taken_over_knows_it(storage_uri: str) -> None:
    lease = Lease(storage_uri, "sw", heartbeat_s=0.05)
    with lease:
        plant_record(storage_uri, 2, "other-host", 12345, age_s=0)
        deadline = time.monotonic() + 10
        while not lease.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lease.lost
        with pytest.raises(UserError, match="another run took over"):
            lease.check()
    holder = live_holder(storage_uri, "sw")
    assert holder is not None and holder.host == "other-host"  # release left it alone


def test_racing_runs_get_exactly_one_lease(storage_uri: str) -> None:
    barrier, outcomes, held = threading.Barrier(6), [], []

    def contend() -> None:
        lease = Lease(storage_uri, "sw")
        barrier.wait()
        try:
            lease.acquire()
            outcomes.append("won")
            held.append(lease)
        except UserError:
            outcomes.append("refused")

    threads = [threading.Thread(target=contend) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for lease in held:  # its heartbeat must not outlive the test (and the server)
        lease.release()
    assert sorted(outcomes) == ["refused"] * 5 + ["won"]


def test_a_killed_holder_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import time
        from orchestrator.lease import Lease
        lease = Lease({str(tmp_path)!r}, "sw", ttl_s=3600)
        lease.acquire()
        print("held", flush=True)
        time.sleep(600)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"pid {holder.pid}"):
            Lease(str(tmp_path), "sw").acquire()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with Lease(str(tmp_path), "sw") as lease:
        assert not lease.lost


def test_a_run_that_lost_its_lease_writes_nothing(tmp_path: Path) -> None:
    """A run paused past the lease's time-to-live (its heartbeat stops, as in a stopped VM)
    while a second run takes the sweep over: every kind of write the first run makes
    afterwards is refused with one line naming the new holder, and nothing changes."""
    from orchestrator.guard import check_or_record
    from orchestrator.ledger import Ledger
    from orchestrator.spec import load_spec
    from storage.files import publish_dir
    from storage.layout import SweepLayout
    from storage.results import ResultsStore
    from trainers.checkpoint import CheckpointStore

    root = str(tmp_path / "root")
    first = Lease(root, "sw", ttl_s=2.0, heartbeat_s=0.1)
    first.acquire()
    fence = first.fence()
    ledger, store = Ledger(root, "sw", fence), ResultsStore(root, "sw", fence)
    layout = SweepLayout.of(root, "sw")
    checkpoints = CheckpointStore(layout.cell("k1", "phase3", "xnli", "checkpoints"), fence)
    ledger.mark_running("k1", "phase3", "xnli")  # writes go through while the lease holds
    checkpoints.save(1, {"step": 1})
    first._stop.set()  # the run is paused: no heartbeat
    assert first._thread is not None
    first._thread.join()
    time.sleep(2.5)  # past the time-to-live (same host, live pid: only the ttl frees it)
    with Lease(root, "sw", ttl_s=2.0):
        before = sorted((p, p.stat().st_mtime_ns) for p in (tmp_path / "root").rglob("*"))
        writes = {
            "ledger": lambda: ledger.mark_target_done("k1", "xnli", "k1__xnli__a000.parquet"),
            "fragment": lambda: store.write_rows(
                [{"model": "m", "model_params": 1, "intermediate_task": "none", "seed": 0,
                  "language": "en", "split": "test", "metric": "accuracy", "value": 1.0,
                  "n_examples": 1, "task_version": 1, "data_source": "local"}],
                trial_key="k1", target_task="xnli", attempt=0),
            "checkpoint": lambda: checkpoints.save(2, {"step": 2}),
            "checkpoint clear": checkpoints.clear,
            "phase-2 publish": lambda: publish_dir(
                str(tmp_path / "encoder"), layout.phase2("p2", "final"), fence),
            "sweep record": lambda: check_or_record(layout, load_spec("quickstart"), fence),
        }  # fmt: skip
        (tmp_path / "encoder").mkdir()
        (tmp_path / "encoder" / "config.json").write_text("{}")
        for what, write in writes.items():
            with pytest.raises(UserError, match="another run took over") as refused:
                write()
            message = str(refused.value)
            assert "\n" not in message and f"pid {os.getpid()}" in message, what
        after = sorted((p, p.stat().st_mtime_ns) for p in (tmp_path / "root").rglob("*"))
        assert after == before  # nothing written, nothing deleted
        assert first.lost is False  # its heartbeat thread is gone; the fence still held
    records = lease_files(root)
    first.release()  # a paused run that wakes up and ends: it does not touch the records
    assert lease_files(root) == records and live_holder(root, "sw") is None
