"""The results store: per-language scores as Parquet fragments under ``<storage>/<sweep>/results/``.

The contract (DESIGN.md, "Results store") in code: `SCHEMA` lists the columns and Arrow
types, long format, one row per (cell, target task, language, split, metric).

API:
    ``store = ResultsStore(storage_uri, sweep)``
    ``store.write_rows(rows, *, trial_key, target_task, attempt) -> str`` publishes one
    fragment named ``fragment_name(trial_key, target_task, attempt)`` and returns that name.
    ``rows`` is a `pyarrow.Table` or a list of dicts holding the per-row columns (model,
    model_params, intermediate_task, seed, language, split, metric, value, n_examples,
    task_version); sweep, trial_key, target_task, attempt, written_at and schema_version
    are filled in here. Publishing is create-only: if that fragment already exists (a re-run
    after a crash between the write and its ledger entry) it is kept unchanged and its name
    returned, so a fragment never changes once readers can see it.
    ``store.read() -> pyarrow.Table`` — every row, deduplicated on `KEY`, keeping the
    latest attempt, sorted by key, with exactly `SCHEMA`.
    ``store.conflicts() -> list[Conflict]`` — keys whose value differs between attempts.
    ``store.row_count() -> int`` — deduplicated rows; ``store.fragments() -> list[str]``.

The deduplicated read is one DuckDB window query. DuckDB reads local fragments itself;
on s3:// and gs:// it scans them through a `pyarrow.dataset` over `pyarrow.fs` (DuckDB's
own httpfs extension is not needed). Without xstilts: ``pyarrow.dataset.dataset(dir)``,
``pandas.read_parquet(dir)``, ``polars.read_parquet(dir + "/*.parquet")``, DuckDB
``read_parquet(dir || '/*.parquet')``.
Temporaries are hidden (leading dot, ``.tmp`` suffix) from all four.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from evaluation.errors import UserError
from evaluation.results_schema import KEY, SCHEMA, SCHEMA_VERSION
from orchestrator.storage import Storage, check_name, describe_failure, resolve_storage

log = logging.getLogger(__name__)

SPLITS = frozenset({"test", "validation"})
METRICS = frozenset({"accuracy", "f1", "exact_match", "precision", "recall", "map@20", "mrr@20"})
_FILLED = ("sweep", "trial_key", "target_task", "attempt", "written_at", "schema_version")
_KEY_SQL = ", ".join(KEY)
_DEDUP_SQL = f"""
SELECT * FROM scan
QUALIFY row_number() OVER (PARTITION BY {_KEY_SQL} ORDER BY attempt DESC, written_at DESC) = 1
ORDER BY {_KEY_SQL}
"""
_CONFLICT_SQL = f"""
SELECT {_KEY_SQL}, list(attempt ORDER BY attempt) AS attempts,
       list(value ORDER BY attempt) AS attempt_values
FROM scan GROUP BY {_KEY_SQL} HAVING count(DISTINCT value) > 1 ORDER BY {_KEY_SQL}
"""


@dataclass(frozen=True)
class Conflict:
    """One logical key whose value differs between attempts: ``values[i]`` is attempt i's."""

    key: tuple[str, ...]
    attempts: tuple[int, ...]
    values: tuple[float, ...]

    def __str__(self) -> str:
        pairs = ", ".join(
            f"attempt {a}: {v:g}" for a, v in zip(self.attempts, self.values, strict=True)
        )
        return f"{'/'.join(self.key)}: {pairs}"


def fragment_name(trial_key: str, target_task: str, attempt: int) -> str:
    """The deterministic file name of one (cell, target task, attempt) fragment."""
    check_name("trial key", trial_key)
    check_name("target task", target_task)
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    return f"{trial_key}__{target_task}__a{attempt:03d}.parquet"


class ResultsStore:
    """The deduplicating Parquet store of one sweep."""

    def __init__(self, storage_uri: str, sweep: str) -> None:
        self.sweep = check_name("sweep name", sweep)
        self.storage: Storage = resolve_storage(storage_uri)
        self.directory = self.storage.path(sweep, "results")

    def write_rows(
        self,
        rows: pa.Table | Iterable[Mapping[str, Any]],
        *,
        trial_key: str,
        target_task: str,
        attempt: int,
    ) -> str:
        """Publish `rows` as one fragment; return its name (see the module docstring)."""
        name = fragment_name(trial_key, target_task, attempt)
        filled = {
            "sweep": self.sweep,
            "trial_key": trial_key,
            "target_task": target_task,
            "attempt": attempt,
            "written_at": datetime.now(UTC),
            "schema_version": SCHEMA_VERSION,
        }
        table = _to_table(rows, filled)
        _check_rows(table)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        path = self.storage.path(self.sweep, "results", name)
        if not self.storage.publish(path, sink.getvalue().to_pybytes(), create_only=True):
            log.info("fragment %s already published; keeping it", name)
        return name

    def fragments(self) -> list[str]:
        """Names of the published fragments (temporaries and foreign files excluded)."""
        return [n for n in self.storage.list_files(self.directory) if n.endswith(".parquet")]

    def read(self) -> pa.Table:
        """All rows, deduplicated on `KEY` keeping the latest attempt, sorted by key."""
        table = self._query(_DEDUP_SQL)
        if table is None:
            return SCHEMA.empty_table()
        return table.select(SCHEMA.names).cast(SCHEMA)

    def conflicts(self) -> list[Conflict]:
        """Logical keys whose value differs between the attempts that wrote them."""
        table = self._query(_CONFLICT_SQL)
        rows = [] if table is None else table.to_pylist()
        return [
            Conflict(
                key=tuple(str(row[c]) for c in KEY),
                attempts=tuple(row["attempts"]),
                values=tuple(row["attempt_values"]),
            )
            for row in rows
        ]

    def row_count(self) -> int:
        """Number of deduplicated rows."""
        table = self._query(f"SELECT count(*) AS n FROM (SELECT DISTINCT {_KEY_SQL} FROM scan)")
        return 0 if table is None else int(table.column("n")[0].as_py())

    def _query(self, sql: str) -> pa.Table | None:
        """Run `sql` over the fragments as table ``scan``; None when there are none."""
        paths = [self.storage.path(self.sweep, "results", n) for n in self.fragments()]
        if not paths:
            return None
        with duckdb.connect() as con:
            con.execute("SET enable_progress_bar = false")
            try:
                con.register("scan", self._source(con, paths))
                return con.sql(sql).to_arrow_table()
            except (duckdb.Error, pa.ArrowException, OSError) as exc:
                raise UserError(self._diagnose(paths, exc)) from exc

    def _source(self, con: duckdb.DuckDBPyConnection, paths: list[str]) -> Any:
        """Local files through DuckDB's own reader; object stores through `pyarrow.fs`."""
        if self.storage.is_local:
            return con.read_parquet(paths, hive_partitioning=False)
        return ds.dataset(paths, schema=SCHEMA, format="parquet", filesystem=self.storage.fs)

    def _diagnose(self, paths: list[str], exc: BaseException) -> str:
        """Name the fragment that broke a scan; nothing is deleted or moved."""
        for path in paths:
            try:
                with self.storage.fs.open_input_file(path) as source:
                    found = pq.read_schema(source)
            except (pa.ArrowException, OSError) as bad:
                if isinstance(bad, OSError) and not isinstance(bad, pa.ArrowException):
                    return describe_failure(self.storage, "read", path, bad)
                return _corrupt(self.storage.display(path), bad)
            if not found.equals(SCHEMA.remove_metadata(), check_metadata=False):
                return _corrupt(
                    self.storage.display(path), "columns differ from the results schema"
                )
        return describe_failure(self.storage, "read", self.directory, exc)


def _corrupt(where: str, cause: object) -> str:
    text = " ".join(str(cause).split())[:160]
    return (
        f"corrupted results fragment {where} ({text}); nothing was changed: move it aside "
        "and its cell's target task will be scored again"
    )


def _to_table(rows: pa.Table | Iterable[Mapping[str, Any]], filled: dict[str, Any]) -> pa.Table:
    columns, count = _columns_of(rows)
    unknown = sorted(set(columns) - set(SCHEMA.names))
    if unknown:
        raise ValueError(f"rows have columns outside the results schema: {', '.join(unknown)}")
    for name, value in filled.items():
        given = columns.get(name)
        if given is not None and name != "written_at" and name != "schema_version":
            seen = set(given.to_pylist() if isinstance(given, pa.ChunkedArray) else given)
            if seen - {value}:
                raise ValueError(
                    f"rows say {name}={sorted(map(str, seen))}, the write is for {value!r}"
                )
        columns[name] = [value] * count
    missing = [n for n in SCHEMA.names if n not in columns]
    if missing:
        raise ValueError(f"rows lack columns of the results schema: {', '.join(missing)}")
    arrays = [_column(columns[f.name], f.type) for f in SCHEMA]
    order = [(name, "ascending") for name in ("language", "split", "metric")]
    return pa.Table.from_arrays(arrays, schema=SCHEMA).sort_by(order)


def _columns_of(rows: pa.Table | Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], int]:
    if isinstance(rows, pa.Table):
        return {n: rows.column(n) for n in rows.column_names}, rows.num_rows
    records = list(rows)
    names = sorted({name for record in records for name in record})
    return {n: [record.get(n) for record in records] for n in names}, len(records)


def _column(values: Any, type_: pa.DataType) -> pa.Array | pa.ChunkedArray:
    if isinstance(values, pa.ChunkedArray):
        return values.cast(type_)
    return pa.array(values, type=type_)


def _check_rows(table: pa.Table) -> None:
    if table.num_rows == 0:
        raise ValueError("no rows to write: a target task scores at least one language")
    nulls = [n for n in table.column_names if table.column(n).null_count]
    if nulls:
        raise ValueError(f"rows have missing values in: {', '.join(nulls)}")
    rows = table.select(["language", "split", "metric", "value", "n_examples"]).to_pylist()
    seen: set[tuple[str, str, str]] = set()
    for row in rows:
        key = (row["language"], row["split"], row["metric"])
        if key in seen:
            raise ValueError(f"duplicate row for language/split/metric {'/'.join(key)}")
        seen.add(key)
        if row["split"] not in SPLITS or row["metric"] not in METRICS:
            raise ValueError(f"unknown split or metric in {'/'.join(key)}")
        if not (math.isfinite(row["value"]) and 0 <= row["value"] <= 100):
            raise ValueError(f"value {row['value']} of {'/'.join(key)} is not on the 0-100 scale")
        if row["n_examples"] < 0:
            raise ValueError(f"n_examples of {'/'.join(key)} is negative")
