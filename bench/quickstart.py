"""The quickstart sweep end to end: wall time and peak memory of all its processes.

Runs `xstilts run quickstart` (set-up excluded: run `make setup` first) on a fresh
storage folder, samples the summed RSS of the driver and every process of the Ray it
started once a second, and prints both against the targets (10 minutes, 8 GiB).

    unshare --net sh -c 'ip link set lo up && .venv/bin/python bench/quickstart.py'
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

XSTILTS = str(Path(sys.executable).with_name("xstilts"))


def tree_rss(root: psutil.Process, marker: str) -> int:
    """RSS of `root`, its descendants and any process whose command line names `marker`."""
    procs = {root.pid: root}
    try:
        procs.update({p.pid: p for p in root.children(recursive=True)})
    except psutil.NoSuchProcess:
        return 0
    for p in psutil.process_iter(["cmdline"]):
        if marker in " ".join(p.info["cmdline"] or []):
            procs[p.pid] = p
    total = 0
    for p in procs.values():
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="quickstart")
    parser.add_argument("--keep", type=Path, help="storage folder to use and keep")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="xstilts-bench-"))
    ray_tmp = work / "ray"
    env = {"XSTILTS_RAY_TEMP_DIR": str(ray_tmp)}
    cmd = [XSTILTS, "run", args.spec, "--storage", str(work / "runs")]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env={**__import__("os").environ, **env})
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(root, str(ray_tmp)))
        time.sleep(1)
    wall = time.monotonic() - start
    print(f"quickstart: exit {proc.returncode}, wall {wall:,.0f} s (target < 600 s), "
          f"peak RSS of all processes {peak / 2**30:.2f} GiB (target < 8 GiB)")  # fmt: skip
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
