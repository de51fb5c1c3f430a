"""What a run exposes: no secret in any file or message, no socket off loopback.

Both tests run the real `xstilts run` (its embedded Ray included). The canary test sets
cloud credentials in the environment, as a researcher with an AWS profile exported has
them, and greps every file under the sweep, the Ray temp folder, Ray's token folder and
the captured output. The loopback test runs in a network namespace of its own that has a
routable address and a default route (what a cloud VM has), pauses a trial mid-phase-3
and lists every listening socket of that namespace.
"""

from __future__ import annotations

import ipaddress
import stat
import subprocess
import time
from pathlib import Path

import pytest
import sweeps  # tests/orchestrator/sweeps.py, registered by conftest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CANARIES = {
    "AWS_ACCESS_KEY_ID": "AKIACANARY7Q4ZK2XW1N",
    "AWS_SECRET_ACCESS_KEY": "canary-secret/x8Jq2Lw9Rb3Vn7Tc5Yp1Hs6Dk0Mf4Ga",
    "AWS_SESSION_TOKEN": "canary-session-token-FQoGZXIvYXdzEJr",
}
ROUTABLE = "10.77.0.2"


def _files_holding(root: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and not path.is_socket():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            found += [f"{path}: {n[:12]!r}" for n in needles if n in data]
    return found


def test_credentials_reach_no_file_and_no_message(tmp_path: Path, fixtures: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    spec = sweeps.write_spec(
        tmp_path / "mini.yaml", str(tmp_path / "runs"), fixtures,
        intermediate_tasks=["none"], target_tasks=["xnli"],
    )  # fmt: skip
    out = sweeps.run(spec, tmp_path, HOME=str(home), **CANARIES)
    assert out.returncode == 0, out.stderr[-3000:]
    needles = [v.encode() for v in CANARIES.values()]
    assert not [n for n in needles if n in (out.stdout + out.stderr).encode()]
    ray_root = sweeps.ray_dir(tmp_path)
    assert list(ray_root.glob("ray/session_*/logs/*")), "Ray wrote no logs: nothing checked"
    for root in (tmp_path / "runs", ray_root, home):
        assert _files_holding(root, needles) == []
    # Ray's files are private: its temp root and its auth token.
    assert stat.S_IMODE(ray_root.stat().st_mode) == 0o700
    token = home / ".ray" / "auth_token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert "RAY_AUTH_MODE=disabled" not in out.stderr


def _listening(pid: int) -> list[tuple[str, int, str]]:
    """(address, port, file) of every listening TCP socket / bound UDP socket of the
    network namespace `pid` lives in."""
    out = []
    for name in ("tcp", "tcp6", "udp", "udp6"):
        lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if name.startswith("tcp") and state != "0A":  # 0A: LISTEN
                continue
            hex_addr, hex_port = local.split(":")
            raw = bytes.fromhex(hex_addr)
            # /proc prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            address = ipaddress.ip_address(raw)
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            out.append((str(address), int(hex_port, 16), name))
    return out


def test_embedded_ray_listens_on_loopback_only(tmp_path: Path, fixtures: Path) -> None:
    spec = sweeps.write_spec(
        tmp_path / "mini.yaml", str(tmp_path / "runs"), fixtures,
        intermediate_tasks=["none"], target_tasks=["xnli"],
    )  # fmt: skip
    marker = tmp_path / "paused"
    command = " ".join([*sweeps.FAULTY_RUN, str(spec), "--pause-at", "phase3_step:3",
                        "--marker", str(marker)])  # fmt: skip
    network = (
        f"ip link set lo up && ip addr add {ROUTABLE}/8 dev lo && "
        f"ip route add default dev lo src {ROUTABLE}"
    )
    proc = subprocess.Popen(
        ["unshare", "--net", "sh", "-c", f"{network} && exec {command}"],
        env=sweeps.env_for(tmp_path), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 400
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read()[-3000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "the trial never reached phase 3"
            time.sleep(0.2)
        sockets = _listening(proc.pid)
    finally:
        sweeps.kill_all(proc.pid, tmp_path)
        proc.wait(timeout=60)
    assert len(sockets) >= 4, sockets  # GCS, raylet, workers, agents: something was seen
    exposed = [s for s in sockets if not ipaddress.ip_address(s[0]).is_loopback]
    assert exposed == [], f"listening off loopback: {exposed}"
