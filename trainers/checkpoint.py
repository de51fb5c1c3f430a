"""Training checkpoints: atomic, checksummed, the last two kept, explicit resume policy.

A checkpoint is one file ``ckpt-<step>.pt`` under a directory given as an absolute path
or an ``s3://`` / ``gs://`` URI: a magic line, the SHA-256 of the payload, then the payload
(`torch.save` of plain state: tensors, numbers, strings, lists, dicts; loaded with
``weights_only=True``). Locally it is written to a temporary file and renamed into place;
on object stores it is one upload through `pyarrow.fs`, which appears only when complete.
A file whose checksum does not match (corrupted, truncated) is skipped with a warning and
the previous checkpoint is used. The directory belongs to this store: nothing else writes
there.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import torch

from evaluation.errors import UserError

log = logging.getLogger("trainers")

MAGIC = b"xstilts-checkpoint-v1\n"
NAME = re.compile(r"ckpt-(\d{9})\.pt")
KEEP = 2


class Resume(StrEnum):
    IF_AVAILABLE = "if_available"  # resume from the newest valid checkpoint, else start fresh
    ALWAYS = "always"  # a valid checkpoint must exist
    NEVER = "never"  # start fresh; existing checkpoints are replaced as training goes


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for an absolute path or an object-store URI."""
    if is_remote(uri):
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, path.rstrip("/")
    path = uri.removeprefix("file://")
    if not os.path.isabs(path):
        raise UserError(f"checkpoint directory {uri!r} is neither absolute nor a URI")
    return pafs.LocalFileSystem(), path.rstrip("/")


def encode(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    return MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def decode(blob: bytes) -> dict[str, Any] | None:
    """The state in `blob`, or None when it is not a complete, intact checkpoint."""
    head = len(MAGIC) + 65
    if not blob.startswith(MAGIC) or len(blob) < head:
        return None
    digest, payload = blob[len(MAGIC) : head - 1], blob[head:]
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        return None
    state: dict[str, Any] = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    return state


class CheckpointStore:
    """Checkpoints of one training run under one directory."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.fs, self.root = filesystem(uri)

    def steps(self) -> list[int]:
        """Steps of the checkpoint files present, newest first (not yet verified)."""
        selector = pafs.FileSelector(self.root, allow_not_found=True)
        names = (info.base_name for info in self.fs.get_file_info(selector))
        return sorted((int(m.group(1)) for n in names if (m := NAME.fullmatch(n))), reverse=True)

    def _path(self, step: int) -> str:
        return f"{self.root}/ckpt-{step:09d}.pt"

    def save(self, step: int, state: dict[str, Any]) -> None:
        blob = encode(state)
        if isinstance(self.fs, pafs.LocalFileSystem):
            _write_local(self._path(step), blob)
        else:
            with self.fs.open_output_stream(self._path(step)) as out:
                out.write(blob)
        for old in self.steps()[KEEP:]:
            self.fs.delete_file(self._path(old))

    def clear(self) -> None:
        """Delete every checkpoint of this run (once its results are safely recorded)."""
        for step in self.steps():
            self.fs.delete_file(self._path(step))

    def read(self, step: int) -> dict[str, Any] | None:
        try:
            with self.fs.open_input_stream(self._path(step)) as f:
                blob = f.read()
        except (FileNotFoundError, OSError):
            return None
        return decode(blob)

    def latest(self) -> tuple[int, dict[str, Any]] | None:
        """The newest intact checkpoint; damaged ones are reported and skipped."""
        for step in self.steps():
            state = self.read(step)
            if state is not None:
                return step, state
            log.warning("checkpoint %s is damaged; using the previous one", self._path(step))
        return None

    def resume(self, policy: Resume) -> tuple[int, dict[str, Any]] | None:
        if policy is Resume.NEVER:
            return None
        found = self.latest()
        if found is None and policy is Resume.ALWAYS:
            raise UserError(f"resume 'always': no intact checkpoint under {self.uri}")
        return found


def _write_local(path: str, blob: bytes) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish_dir(local: str, uri: str) -> None:
    """Copy a finished local directory to `uri` (a path: renamed into place atomically)."""
    fs, root = filesystem(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        Path(root).parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, root)
        return
    for name in sorted(os.listdir(local)):
        with (
            open(os.path.join(local, name), "rb") as src,
            fs.open_output_stream(f"{root}/{name}") as out,
        ):
            out.write(src.read())


def fetch_dir(uri: str, local: str) -> str:
    """A local directory holding the files under `uri` (the path itself when local)."""
    fs, root = filesystem(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        return root
    os.makedirs(local, exist_ok=True)
    for info in fs.get_file_info(pafs.FileSelector(root)):
        with (
            fs.open_input_stream(info.path) as src,
            open(os.path.join(local, info.base_name), "wb") as out,
        ):
            out.write(src.read())
    return local
