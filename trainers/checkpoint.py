"""Training checkpoints: atomic, checksummed, the last two kept, explicit resume policy.

A checkpoint is one file ``ckpt-<step>.pt`` under a directory given as a path or an
``s3://`` / ``gs://`` URI: a magic line, the SHA-256 of the payload, then the payload
(`torch.save` of plain state: tensors, numbers, strings, lists, dicts; loaded with
``weights_only=True``). It is published through the one storage layer (`storage.files`):
locally a fsynced temporary renamed into place, on object stores one upload that appears
only when complete.
A file whose checksum does not match (corrupted, truncated) is skipped with a warning and
the previous checkpoint is used. The directory belongs to this store: nothing else writes
there.

The store also holds the phase's ``layout``: the resources its checkpoints were written
under (`ONE_PROCESS`, or ``ZeRO-<stage> x <workers> workers`` for a DeepSpeed run, whose
checkpoints live in its Ray Train run). The numbers do not depend on the layout, but a
checkpoint's optimizer state is only read back under the layout that wrote it:
`check_layout` refuses, in one line, to resume a half-trained phase under another.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from enum import StrEnum
from typing import Any

import torch

from storage.errors import UserError
from storage.files import Fence, is_remote, resolve_storage

log = logging.getLogger("trainers")

MAGIC = b"xstilts-checkpoint-v1\n"
NAME = re.compile(r"ckpt-(\d{9})\.pt")
KEEP = 2
LAYOUT = "layout.txt"
ONE_PROCESS = "one process"


class Resume(StrEnum):
    IF_AVAILABLE = "if_available"  # resume from the newest valid checkpoint, else start fresh
    ALWAYS = "always"  # a valid checkpoint must exist
    NEVER = "never"  # start fresh; existing checkpoints are replaced as training goes


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
    """Checkpoints of one training run under one directory (a path or a URI)."""

    def __init__(self, uri: str, fence: Fence | None = None) -> None:
        if not is_remote(uri) and not os.path.isabs(uri.removeprefix("file://")):
            raise UserError(f"checkpoint directory {uri!r} is neither absolute nor a URI")
        self.uri = uri
        self.storage = resolve_storage(uri, fence)
        self.root = self.storage.root

    def steps(self) -> list[int]:
        """Steps of the checkpoint files present, newest first (not yet verified)."""
        names = self.storage.list_files(self.root)
        return sorted((int(m.group(1)) for n in names if (m := NAME.fullmatch(n))), reverse=True)

    def _path(self, step: int) -> str:
        return self.storage.path(f"ckpt-{step:09d}.pt")

    def save(self, step: int, state: dict[str, Any]) -> None:
        self.storage.publish(self._path(step), encode(state))
        for old in self.steps()[KEEP:]:
            self.storage.delete(self._path(old))

    def clear(self) -> None:
        """Delete every checkpoint of this run (once its results are safely recorded)."""
        for step in self.steps():
            self.storage.delete(self._path(step))
        self.storage.delete(self.storage.path(LAYOUT))

    def layout(self) -> str | None:
        """The layout the phase's checkpoints were written under (None: none written)."""
        blob = self.storage.read_bytes(self.storage.path(LAYOUT))
        return None if blob is None else blob.decode().strip()

    def record_layout(self, layout: str) -> None:
        """Note `layout` (once per run, before its first checkpoint counts)."""
        self.storage.publish(self.storage.path(LAYOUT), layout.encode())

    def check_layout(self, layout: str) -> None:
        """Refuse to resume the phase under `layout` when it was checkpointed under another."""
        found = self.layout()
        if found is not None and found != layout:
            raise UserError(
                f"the phase checkpointed in {self.uri} was trained under {found} and cannot "
                f"resume under {layout} "
                f"(the optimizer state is not mapped across layouts): run it under {found} "
                f"again, or delete {self.uri} (and its Ray Train run) to train it afresh"
            )

    def read(self, step: int) -> dict[str, Any] | None:
        try:
            blob = self.storage.read_bytes(self._path(step))
        except UserError:
            return None
        return None if blob is None else decode(blob)

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
