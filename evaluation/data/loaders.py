"""Load a task's examples for one part (train, dev, eval) and language (training data:
English, or a machine translation of it where the task has one).

Several sources in one part are pooled (ANLI+: ANLI r1-r3 + MNLI + SNLI, SNLI's
unlabeled rows dropped, + FEVER-NLI when a directory holds it).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, zip_longest
from pathlib import Path
from typing import Literal

from evaluation.data.convert import to_examples
from evaluation.data.examples import Entity, Example
from evaluation.data.native import read_entities
from evaluation.data.sources import SourceKind, read_source
from evaluation.tasks.spec import Source, TaskSpec
from storage.errors import UserError

Part = Literal["train", "dev", "eval"]


def sources_of(task: TaskSpec, part: str, language: str = "en") -> tuple[Source, ...]:
    """The sources of `part` in `language`: training data is English (`train`) or one of
    its machine translations (`translated`); dev data is English."""
    if part == "train":
        if language == "en":
            return task.train
        if language not in task.translated:
            have = ", ".join(task.translated) or "none"
            raise UserError(
                f"task {task.name!r} has no training data in {language!r} (translations: {have})"
            )
        return (task.translated[language],)
    if part == "dev":
        return task.dev
    if part == "eval":
        if language not in task.eval:
            raise UserError(f"task {task.name!r} has no language {language!r}")
        return (task.eval[language],)
    raise UserError(f"task {task.name!r}: unknown part {part!r} (train, dev or eval)")


def load_examples(
    task: TaskSpec,
    part: str,
    language: str = "en",
    *,
    source: SourceKind = "hub",
    local_dir: Path | None = None,
    native_dir: Path | None = None,
    limit: int | None = None,
) -> list[Example]:
    """Examples of `task`'s `part` in `language`, from the Hub or a local Hub mirror.

    With `limit`, each pooled source contributes at most `limit` rows and the pool is
    interleaved before it is cut to `limit`, so every source is represented.
    """
    srcs = sources_of(task, part, language)
    if not srcs:
        raise UserError(f"task {task.name!r} has no {part} data")
    pools = []
    for src in srcs:
        ds = read_source(src, source=source, local_dir=local_dir, native_dir=native_dir)
        if ds is None:
            continue
        if limit is not None:
            ds = ds.select(range(min(len(ds), limit)))
        pools.append(to_examples(task, ds, src, language))
    if len(pools) == 1:
        return pools[0][:limit] if limit is not None else pools[0]
    return interleave(pools)[:limit] if limit is not None else [ex for p in pools for ex in p]


def interleave(pools: Sequence[Sequence[Example]]) -> list[Example]:
    """One example of each pool in turn until all are used: a pure function of the pools."""
    return [ex for ex in chain.from_iterable(zip_longest(*pools)) if ex is not None]


def task_labels(
    task: TaskSpec,
    *,
    source: SourceKind = "hub",
    local_dir: Path | None = None,
    native_dir: Path | None = None,
) -> tuple[str, ...]:
    """The task's label names: the spec's, or the corpus' own tag map (CCG)."""
    if task.labels:
        return task.labels
    src = (task.train or task.dev)[0]
    ds = read_source(src, source=source, local_dir=local_dir, native_dir=native_dir)
    if ds is None:
        raise UserError(f"task {task.name!r}: no data to read labels from")
    col = (src.columns or task.columns)["tags"]
    feature = ds.features[str(col)]
    return tuple(getattr(feature, "feature", feature).names)


def entity_pool(
    task: TaskSpec, *, local_dir: Path | None = None, native_dir: Path | None = None
) -> tuple[Entity, ...]:
    """The candidate entities of an entity-linking task (Mewsli-X)."""
    src = next(iter(task.eval.values()))
    where = native_dir or local_dir
    if src.native is None or where is None:
        raise UserError(f"task {task.name!r}: entity pool needs a native data directory")
    return read_entities(Path(where) / src.dataset)
