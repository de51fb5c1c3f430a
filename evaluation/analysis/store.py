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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from evaluation.errors import UserError

SCHEMA = pa.schema(
    [
        ("sweep", pa.string()),
        ("trial_key", pa.string()),
        ("model", pa.string()),
        ("model_params", pa.int64()),
        ("intermediate_task", pa.string()),
        ("seed", pa.int32()),
        ("target_task", pa.string()),
        ("language", pa.string()),
        ("split", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("n_examples", pa.int64()),
        ("attempt", pa.int32()),
        ("written_at", pa.timestamp("us", tz="UTC")),
        ("task_version", pa.int32()),
        ("schema_version", pa.int16()),
    ]
)
KEY = ("sweep", "trial_key", "target_task", "language", "split", "metric")
CELL_KEY = ("model", "intermediate_task", "seed", "target_task", "language", "split", "metric")
_READ = [*dict.fromkeys((*KEY, *CELL_KEY, "model_params", "value", "attempt", "written_at"))]
_STRINGS = ("trial_key", "model", "intermediate_task", "target_task", "language", "split")


@dataclass(frozen=True)
class StoreRows:
    """Deduplicated rows of one sweep, and what the read found wrong."""

    rows: pd.DataFrame  # one row per logical key; string columns are categoricals
    conflicts: list[dict[str, object]]
    n_fragments: int
    n_rows_read: int


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


def _load(fs: pafs.FileSystem, paths: list[str], sweep: str) -> pa.Table:
    try:
        dataset = ds.dataset(paths, schema=SCHEMA, format="parquet", filesystem=fs)
        table = dataset.to_table(columns=_READ, filter=pc.field("sweep") == sweep)
    except (OSError, pa.ArrowException) as e:
        raise UserError(f"cannot read the results store: {str(e).splitlines()[0]}") from None
    for name in _STRINGS:
        table = table.set_column(
            table.schema.get_field_index(name), name, pc.dictionary_encode(table[name])
        )
    return table


def _conflicts(latest: pd.DataFrame, key: tuple[str, ...], why: str) -> list[dict[str, object]]:
    n_values = latest.groupby(list(key), observed=True, sort=False)["value"].transform("nunique")
    clash = latest[n_values > 1]
    out: list[dict[str, object]] = []
    for values, group in clash.groupby(list(key), observed=True, sort=True):
        entry = {k: _plain(v) for k, v in zip(key, values, strict=True)}
        entry |= {k: _plain(group[k].iloc[-1]) for k in CELL_KEY if k not in entry}
        entry["values"] = sorted(float(v) for v in group["value"].unique())
        entry["kept"] = float(group["value"].iloc[-1])
        entry["reason"] = why
        out.append(entry)
    return out


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def _dedup(df: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    df = df.sort_values(["attempt", "written_at"], kind="stable")
    newest = df.groupby(list(KEY), observed=True, sort=False)["attempt"].transform("max")
    latest = df[df["attempt"] == newest]
    conflicts = _conflicts(latest, KEY, "rows of the latest attempt disagree")
    rows = latest.drop_duplicates(list(KEY), keep="last")
    conflicts += _conflicts(rows, CELL_KEY, "several trials scored the same cell")
    return rows.drop_duplicates(list(CELL_KEY), keep="last"), conflicts


def read_results(fs: pafs.FileSystem | None, path: str | Path, sweep: str) -> StoreRows:
    """The deduplicated rows of `sweep` under `path`; UserError when there are none."""
    fs, root = resolve(fs, path)
    paths = fragment_paths(fs, root)
    if not paths:
        raise UserError(f"the results store at {root} holds no fragments for sweep {sweep!r}")
    table = _load(fs, paths, sweep)
    if table.num_rows == 0:
        raise UserError(f"the results store at {root} holds no rows for sweep {sweep!r}")
    rows, conflicts = _dedup(table.to_pandas())
    return StoreRows(rows.reset_index(drop=True), conflicts, len(paths), table.num_rows)
