"""The deduplicated read of the results store, with pyarrow (the DESIGN contract).

`evaluation` may not import `orchestrator`, so the reader the analysis needs lives here.
Fragments are the ``*.parquet`` files under the results directory; anything whose name
(or a folder above it) starts with ``.`` or ``_``, or that ends in ``.tmp``, is a
temporary and is ignored. Rows are deduplicated on the logical key, keeping the latest
``attempt``. Rows of that latest attempt that disagree on ``value`` are a *conflict*:
the newest row (by ``written_at``) is kept, and every conflict is reported with all of
its values — never averaged away. Two trials scoring the same (model, intermediate task,
seed) are reported the same way.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from evaluation.errors import UserError
from evaluation.results_schema import KEY, SCHEMA

CELL_KEY = ("model", "intermediate_task", "seed", "target_task", "language", "split", "metric")
_READ = [*dict.fromkeys((*KEY, *CELL_KEY, "model_params", "value", "attempt", "written_at"))]
_STRINGS = ("trial_key", "model", "intermediate_task", "target_task", "language", "split", "metric")


@dataclass(frozen=True)
class StoreRows:
    """Deduplicated rows of one sweep, and what the read found wrong."""

    rows: pd.DataFrame  # one row per logical key; string columns are categoricals
    conflicts: list[dict[str, object]]
    n_fragments: int
    n_rows_read: int
    target_tasks: tuple[str, ...] = ()  # every target task with rows, wanted or not


@dataclass(frozen=True)
class _Kept:
    rows: pd.DataFrame
    conflicts: list[dict[str, object]]


def _is_fragment(path: str, root: str) -> bool:
    rel = posixpath.relpath(path, root)
    parts = rel.split("/")
    if any(p.startswith((".", "_")) for p in parts):
        return False
    return parts[-1].endswith(".parquet") and not parts[-1].endswith(".tmp")


def fragment_paths(fs: pafs.FileSystem, root: str) -> list[str]:
    """Every published fragment under `root`, sorted; temporaries left out."""
    try:
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    except OSError as e:
        raise UserError(f"cannot list the results store at {root}: {e}") from None
    files = (i.path for i in infos if i.type == pafs.FileType.File)
    return sorted(p for p in files if _is_fragment(p, root))


def resolve(fs: pafs.FileSystem | None, path: str | Path) -> tuple[pafs.FileSystem, str]:
    """A local directory when `fs` is None, else `path` inside `fs`."""
    if fs is None:
        return pafs.LocalFileSystem(), Path(path).resolve().as_posix()
    return fs, str(path).rstrip("/")


def _load(fs: pafs.FileSystem, paths: list[str]) -> pa.Table:
    try:
        dataset = ds.dataset(paths, schema=SCHEMA, format="parquet", filesystem=fs)
        return dataset.to_table(columns=_READ)
    except (OSError, pa.ArrowException) as e:
        raise UserError(f"cannot read the results store: {str(e).splitlines()[0]}") from None


def _encode(table: pa.Table) -> pa.Table:
    table = table.combine_chunks()
    for name in _STRINGS:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pc.dictionary_encode(table[name]).combine_chunks())
    return table


def _select(table: pa.Table, wanted: Collection[tuple[str, str, str]] | None) -> pa.Table:
    """Only the (target task, split, metric) rows wanted (on dictionary codes: fast)."""
    if wanted is None:
        return table
    columns = [table[name].chunk(0) for name in ("target_task", "split", "metric")]
    lookup = np.zeros([len(c.dictionary) + 1 for c in columns], dtype=bool)
    position = [{v: i for i, v in enumerate(c.dictionary.to_pylist())} for c in columns]
    for combo in wanted:
        if all(v in p for v, p in zip(combo, position, strict=True)):
            lookup[tuple(p[v] for v, p in zip(combo, position, strict=True))] = True
    codes = tuple(c.indices.to_numpy(zero_copy_only=False) for c in columns)
    return table.filter(pa.array(lookup[codes]))


def _group_ids(df: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """One small integer per distinct combination of `columns` (no overflow, any size)."""
    key = np.zeros(len(df), dtype=np.int64)
    for name in columns:
        codes, uniques = pd.factorize(df[name], sort=False)
        key = pd.factorize(key * max(len(uniques), 1) + codes, sort=False)[0]
    return key


def _conflict(rows: pd.DataFrame, values: np.ndarray, why: str) -> dict[str, object]:
    kept = rows.iloc[-1]
    entry: dict[str, object] = {k: _plain(kept[k]) for k in dict.fromkeys((*KEY, *CELL_KEY))}
    entry |= {"values": sorted(float(v) for v in np.unique(values)), "kept": float(kept["value"])}
    return entry | {"reason": why}


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def _latest(df: pd.DataFrame, key: tuple[str, ...], by_attempt: bool, why: str) -> _Kept:
    """Keep the newest row per key; rows of its attempt with other values are conflicts."""
    ids = _group_ids(df, key)
    attempt = df["attempt"].to_numpy() if by_attempt else np.zeros(len(df), dtype=np.int32)
    written = df["written_at"].astype("int64").to_numpy()
    order = np.lexsort((written, attempt, ids))
    ids, attempt, value = ids[order], attempt[order], df["value"].to_numpy()[order]
    first = np.r_[True, ids[1:] != ids[:-1]]
    last = np.r_[first[1:], True]
    group = np.cumsum(first) - 1
    latest = attempt == attempt[last][group]
    kept_value = value[last][group]
    differs = latest & (value != kept_value) & ~(np.isnan(value) & np.isnan(kept_value))
    conflicts = []
    for g in np.unique(group[differs]):
        rows = order[(group == g) & latest]
        conflicts.append(_conflict(df.iloc[rows], df["value"].to_numpy()[rows], why))
    return _Kept(df.iloc[order[last]], conflicts)


def _dedup(df: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    by_key = _latest(df, KEY, True, "rows of the latest attempt disagree")
    by_cell = _latest(by_key.rows, CELL_KEY, False, "several trials scored the same cell")
    return by_cell.rows, by_key.conflicts + by_cell.conflicts


def read_results(
    fs: pafs.FileSystem | None,
    path: str | Path,
    sweep: str,
    wanted: Collection[tuple[str, str, str]] | None = None,
) -> StoreRows:
    """The deduplicated rows of `sweep` under `path`; UserError when there are none.

    `wanted` limits the rows to some (target task, split, metric) combinations (the
    analysis needs only the reported ones); `StoreRows.target_tasks` still names every
    target task the sweep has rows for.
    """
    fs, root = resolve(fs, path)
    paths = fragment_paths(fs, root)
    if not paths:
        raise UserError(f"the results store at {root} holds no fragments for sweep {sweep!r}")
    table = _load(fs, paths)
    table = table.filter(pc.equal(table["sweep"], sweep))
    if table.num_rows == 0:
        raise UserError(f"the results store at {root} holds no rows for sweep {sweep!r}")
    table = _encode(table)
    targets = tuple(sorted(table["target_task"].chunk(0).dictionary.to_pylist()))
    selected = _select(table, wanted)
    rows, conflicts = _dedup(selected.to_pandas())
    return StoreRows(rows.reset_index(drop=True), conflicts, len(paths), table.num_rows, targets)
