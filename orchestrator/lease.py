"""The sweep lease: one live `xstilts run` per sweep; a dead holder's lease is taken over.

The lease lives in ``<storage>/<sweep>/lease/`` as numbered records
``gen-<000000001>.json``; the highest generation is the lease. Acquiring writes the next
generation create-only (``os.link`` locally, ``If-None-Match: *`` on S3), so of two racing
runs exactly one gets it; the winner then checks that its generation is still the highest
and its own. A holder rewrites its record every `heartbeat_s` seconds from a daemon thread.
A record is stale when it was released, when its last heartbeat is older than `ttl_s`, or
when its holder ran on this host and that process is gone (so a rerun after ``kill -9``
starts at once). Generations only grow, and only ones below the holder's are deleted.
Where create-only writes are not atomic (S3 without credentials in the environment, GCS)
the winner is decided by reading back after `settle_s`.

API:
    ``with Lease(storage_uri, sweep):`` ... — raises `UserError` naming the live holder.
    ``Lease.lost`` is True once another run took the lease over (this run stalled past
    `ttl_s`); ``Lease.check()`` raises `UserError` then. ``Lease.fence() -> LeaseFence``:
    a picklable `storage.files.Fence` that every writer of the run (ledger, results store,
    checkpoints, phase-2 publish, in the driver and in every Ray worker) calls before each
    write; it reads the lease records and raises `UserError`, naming the run that holds the
    sweep now, once a later generation exists. ``live_holder(storage_uri, sweep)`` returns
    the live `Holder` or None, for ``xstilts status``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from types import TracebackType

from storage.errors import UserError
from storage.files import Storage, check_name, resolve_storage
from storage.layout import SweepLayout

log = logging.getLogger(__name__)
_RECORD_RE = re.compile(r"gen-(\d{9})\.json")


@dataclass(frozen=True)
class Holder:
    """One lease record: who holds (or held) the sweep, and their last heartbeat."""

    generation: int
    host: str
    pid: int
    token: str
    heartbeat_at: float
    ttl_s: float
    released: bool = False

    def is_stale(self, now: float) -> bool:
        if self.released or now - self.heartbeat_at > self.ttl_s:
            return True
        return self.host == socket.gethostname() and not _process_alive(self.pid)

    def describe(self, now: float) -> str:
        age = max(0.0, now - self.heartbeat_at)
        return f"pid {self.pid} on {self.host}, last heartbeat {age:.0f} s ago"


class Lease:
    """Context manager holding the sweep lease while a run is live."""

    def __init__(
        self,
        storage_uri: str,
        sweep: str,
        *,
        ttl_s: float = 60.0,
        heartbeat_s: float | None = None,
        settle_s: float = 1.0,
    ) -> None:
        self.sweep = check_name("sweep name", sweep)
        self.storage: Storage = resolve_storage(SweepLayout.of(storage_uri, sweep).lease)
        self.directory = self.storage.root
        self.ttl_s = ttl_s
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else ttl_s / 6
        self.settle_s = settle_s
        self.token = uuid.uuid4().hex
        self.lost = False
        self._record: Holder | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lease or raise `UserError` naming the live holder."""
        for _ in range(5):
            current = _latest(self.storage, self.directory)
            now = time.time()
            if current is not None and not current.is_stale(now):
                left = max(0.0, current.heartbeat_at + current.ttl_s - now)
                raise UserError(
                    f"sweep {self.sweep!r} is already running ({current.describe(now)}); "
                    f"wait for it to finish, or if it died, run again in {left:.0f} s "
                    "when its lease expires"
                )
            generation = current.generation + 1 if current is not None else 1
            if self._try_create(generation):
                self._start_heartbeat()
                self._drop_older(generation)
                return
        raise UserError(f"sweep {self.sweep!r}: another run keeps taking the lease; try again")

    def release(self) -> None:
        """Stop heartbeating and mark the record released (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        record = self._record
        if record is None:
            return
        fence, self._record = self.fence(), None
        if self.lost:
            return
        try:
            fence()  # a run that was taken over leaves the new holder's records alone
            self._write(replace(record, released=True, heartbeat_at=time.time()))
        except (UserError, OSError) as exc:  # the lease then expires after ttl_s
            log.warning("sweep %s: could not release the lease: %s", self.sweep, exc)

    def check(self) -> None:
        """Raise `UserError` if another run has taken this lease over."""
        if self._record is not None:
            self.fence()()  # reads the records: a run paused past its ttl may not know yet
        if self.lost:
            raise UserError(f"sweep {self.sweep!r}: another run took over this run's lease")

    def fence(self) -> LeaseFence:
        """The check every write of this run makes first (see `LeaseFence`)."""
        if self._record is None:
            raise RuntimeError("the lease is not held")
        return LeaseFence(self.storage.uri_of(self.directory), self.sweep, self._record.generation)

    def _try_create(self, generation: int) -> bool:
        record = Holder(
            generation, socket.gethostname(), os.getpid(), self.token, time.time(), self.ttl_s
        )
        if not self.storage.publish(self._path(generation), _encode(record), create_only=True):
            return False
        if not self.storage.create_is_atomic:
            time.sleep(self.settle_s)
        latest = _latest(self.storage, self.directory)
        if latest is None or latest.token != self.token:
            if latest is None or latest.generation > generation:
                self.storage.delete(self._path(generation))
            return False
        self._record = record
        return True

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat_until_stopped, daemon=True)
        self._thread.start()

    def _beat_until_stopped(self) -> None:
        last_ok = time.time()
        while not self._stop.wait(self.heartbeat_s):
            try:
                self._beat()
                last_ok = time.time()
            except (UserError, OSError) as exc:
                log.warning("lease heartbeat failed: %s", exc)
                if time.time() - last_ok > self.ttl_s:
                    self.lost = True
            if self.lost:
                log.error("sweep %s: this run lost its lease to another run", self.sweep)
                return

    def _beat(self) -> None:
        record = self._record
        latest = _latest(self.storage, self.directory)
        if record is None or (latest is not None and latest.generation > record.generation):
            self.lost = True
            return
        self._record = replace(record, heartbeat_at=time.time())
        self._write(self._record)

    def _write(self, record: Holder) -> None:
        self.storage.publish(self._path(record.generation), _encode(record))

    def _drop_older(self, generation: int) -> None:
        for number in _generations(self.storage, self.directory):
            if number < generation:
                self.storage.delete(self._path(number))

    def _path(self, generation: int) -> str:
        return self.storage.path(f"gen-{generation:09d}.json")


@dataclass(frozen=True)
class LeaseFence:
    """Raises `UserError` once a run other than generation `generation` holds the sweep.

    One listing and one read of the lease records per call: writes are per phase, target
    task and checkpoint, not per step. A run paused past the lease's time-to-live (a
    stopped VM, a partitioned head) finds on waking that a later generation exists, and
    stops before its next write instead of writing over the run that took over.
    """

    lease_dir: str  # URI or path of ``<sweep>/lease``
    sweep: str
    generation: int

    def __call__(self) -> None:
        storage = resolve_storage(self.lease_dir)
        latest = _latest(storage, storage.root)
        if latest is None or latest.generation <= self.generation:
            return
        raise UserError(
            f"sweep {self.sweep!r}: another run took over this run's lease "
            f"({latest.describe(time.time())}); this run stops before writing"
        )


def live_holder(storage_uri: str, sweep: str) -> Holder | None:
    """The run holding the sweep's lease now, or None when no live run holds it."""
    storage = resolve_storage(SweepLayout.of(storage_uri, sweep).lease)
    current = _latest(storage, storage.root)
    if current is None or current.is_stale(time.time()):
        return None
    return current


def _generations(storage: Storage, directory: str) -> list[int]:
    names = storage.list_files(directory)
    return sorted(int(m.group(1)) for n in names if (m := _RECORD_RE.fullmatch(n)))


def _latest(storage: Storage, directory: str) -> Holder | None:
    for _ in range(3):
        numbers = _generations(storage, directory)
        if not numbers:
            return None
        path = f"{directory}/gen-{numbers[-1]:09d}.json"
        data = storage.read_bytes(path)
        if data is not None:
            return _decode(numbers[-1], data, storage.display(path))
    raise UserError(f"lease records in {storage.display(directory)} keep changing; try again")


def _decode(generation: int, data: bytes, where: str) -> Holder:
    try:
        raw = json.loads(data)
        return Holder(**{name: raw[name] for name in _HOLDER_FIELDS})
    except (ValueError, TypeError, KeyError):
        log.warning("unreadable lease record %s: treating it as stale", where)
        return Holder(generation, "", 0, "", 0.0, 0.0, released=True)


def _encode(record: Holder) -> bytes:
    raw = asdict(record)
    raw["heartbeat_iso"] = datetime.fromtimestamp(record.heartbeat_at, UTC).isoformat()
    return json.dumps(raw, sort_keys=True).encode()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


_HOLDER_FIELDS = tuple(f.name for f in fields(Holder))
