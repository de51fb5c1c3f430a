"""One `Source` -> one `datasets.Dataset`, from the Hub or from a local Hub mirror.

`source="hub"` calls `datasets.load_dataset(dataset, config, split=...)`.
`source="local"` reads `<root>/<dataset id>/<config>/<split>.parquet` (or the Hub's own
sharded names, `<split>-00000-of-00001.parquet`), so a local directory is an exact
mirror of the Hub repository and only the file location differs. Configs without a name
live under `default/`, as on the Hub. Native (non-Hub) formats are read by
`evaluation.data.native` from `<native_dir>/<dataset>/`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import datasets
import pyarrow.parquet as pq

from evaluation.data.native import read as read_native
from evaluation.tasks.spec import Source
from storage.errors import UserError

SourceKind = Literal["hub", "local"]
DEFAULT_CONFIG = "default"


def describe(src: Source) -> str:
    return f"dataset {src.dataset!r} config {src.config!r} split {src.split!r}"


def config_dir(root: Path, dataset: str, config: str | None) -> Path:
    return Path(root) / dataset / (config or DEFAULT_CONFIG)


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
    if source == "local":
        if local_dir is None:
            raise UserError(f"{describe(src)}: source 'local' needs a local directory")
        return _read_local(src, Path(local_dir))
    if source != "hub":
        raise UserError(f"{describe(src)}: unknown data source {source!r} (hub or local)")
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
    folder = config_dir(root, src.dataset, src.config)
    if not folder.is_dir():
        raise UserError(f"{describe(src)}: not in the local mirror ({folder} missing)")
    files = sorted(folder.glob(f"{src.split}.parquet")) or sorted(
        folder.glob(f"{src.split}-*.parquet")
    )
    if not files:
        have = sorted({p.name.split(".")[0].split("-")[0] for p in folder.glob("*.parquet")})
        raise UserError(f"{describe(src)}: no such split in {folder} (splits: {', '.join(have)})")
    tables = [pq.read_table(f) for f in files]
    parts = [datasets.Dataset(t) for t in tables]
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
