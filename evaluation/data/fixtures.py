"""Schema-exact local fixtures for every task: a miniature, learnable XTREME-R.

`write_fixtures(root)` writes every split of every dataset config the task registry
reads, as `<root>/<dataset id>/<config>/<split>.parquet` through `datasets` with the
declared `Features` (so ClassLabels survive), plus the native files of Mewsli-X, CCG and
FEVER-NLI, plus `metadata.json` with each language's transform strength. Content comes
from a synthetic English-like grammar and per-language transforms
(`evaluation.data.synth`); everything is a pure function of the seed.

A task's translated training sets (`TaskSpec.translated`: MNLI's are XNLI's `train`
splits) are translated copies of its English training set: the same abstract items, in
the same order, with the same labels, rendered in the target language, and as many as
the English set has, so that row i of `facebook/xnli/de/train` is row i of MNLI's in German.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
from datasets.utils import logging as hf_logging

from evaluation.data.mirror import METADATA, config_dir, fixture_version, is_fixture_tree
from evaluation.data.schemas import HubSchema, schema_for
from evaluation.data.synth import corpus, natives
from evaluation.data.synth.hubrows import RowContext, to_hub
from evaluation.data.synth.kinds import draw, kind_of, row_maker
from evaluation.data.synth.languages import language
from evaluation.tasks import all_tasks
from evaluation.tasks.spec import Source, TaskSpec
from storage.errors import UserError

# 2: MNLI's translations (facebook/xnli/<lang>/train, for the translated arms) and the MLM
# corpus (mlm_corpus/<lang>.txt). A tree of another version is written again on use.
FIXTURE_VERSION = 2


@dataclass(frozen=True)
class Use:
    """One task reading one dataset config in one language."""

    task: TaskSpec
    source: Source
    language: str


def dataset_uses(tasks: Iterable[TaskSpec]) -> dict[tuple[str, str | None], list[Use]]:
    """Every Hub dataset config the tasks read, with who reads it and in which language."""
    uses: dict[tuple[str, str | None], list[Use]] = defaultdict(list)
    for task in tasks:
        parts = [("en", s) for s in (*task.train, *task.dev)]
        parts += [(lang, s) for lang, s in (*task.eval.items(), *task.translated.items())]
        for lang, src in parts:
            if src.native is None:
                uses[(src.dataset, src.config)].append(Use(task, src, lang))
    return dict(uses)


def build_datasets(
    seed: int = 0,
    n_per_split: int = 200,
    tasks: Iterable[TaskSpec] | None = None,
    n_train: int | None = None,
) -> Iterator[tuple[str, str | None, str, datasets.Dataset]]:
    """(dataset, config, split, in-memory Dataset) for every Hub split the tasks read.

    Splits some task trains on get `n_train` rows (default n_per_split).
    """
    chosen = list(tasks or all_tasks())
    trained = {
        (s.dataset, s.config, s.split) for t in chosen for s in (*t.train, *t.translated.values())
    }
    cache: dict[tuple[str, str, float, int], list[Any]] = {}
    for (name, config), uses in sorted(dataset_uses(chosen).items(), key=_key):
        schema = schema_for(name, config)
        for split in schema.splits_of(config):
            n = n_train if n_train and (name, config, split) in trained else n_per_split
            yield name, config, split, _split(schema, split, uses, seed, n, cache)


def _key(item: tuple[tuple[str, str | None], list[Use]]) -> tuple[str, str]:
    return item[0][0], item[0][1] or ""


def _split(
    schema: HubSchema,
    split: str,
    uses: list[Use],
    seed: int,
    n: int,
    cache: dict[tuple[str, str, float, int], list[Any]],
) -> datasets.Dataset:
    task = uses[0].task
    kind = kind_of(task)
    columns = uses[0].source.columns or task.columns
    share = schema.unanswerable_share
    key = (kind, split, share, n)
    if key not in cache:
        cache[key] = draw(kind, split, seed, n, share)
    items = cache[key]
    realize = row_maker(task, kind, seed)
    rng = random.Random(f"{seed}/{schema.dataset}/{split}/unlabeled")
    rows: list[dict[str, Any]] = []
    for lang, prefix in _languages(uses):
        for item in items:
            hidden = split in schema.unlabeled_splits or rng.random() < schema.unlabeled_share
            ctx = RowContext(len(rows), lang, split, prefix, hidden)
            rows.append(to_hub(realize(item, lang), columns, task.labels, schema.features, ctx))
    # Built from an Arrow table with a fixed fingerprint: hashing rows buys nothing here.
    table = pa.Table.from_pylist(rows, schema=schema.features.arrow_schema)
    info = datasets.DatasetInfo(features=schema.features)
    return datasets.Dataset(table, info=info, fingerprint=f"xstilts-{seed}-{n}-{split}")


def _languages(uses: list[Use]) -> list[tuple[str, str]]:
    """(language, id prefix) pairs a config holds: one, or several told apart by id prefix."""
    seen: dict[str, str] = {}
    for use in uses:
        prefix = use.source.where_prefix[1] if use.source.where_prefix else ""
        seen.setdefault(use.language, prefix)
    return sorted(seen.items())


@contextmanager
def _quiet() -> Iterator[None]:
    was_off = not hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if not was_off:
            hf_logging.enable_progress_bar()


def write_fixtures(
    root: Path,
    *,
    seed: int = 0,
    n_per_split: int = 200,
    progress: Callable[[str], None] | None = None,
    tasks: Iterable[TaskSpec] | None = None,
    n_train: int | None = None,
) -> Path:
    """Write the fixture tree under `root` and return it. Same seed, same bytes.

    `tasks` restricts the tree to some tasks' datasets; `n_train` sizes training splits.
    """
    root = Path(root)
    _check_target(root)
    chosen = list(tasks or all_tasks())
    root.mkdir(parents=True, exist_ok=True)
    with _quiet():
        for name, config, split, ds in build_datasets(seed, n_per_split, chosen, n_train):
            path = config_dir(root, name, config) / f"{split}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.to_parquet(str(path))
            if progress:
                progress(f"{name} {config or ''} {split}: {len(ds)} rows")
    natives.write_all(root, chosen, seed, n_train or n_per_split, progress)
    corpus.write_for(root, chosen, seed, n_per_split)  # mlm_corpus/<lang>.txt, for `mlm`
    _write_metadata(root, chosen, seed, n_per_split)
    return root


def _check_target(root: Path) -> None:
    """Write into a new or empty directory, or over earlier fixtures; nothing else."""
    if root.exists() and not root.is_dir():
        raise UserError(f"fixtures: {root} exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not is_fixture_tree(root):
        raise UserError(
            f"fixtures: {root} is not empty and holds no fixtures (no {METADATA} written by "
            "`xstilts fixtures`); fixtures are only written into a new or empty directory"
        )


def _write_metadata(root: Path, tasks: list[TaskSpec], seed: int, n: int) -> None:
    langs = sorted({lang for t in tasks for lang in (*t.languages, *t.translated, "en")})
    meta = {
        "fixture_version": FIXTURE_VERSION,
        "seed": seed,
        "n_per_split": n,
        "tasks": sorted(t.name for t in tasks),
        "languages": {lang: language(lang).metadata() for lang in langs},
    }
    (root / METADATA).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_metadata(root: Path) -> dict[str, Any]:
    return json.loads((Path(root) / METADATA).read_text())


def ensure_fixtures(root: Path, *, seed: int = 0, n_per_split: int = 200) -> Path:
    """Generate fixtures under `root` unless they are there; atomic (temp dir + rename).

    `root` must be absent, empty, or hold fixtures already: a directory holding anything
    else (a user's own data) is a `UserError`, and is never written to. Fixtures of another
    `FIXTURE_VERSION` (an older xstilts') lack what this one reads: they are written again,
    the new tree renamed into place before the old one is removed.
    """
    root = Path(root)
    found = fixture_version(root)
    if found == FIXTURE_VERSION:
        return root
    _check_target(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    old = root.with_name(f".{root.name}.v{found}-{os.getpid()}")
    try:
        write_fixtures(tmp, seed=seed, n_per_split=n_per_split)
        if found is not None:
            os.replace(root, old)
        elif root.exists() and not any(root.iterdir()):
            root.rmdir()
        os.replace(tmp, root)
    except OSError:
        if fixture_version(root) != FIXTURE_VERSION:  # else another process wrote them first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return root
