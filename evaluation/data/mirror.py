"""A local mirror of the Hub: where each split lives, whether a tree is synthetic, and the
provenance rows read from it record. File names and JSON only (no `datasets` import), so
`xstilts validate` and `plan` can check a mirror quickly.

A split lives at `<root>/<dataset id>/<config>/<split>.parquet` (or the Hub's own sharded
names, `<split>-00000-of-00001.parquet`); configs without a name under `default/`. A tree
that `xstilts fixtures` wrote carries a `metadata.json` naming its fixture version.
`provenance(source, local_dir)`: `hub`, `local` (the user's own files), or `fixtures`
(synthetic, whichever source reads it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from evaluation.tasks.spec import Source

SourceKind = Literal["hub", "local", "fixtures"]
SOURCES: tuple[SourceKind, ...] = ("hub", "local", "fixtures")
DEFAULT_CONFIG = "default"
METADATA = "metadata.json"  # written by `xstilts fixtures` at the root of its tree


def describe(src: Source) -> str:
    return f"dataset {src.dataset!r} config {src.config!r} split {src.split!r}"


def config_dir(root: Path, dataset: str, config: str | None) -> Path:
    return Path(root) / dataset / (config or DEFAULT_CONFIG)


def expected_file(src: Source) -> str:
    """Where a local mirror holds `src`, relative to its root (Hub sharded names also do)."""
    if src.native is not None:
        return f"{src.dataset}/ (native files)"
    return f"{src.dataset}/{src.config or DEFAULT_CONFIG}/{src.split}.parquet"


def split_files(src: Source, root: Path) -> list[Path]:
    """The Parquet files of `src` in the local mirror at `root` (none when absent)."""
    folder = config_dir(root, src.dataset, src.config)
    return sorted(folder.glob(f"{src.split}.parquet")) or sorted(
        folder.glob(f"{src.split}-*.parquet")
    )


def missing_message(src: Source, root: Path) -> str:
    """One line naming the file a local mirror lacks (and the splits it has instead)."""
    folder = config_dir(root, src.dataset, src.config)
    have = sorted({p.name.split(".")[0].split("-")[0] for p in folder.glob("*.parquet")})
    where = f" (splits there: {', '.join(have)})" if have else ""
    return f"{describe(src)}: missing {Path(root) / expected_file(src)}{where}"


def is_fixture_tree(root: Path | str | None) -> bool:
    """Whether `root` was written by `xstilts fixtures` (its metadata names a version)."""
    return fixture_version(root) is not None


def fixture_version(root: Path | str | None) -> int | None:
    """The fixture version `xstilts fixtures` wrote `root` with; None: not a fixture tree."""
    if root is None:
        return None
    try:
        meta = json.loads((Path(root) / METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    version = meta.get("fixture_version") if isinstance(meta, dict) else None
    return version if isinstance(version, int) else None


def provenance(source: SourceKind, local_dir: Path | str | None) -> str:
    """`hub`, `local` or `fixtures`: where rows read with this source come from."""
    if source == "fixtures" or (source == "local" and is_fixture_tree(local_dir)):
        return "fixtures"
    return source
