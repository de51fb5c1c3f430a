"""What a cell reads: examples per task and part (capped), the phase-1 tokenizer corpus,
and derived seeds. Plain values in, no orchestrator types."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evaluation.data.loaders import load_examples, task_labels
from evaluation.tasks import TaskSpec
from storage.errors import UserError
from trainers.tokenizer import corpus_from_dir, dir_digest


def derive_seed(seed: int, *names: str) -> int:
    """A seed for one purpose of a cell: a pure function of the job seed and names."""
    text = "/".join((str(seed), *names))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class DataAccess:
    source: Literal["hub", "local"]
    local_dir: str | None
    native_dir: str | None
    max_train: int | None
    max_dev: int | None
    max_eval: int | None

    def __post_init__(self) -> None:
        if self.source not in ("hub", "local"):
            raise UserError(f"data source {self.source!r} is not 'hub' or 'local'")

    def _load(self, spec: TaskSpec, part: str, language: str, limit: int | None) -> list:
        return load_examples(
            spec,
            part,
            language,
            source=self.source,
            local_dir=Path(self.local_dir) if self.local_dir else None,
            native_dir=Path(self.native_dir) if self.native_dir else None,
            limit=limit,
        )

    def train(self, spec: TaskSpec) -> list:
        return self._load(spec, "train", "en", self.max_train)

    def dev(self, spec: TaskSpec) -> list:
        return self._load(spec, "dev", "en", self.max_dev) if spec.dev else []

    def eval(self, spec: TaskSpec) -> dict[str, Sequence[Any]]:
        return {lang: self._load(spec, "eval", lang, self.max_eval) for lang in spec.languages}

    def labels(self, spec: TaskSpec) -> tuple[str, ...]:
        local = Path(self.local_dir) if self.local_dir else None
        native = Path(self.native_dir) if self.native_dir else None
        return task_labels(spec, source=self.source, local_dir=local, native_dir=native)

    def corpus_root(self) -> str:
        root = self.native_dir if self.source == "hub" else self.local_dir
        if not root or not Path(root).is_dir():
            raise UserError("local models train their tokenizer on local data: set data.local_dir")
        return root

    def corpus_key(self) -> str:
        return dir_digest(self.corpus_root())

    def corpus(self) -> list[str]:
        return corpus_from_dir(self.corpus_root())
