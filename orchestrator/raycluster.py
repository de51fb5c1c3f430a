"""Connecting to Ray and reading what the cluster can run.

`RAY_ADDRESS` set: join that cluster. Otherwise start an embedded local Ray bound to the
loopback interface of a private namespace or whatever this host offers (see README),
with logical CPUs declared so that a Tune trial and its Train workers can coexist.
"""

from __future__ import annotations

import os
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


def connect(temp_dir: str | None = None, env_vars: dict[str, str] | None = None) -> bool:
    """Initialise Ray; return True when we started an embedded instance."""
    import ray

    if ray.is_initialized():
        return False
    runtime_env: dict[str, Any] = {"env_vars": env_vars or {}}
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        return False
    cpus = max(4, os.cpu_count() or 1)
    kwargs: dict[str, Any] = {"_temp_dir": temp_dir} if temp_dir else {}
    ray.init(
        address="local",
        num_cpus=cpus,
        include_dashboard=False,
        runtime_env=runtime_env,
        log_to_driver=False,
        **kwargs,
    )
    return True


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
