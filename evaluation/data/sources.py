"""One `Source` -> one `datasets.Dataset`, from the Hub or from a local Hub mirror.

`source="hub"` calls `datasets.load_dataset(dataset, config, split=...)`.
`source="local"` reads `<root>/<dataset id>/<config>/<split>.parquet` (or the Hub's own
sharded names, `<split>-00000-of-00001.parquet`), so a local directory is an exact
mirror of the Hub repository and only the file location differs. Configs without a name
live under `default/`, as on the Hub. `source="fixtures"` reads a tree that `xstilts
fixtures` wrote the same way. A local directory is only ever read, never written. Native
(non-Hub) formats are read by `evaluation.data.native` from `<native_dir>/<dataset>/`.

The mirror's layout and the provenance of what it holds: `evaluation.data.mirror`.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import pyarrow.parquet as pq

from evaluation.data.mirror import (
    METADATA,
    SOURCES,
    SourceKind,
    config_dir,
    describe,
    expected_file,
    is_fixture_tree,
    missing_message,
    provenance,
    split_files,
)
from evaluation.data.native import read as read_native
from evaluation.tasks.spec import Source
from storage.errors import UserError

__all__ = [
    "METADATA",
    "SOURCES",
    "SourceKind",
    "config_dir",
    "describe",
    "expected_file",
    "is_fixture_tree",
    "missing_message",
    "provenance",
    "read_source",
    "split_files",
]


def read_source(
    src: Source,
    *,
    source: SourceKind = "hub",
    local_dir: Path | None = None,
    native_dir: Path | None = None,
) -> datasets.Dataset | None:
    """The rows of one split; None for an optional source that no directory holds."""
    if src.native is not None:
        where = native_dir or local_dir
        if where is None or not (Path(where) / src.dataset).is_dir():
            if src.optional:
                return None
            raise UserError(f"{describe(src)}: native data needs a local directory ({where})")
        return read_native(src, Path(where) / src.dataset)
    if source in ("local", "fixtures"):
        if local_dir is None:
            raise UserError(f"{describe(src)}: source {source!r} needs a local directory")
        return _read_local(src, Path(local_dir))
    if source != "hub":
        raise UserError(f"{describe(src)}: unknown data source {source!r} ({', '.join(SOURCES)})")
    return _read_hub(src)


def _read_hub(src: Source) -> datasets.Dataset:
    try:
        ds = datasets.load_dataset(src.dataset, src.config, split=src.split)
    except (ValueError, FileNotFoundError, ConnectionError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{describe(src)}: cannot load from the Hub: {first}") from None
    assert isinstance(ds, datasets.Dataset)
    return ds


def _read_local(src: Source, root: Path) -> datasets.Dataset:
    if not root.is_dir() or not any(root.iterdir()):
        raise UserError(f"{describe(src)}: local data directory {root} is empty or missing")
    files = split_files(src, root)
    if not files:
        raise UserError(missing_message(src, root))
    tables = [pq.read_table(f) for f in files]
    parts = [datasets.Dataset(t) for t in tables]
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
