"""What a cell reads: examples per task and part (capped), in the selected languages, from
each task's data source; the phase-1 tokenizer corpus; derived seeds; and the provenance
its result rows record. Plain values in, no orchestrator types."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation.data.examples import Entity
from evaluation.data.loaders import entity_pool, interleave, load_examples, task_labels
from evaluation.data.mirror import SOURCES, SourceKind, provenance
from evaluation.data.mlm_corpus import MlmCorpus, draw
from evaluation.tasks import Format, TaskSpec, get_task
from storage.errors import UserError
from trainers.tokenizer import corpus_from_dir, dir_digest


def derive_seed(seed: int, *names: str) -> int:
    """A seed for one purpose of a cell: a pure function of the job seed and names."""
    text = "/".join((str(seed), *names))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


def subset(examples: Sequence[Any], n: int, task: str) -> list[Any]:
    """`n` of `examples`, in their order: a fixed subset per (task, n), the same for every
    model and seed, so that sizes compare on the same data."""
    chosen = random.Random(derive_seed(0, "subset", task, str(n))).sample(range(len(examples)), n)
    return [examples[i] for i in sorted(chosen)]


@dataclass(frozen=True)
class DataAccess:
    """Where a cell's data comes from: a default source, per-task sources that replace it,
    the languages each target task is evaluated in (default: all of the task's), the
    languages of each task's training data (`train_languages`: an arm's `translate-train` or
    `langs[...]`, pooled and interleaved in the order given, `max_train` capping the pool;
    default English), and training examples per task: at most `train_caps[t]`, exactly
    `train_sizes[t]` (an arm's `n=N`: fewer is an error), a fixed subset of what the other
    settings load."""

    source: SourceKind
    local_dir: str | None
    native_dir: str | None
    max_train: int | None
    max_dev: int | None
    max_eval: int | None
    per_task: Mapping[str, tuple[SourceKind, str | None]] = field(default_factory=dict)
    languages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    train_caps: Mapping[str, int] = field(default_factory=dict)
    train_sizes: Mapping[str, int] = field(default_factory=dict)
    # The text of the `mlm` task (`Format.MASKED_LM`): its drawn lines are its training
    # examples, its held-out lines its dev examples (`evaluation.data.mlm_corpus`).
    mlm_corpus: MlmCorpus | None = None
    train_languages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for source in (self.source, *(s for s, _ in self.per_task.values())):
            if source not in SOURCES:
                raise UserError(f"data source {source!r} is not one of {', '.join(SOURCES)}")

    def location(self, name: str) -> tuple[SourceKind, str | None]:
        """(source, local directory) task `name` reads."""
        return self.per_task.get(name, (self.source, self.local_dir))

    def eval_languages(self, spec: TaskSpec) -> tuple[str, ...]:
        return self.languages.get(spec.name) or spec.languages

    def _load(self, spec: TaskSpec, part: str, language: str, limit: int | None) -> list:
        if spec.format is Format.MASKED_LM:  # the whole corpus, every language: see `draw`
            return list(draw(self.corpus_of(spec))[0 if part == "train" else 1][:limit])
        source, local_dir = self.location(spec.name)
        return load_examples(
            spec,
            part,
            language,
            source=source,
            local_dir=Path(local_dir) if local_dir else None,
            native_dir=Path(self.native_dir) if self.native_dir else None,
            limit=limit,
        )

    def train(self, spec: TaskSpec) -> list:
        languages = self.train_languages.get(spec.name, ("en",))
        pools = [self._load(spec, "train", lang, self.max_train) for lang in languages]
        examples = interleave(pools)[: self.max_train]
        size = self.train_sizes.get(spec.name)
        if size is not None and len(examples) < size:
            raise UserError(
                f"{spec.name}: {len(examples)} training examples, fewer than the n={size} "
                "the intermediate task's arm asks for"
            )
        n = size if size is not None else self.train_caps.get(spec.name)
        return examples if n is None or len(examples) <= n else subset(examples, n, spec.name)

    def dev(self, spec: TaskSpec) -> list:
        masked_lm = spec.format is Format.MASKED_LM
        return self._load(spec, "dev", "en", self.max_dev) if spec.dev or masked_lm else []

    def corpus_of(self, spec: TaskSpec) -> MlmCorpus:
        if self.mlm_corpus is None:
            raise UserError(f"{spec.name}: set data.mlm_corpus (a text corpus) to train it")
        return self.mlm_corpus

    def eval(self, spec: TaskSpec) -> dict[str, Sequence[Any]]:
        return {
            lang: self._load(spec, "eval", lang, self.max_eval)
            for lang in self.eval_languages(spec)
        }

    def labels(self, spec: TaskSpec) -> tuple[str, ...]:
        source, local_dir = self.location(spec.name)
        local = Path(local_dir) if local_dir else None
        native = Path(self.native_dir) if self.native_dir else None
        return task_labels(spec, source=source, local_dir=local, native_dir=native)

    def entities(self, spec: TaskSpec) -> tuple[Entity, ...]:
        """The candidate entity pool of an entity-linking task (Mewsli-X)."""
        _, local_dir = self.location(spec.name)
        local = Path(local_dir) if local_dir else None
        native = Path(self.native_dir) if self.native_dir else None
        return entity_pool(spec, local_dir=local, native_dir=native)

    def corpus_root(self) -> str:
        root = self.native_dir if self.source == "hub" else self.local_dir
        if not root or not Path(root).is_dir():
            raise UserError("local models train their tokenizer on local data: set data.local_dir")
        return root

    def corpus_key(self) -> str:
        return dir_digest(self.corpus_root())

    def corpus(self) -> list[str]:
        return corpus_from_dir(self.corpus_root())

    def provenance(self, tasks: Iterable[str], corpus: bool = False) -> str:
        """Where the data behind a result comes from: the sources of `tasks` (the target
        task and the phase-2 tasks) and, with `corpus`, of the tokenizer's training text;
        `fixtures`, `local` or `hub`, several joined by `+` (`fixtures+local`)."""
        found = {kind for name in tasks for kind in self._task_provenance(name)}
        if corpus:
            root = self.native_dir if self.source == "hub" else self.local_dir
            found.add(provenance("local" if self.source == "hub" else self.source, root))
        return "+".join(sorted(found))

    def _task_provenance(self, name: str) -> set[str]:
        spec = get_task(name)
        if spec.format is Format.MASKED_LM:
            corpus = self.corpus_of(spec)
            if corpus.local_dir is None:
                return {"hub"}
            return {provenance("local", Path(corpus.local_dir).parent)}  # in a fixture tree?
        source, local_dir = self.location(name)
        kinds = set()
        for src in (*spec.train, *spec.dev, *spec.eval.values()):
            if src.native is None:
                kinds.add(provenance(source, local_dir))
            elif not src.optional:
                kinds.add(provenance("local", self.native_dir or local_dir))
        return kinds
