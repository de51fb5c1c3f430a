"""A real S3-compatible server for tests: SeaweedFS ``weed mini`` on 127.0.0.1.

Import it from any test package (``from s3server import s3_server``; the conftest of
`tests/orchestrator` puts this folder on ``sys.path``). The server binds only 127.0.0.1,
but tests that start it must still run inside a private network namespace:
``unshare --net sh -c 'ip link set lo up && .venv/bin/pytest -m integration ...'``.

`s3_server` is a session fixture: one server in its own temporary folder, on free ports,
with the test credentials exported as ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
for the whole session (pyarrow and xstilts read them from the environment), stopped by
its PID at teardown. ``server.uri(prefix)`` gives an ``s3://`` storage URI in its bucket;
give every test its own prefix.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import pytest

ACCESS_KEY = "xstilts-test-access"
SECRET_KEY = "xstilts-test-secret-key"
BUCKET = "xstilts-test"
_GRPC_OFFSET = 10_000  # weed serves gRPC on each HTTP port + 10000
_SERVICES = ("s3", "master", "volume", "filer", "admin")


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    pid: int
    bucket: str = BUCKET

    def uri(self, prefix: str) -> str:
        """A storage URI under `prefix` in the test bucket."""
        return f"s3://{self.bucket}/{prefix}?endpoint_override={self.endpoint}&scheme=http"

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(
            endpoint_override=self.endpoint,
            scheme="http",
            region="us-east-1",
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            allow_bucket_creation=True,
            connect_timeout=1,
        )


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port() -> int:
    """A port P such that P..P+4 and their gRPC twins (+10000) are all free."""
    for _ in range(200):
        base = random.randrange(20_000, 50_000)
        ports = [base + i for i in range(len(_SERVICES))]
        if all(_bindable(p) and _bindable(p + _GRPC_OFFSET) for p in ports):
            return base
    raise RuntimeError("no free ports for SeaweedFS on 127.0.0.1")


def _weed_command(directory: Path, base: int) -> list[str]:
    weed = str(Path(sys.executable).with_name("weed"))
    ports = [f"-{name}.port={base + i}" for i, name in enumerate(_SERVICES)]
    return [
        weed,
        "mini",
        f"-dir={directory}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *ports,
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-admin.ui=false",
        "-webdav=false",
    ]


@contextmanager
def running_s3_server(directory: Path, timeout_s: float = 60.0) -> Iterator[S3Server]:
    """Start ``weed mini`` in `directory`, wait until its bucket exists, stop it after."""
    directory.mkdir(parents=True, exist_ok=True)
    base = free_base_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    with open(directory / "weed.log", "wb") as log:
        process = subprocess.Popen(
            _weed_command(directory / "data", base),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = S3Server(f"127.0.0.1:{base}", process.pid)
    try:
        _wait_for_bucket(server, process, directory / "weed.log", timeout_s)
        yield server
    finally:
        _stop(process)


def _wait_for_bucket(
    server: S3Server, process: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> None:
    fs, deadline = server.filesystem(), time.monotonic() + timeout_s
    while True:
        try:
            fs.create_dir(server.bucket)
            return
        except OSError as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"SeaweedFS did not start ({exc}); log tail:\n{tail}") from exc
            time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS for the session, with the test credentials in the environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        patch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        patch.delenv("AWS_SESSION_TOKEN", raising=False)
        with running_s3_server(tmp_path_factory.mktemp("seaweedfs")) as server:
            yield server
