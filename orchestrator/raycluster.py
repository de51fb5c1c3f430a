"""Connecting to Ray and reading what the cluster can run.

`RAY_ADDRESS` set: join that cluster. Otherwise start an embedded local Ray that listens
on 127.0.0.1 only, with token auth and private files (`connect`), and logical CPUs
declared so that a Tune trial and its Train workers can coexist.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any

from storage.errors import UserError


@dataclass(frozen=True)
class ClusterShape:
    nodes: int
    cpus: float
    gpus: float
    per_node_gpus: tuple[float, ...]
    custom: dict[str, float]
    hosts: frozenset[str] = frozenset()  # node IP addresses


# Cloud credentials Ray Tune would otherwise copy from the driver's environment into
# every trial's runtime env, where Ray's runtime-env agent logs them in plain text.
CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECURITY_TOKEN",
    "AWS_SESSION_TOKEN",
)
LOOPBACK = "127.0.0.1"


def connect(temp_dir: str | None = None, env_vars: dict[str, str] | None = None) -> bool:
    """Initialise Ray; return True when we started an embedded instance.

    Secrets never go into a runtime env: storage credentials reach trials through the
    provider's own chain on each node (the environment the embedded Ray inherits; an
    instance role or workload identity on a cluster), not through Tune's propagation.
    The embedded Ray binds loopback only, requires its auth token and keeps its files
    private (0700 temp folder, 0600 token).
    """
    import ray

    keep_credentials_out_of_runtime_envs()
    if ray.is_initialized():
        return False
    runtime_env: dict[str, Any] = {"env_vars": env_vars or {}}
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        return False
    cpus = max(4, os.cpu_count() or 1)
    loopback_only()
    require_auth_token()
    ray.init(
        address="local",
        num_cpus=cpus,
        include_dashboard=False,
        dashboard_host=LOOPBACK,
        runtime_env=runtime_env,
        log_to_driver=False,
        _temp_dir=private_temp_dir(temp_dir),
    )
    return True


def dashboard_url() -> str | None:
    """The address of the connected cluster's dashboard (None without one)."""
    from ray._private.worker import get_dashboard_url

    url = get_dashboard_url()
    return f"http://{url}" if url and "://" not in url else (url or None)


def loopback_only() -> None:
    """Every component of the embedded Ray on 127.0.0.1: GCS, raylet, object manager,
    workers, agents, metrics. Ray on Linux otherwise picks the machine's routable address
    and its gRPC servers then listen on every interface; with clustering off (Ray's own
    switch, its default on macOS and Windows) the node address is loopback and every
    server binds it. Set in the environment for the processes Ray starts, and in this
    process, where Ray may already have read it."""
    from ray._private import ray_constants

    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def keep_credentials_out_of_runtime_envs() -> None:
    """Turn off Ray Tune's copying of cloud credentials into trial runtime envs."""
    from ray.tune.execution import class_cache

    class_cache.ENV_VARS_TO_PROPAGATE.difference_update(CREDENTIAL_ENV)


def require_auth_token() -> None:
    """Token auth set explicitly (so Ray neither warns nor advertises turning it off), with
    a private token file."""
    from ray._private.authentication.authentication_token_setup import _enable_token_auth

    _enable_token_auth()  # RAY_AUTH_MODE=token, for this process and the Ray it starts
    private_auth_token()


def private_auth_token() -> None:
    """Ray's auth token (``~/.ray/auth_token``) readable by its owner only: created here
    (0600, in a 0700 folder) if missing, its mode tightened if it exists."""
    from ray._private.authentication.authentication_token_generator import (
        generate_new_authentication_token,
    )
    from ray._private.authentication.authentication_token_setup import (
        _get_default_token_path,
    )

    path = _get_default_token_path()
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return  # the user's own token source
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _tighten(str(path), 0o600)
        return
    with os.fdopen(fd, "w") as out:
        out.write(generate_new_authentication_token())


def private_temp_dir(temp_dir: str | None) -> str:
    """Where the embedded Ray keeps its sessions: ``ray/`` inside a 0700 folder of ours
    (`temp_dir`, else ``/tmp/xstilts-<uid>``). Ray makes its own folders world-writable;
    the private parent keeps other users away from a session's logs, sockets and files."""
    root = temp_dir or os.path.join(tempfile.gettempdir(), f"xstilts-{os.getuid()}")
    os.makedirs(root, mode=0o700, exist_ok=True)
    if os.stat(root).st_uid != os.getuid():
        raise UserError(f"Ray temp folder {root} belongs to another user; choose another")
    os.chmod(root, 0o700)
    return os.path.join(root, "ray")


def _tighten(path: str, mode: int) -> None:
    try:
        if os.stat(path).st_uid == os.getuid():
            os.chmod(path, mode)
    except OSError:
        pass


def shape() -> ClusterShape:
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    custom = {
        k: v
        for k, v in total.items()
        if k not in ("CPU", "GPU", "memory", "object_store_memory")
        and not k.startswith("node:")
        and not k.startswith("accelerator_type")
    }
    return ClusterShape(
        nodes=len(nodes),
        cpus=float(total.get("CPU", 0)),
        gpus=float(total.get("GPU", 0)),
        per_node_gpus=tuple(float(n["Resources"].get("GPU", 0)) for n in nodes),
        custom=custom,
        hosts=frozenset(str(n.get("NodeManagerAddress", "")) for n in nodes),
    )


NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "beegfs", "glusterfs", "fuse")


def mount_type(path: str, mounts: str = "/proc/mounts") -> str:
    """The filesystem type of the mount holding `path` (longest matching mount point)."""
    best, kind = "", ""
    try:
        with open(mounts, encoding="utf-8") as src:
            lines = src.read().splitlines()
    except OSError:
        return ""
    for line in lines:
        parts = line.split()
        if len(parts) < 3 or len(parts[1]) <= len(best):
            continue
        if path == parts[1] or path.startswith(parts[1].rstrip("/") + "/"):
            best, kind = parts[1], parts[2]
    return kind


def require_shared_storage(local_root: str | None, cluster: ClusterShape, uri: str) -> None:
    """Refuse a node-local path on a cluster spanning hosts (an NFS-like mount is fine).

    Nodes on one host (a simulated cluster, or several raylets on one machine) share its
    filesystem, so a local path is shared among them.
    """
    if local_root is None or len(cluster.hosts) <= 1:
        return
    if not mount_type(local_root).startswith(NETWORK_FS):
        raise UserError(
            f"storage {uri!r} is a node-local path but the cluster spans {len(cluster.hosts)} "
            "hosts; "
            "use shared storage (s3://, gs:// or an NFS mount present on every node)"
        )
