"""The results store: per-language scores as Parquet fragments under ``<sweep>/results/``.

The contract (columns, keys, metric registry) is `storage.schema`. This module holds its
one writer and its one deduplicating reader; `xstilts results`, `status`, the report and
the benches all read through `ResultsStore.reading`.

API:
    ``store = ResultsStore(storage_uri, sweep)`` (or ``ResultsStore.at(results_dir, sweep)``)
    ``store.write_rows(rows, *, trial_key, target_task, attempt) -> str`` publishes one
    fragment named ``fragment_name(trial_key, target_task, attempt)`` and returns that name.
    ``rows`` is a `pyarrow.Table` or a list of dicts holding the per-row columns (model,
    model_params, intermediate_task, seed, language, split, metric, value, n_examples,
    task_version); sweep, trial_key, target_task, attempt, written_at and schema_version
    are filled in here. Publishing is create-only: if that fragment already exists (a re-run
    after a crash between the write and its ledger entry) it is kept unchanged and its name
    returned, so a fragment never changes once readers can see it.
    ``store.reading(wanted=None) -> Reading`` — the deduplicated rows and what the read
    found wrong; ``store.read()`` — just the rows; ``store.fragments()`` — fragment names.
    ``store.verify({fragment: expected_rows or None}) -> {fragment: why}`` — the recorded
    fragments that are gone, whose footer does not parse, or whose row count differs.

What the reader reads, and how it deduplicates (the rule, in one place):

- A *fragment* is a file directly under ``results/`` named like `fragment_name` makes.
  Temporaries (leading ``.`` or ``_``, ``.tmp`` suffix) are in-flight writes and ignored.
  Any other file is a *stray*: reported, never read. A fragment that cannot be read or
  whose columns are not `SCHEMA` is *unreadable*: reported by name and skipped, so one bad
  file never hides the rest (moving it aside makes `run` score that target task again).
  A fragment of an older schema version, which lacks a column added since
  (`storage.schema.ADDED_COLUMNS`), is read with that column null (unknown).
- Within one trial (same `KEY`) the row of the latest attempt wins (ties: newest
  ``written_at``). Across trials of the same cell (same `RESULT_KEY`: a sweep extended
  with a target task gives its cells new trial keys) the newest written row wins.
- A *conflict* is a `RESULT_KEY` whose rows disagree on ``value`` (across attempts or
  trials): the kept row is the one the rule picks, and every value is reported, never
  averaged away.

The deduplicated read is one DuckDB window query. DuckDB reads local fragments itself;
on s3:// and gs:// it scans them through a `pyarrow.dataset` over `pyarrow.fs`. Without
xstilts: ``pyarrow.dataset.dataset(dir)``, ``pandas.read_parquet(dir)``,
``polars.read_parquet(dir + "/*.parquet")``, DuckDB ``read_parquet(dir || '/*.parquet')``
(temporaries are hidden from all four; strays are not).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from storage.errors import UserError
from storage.files import Fence, Storage, check_name, describe_failure, resolve_storage
from storage.layout import SweepLayout
from storage.schema import (
    ADDED_COLUMNS,
    KEY,
    METRICS,
    RESULT_KEY,
    SCHEMA,
    SCHEMA_VERSION,
    SPLITS,
)

log = logging.getLogger(__name__)

FRAGMENT_RE = re.compile(
    r"(?P<trial>[A-Za-z0-9][A-Za-z0-9._-]*)__(?P<task>[A-Za-z0-9._-]+)__a\d{3}\.parquet"
)
_KEY_SQL = ", ".join(KEY)
_RESULT_SQL = ", ".join(RESULT_KEY)
# The rule of the module docstring in two steps. First, one scan of the fragments: each
# trial's latest attempt, flagged `disputed` when the trial's attempts disagree.
_WHOLE = "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"
_PER_TRIAL_SQL = f"""
SELECT * EXCLUDE (rank, lo, hi), lo <> hi AS disputed FROM (
  SELECT *, row_number() OVER latest AS rank,
         min(value) OVER whole AS lo, max(value) OVER whole AS hi
  FROM fragments WHERE {{where}}
  WINDOW latest AS (PARTITION BY {_KEY_SQL} ORDER BY attempt DESC, written_at DESC),
         whole AS (PARTITION BY {_KEY_SQL} ORDER BY attempt DESC, written_at DESC {_WHOLE})
) WHERE rank = 1
"""
# Then, in memory and only where a cell was scored by several trials: each result's newest
# trial, flagged also when the trials disagree.
_MULTI_SQL = """
SELECT count(*) FROM (SELECT model, intermediate_task, seed, target_task FROM per_trial
                      GROUP BY ALL HAVING count(DISTINCT trial_key) > 1)
"""
_NEWEST_TRIAL_SQL = f"""
SELECT * EXCLUDE (rank, lo, hi, trial_disputed), trial_disputed OR lo <> hi AS disputed FROM (
  SELECT * EXCLUDE (disputed), row_number() OVER newest AS rank,
         min(value) OVER whole AS lo, max(value) OVER whole AS hi,
         bool_or(disputed) OVER whole AS trial_disputed
  FROM per_trial
  WINDOW newest AS (PARTITION BY {_RESULT_SQL} ORDER BY written_at DESC, trial_key DESC),
         whole AS (PARTITION BY {_RESULT_SQL} ORDER BY written_at DESC, trial_key DESC {_WHOLE})
) WHERE rank = 1 ORDER BY {_RESULT_SQL}
"""
_ONE_TRIAL_SQL = f"SELECT * FROM per_trial ORDER BY {_RESULT_SQL}"
# Every row of the disputed results, the kept one marked (only run when there are some).
_CONFLICT_SQL = f"""
WITH ranked AS (
  SELECT *, row_number() OVER (
    PARTITION BY {_KEY_SQL} ORDER BY attempt DESC, written_at DESC) AS in_trial
  FROM fragments SEMI JOIN disputed USING ({_RESULT_SQL}) WHERE {{where}}
), rows AS (
  SELECT *, row_number() OVER (
    PARTITION BY {_RESULT_SQL}
    ORDER BY (in_trial = 1) DESC, written_at DESC, trial_key DESC, attempt DESC) AS rank
  FROM ranked
)
SELECT {_RESULT_SQL},
       list(trial_key ORDER BY trial_key, attempt) AS trial_keys,
       list(attempt ORDER BY trial_key, attempt) AS attempts,
       list(value ORDER BY trial_key, attempt) AS attempt_values,
       max(CASE WHEN rank = 1 THEN value END) AS kept
FROM rows GROUP BY {_RESULT_SQL} ORDER BY {_RESULT_SQL}
"""


@dataclass(frozen=True)
class Conflict:
    """One result whose rows disagree: ``values[i]`` was written by ``trial_keys[i]``'s
    attempt ``attempts[i]``; `kept` is the value the deduplicated view holds."""

    key: tuple[str, ...]  # the RESULT_KEY values
    trial_keys: tuple[str, ...]
    attempts: tuple[int, ...]
    values: tuple[float, ...]
    kept: float

    def __str__(self) -> str:
        trials = len(set(self.trial_keys))
        pairs = ", ".join(
            (f"{t[:8]} " if trials > 1 else "") + f"attempt {a}: {v:g}"
            for t, a, v in zip(self.trial_keys, self.attempts, self.values, strict=True)
        )
        return f"{'/'.join(self.key[1:])}: {pairs} (kept {self.kept:g})"

    def as_dict(self) -> dict[str, object]:
        entry: dict[str, object] = dict(zip(RESULT_KEY, self.key, strict=True))
        entry["seed"] = int(self.key[RESULT_KEY.index("seed")])
        return entry | {
            "trial_keys": list(self.trial_keys),
            "attempts": list(self.attempts),
            "values": list(self.values),
            "kept": self.kept,
        }


@dataclass(frozen=True)
class Reading:
    """One deduplicated read of the store, and everything it found wrong."""

    rows: pa.Table  # the deduplicated view: exactly SCHEMA, sorted by RESULT_KEY
    conflicts: tuple[Conflict, ...]
    unreadable: tuple[tuple[str, str], ...]  # (fragment as shown to the user, why)
    strays: tuple[str, ...]  # files under results/ that are not fragments (not read)
    n_fragments: int  # fragments read
    target_tasks: tuple[str, ...]  # every target task with rows, wanted or not

    def problems(self) -> list[str]:
        """One line per thing a reader of the results should know about."""
        return [f"conflicting values: {c}" for c in self.conflicts] + self.file_problems()

    def file_problems(self) -> list[str]:
        """One line per unreadable fragment and per stray file."""
        lines = [f"unreadable fragment skipped: {w} ({why})" for w, why in self.unreadable]
        return lines + [f"stray file ignored (not a fragment): {w}" for w in self.strays]


def fragment_name(trial_key: str, target_task: str, attempt: int) -> str:
    """The deterministic file name of one (cell, target task, attempt) fragment."""
    check_name("trial key", trial_key)
    check_name("target task", target_task)
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    return f"{trial_key}__{target_task}__a{attempt:03d}.parquet"


class ResultsStore:
    """The deduplicating Parquet store of one sweep."""

    def __init__(self, storage_uri: str, sweep: str, fence: Fence | None = None) -> None:
        self.sweep = check_name("sweep name", sweep)
        self.storage: Storage = resolve_storage(SweepLayout.of(storage_uri, sweep).results, fence)
        self.directory = self.storage.root

    @classmethod
    def at(cls, results_dir: str | Storage, sweep: str) -> ResultsStore:
        """The store whose fragments lie directly in `results_dir` (a path, URI or Storage)."""
        store = cls.__new__(cls)
        store.sweep = check_name("sweep name", sweep)
        store.storage = (
            results_dir if isinstance(results_dir, Storage) else resolve_storage(results_dir)
        )
        store.directory = store.storage.root
        return store

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
        if not self.storage.publish(
            self.storage.path(name), sink.getvalue().to_pybytes(), create_only=True
        ):
            log.info("fragment %s already published; keeping it", name)
        return name

    def fragments(self) -> list[str]:
        """Names of the fragments present (temporaries and strays excluded; not verified)."""
        return [n for n in self.storage.list_files(self.directory) if FRAGMENT_RE.fullmatch(n)]

    def verify(self, recorded: Mapping[str, int | None]) -> dict[str, str]:
        """Which of the `recorded` fragments (name -> rows written, if known) are damaged:
        gone, with a footer that does not parse or columns not `SCHEMA`, or holding another
        number of rows. Footers only are read (in parallel); nothing is moved."""
        present = set(self.fragments())

        def check(name: str) -> str | None:
            if name not in present:
                return "is gone"
            rows, why = self._footer(self.storage.path(name))
            if why is not None:
                return f"is unreadable ({why})"
            expected = recorded[name]
            if expected is not None and rows != expected:
                return f"is damaged ({rows} rows, {expected} written)"
            return None

        names = sorted(recorded)
        with ThreadPoolExecutor(max_workers=min(16, max(1, len(names)))) as pool:
            found = dict(zip(names, pool.map(check, names), strict=True))
        return {name: why for name, why in found.items() if why is not None}

    def read(self) -> pa.Table:
        """The deduplicated rows (see `reading` for what the read found wrong)."""
        return self.reading().rows

    def reading(self, wanted: Collection[tuple[str, str, str]] | None = None) -> Reading:
        """The deduplicated view of this sweep's rows, with conflicts, strays and unreadable
        fragments. `wanted` limits the rows to some (target task, split, metric)."""
        names = self.storage.list_files(self.directory)
        fragments = [n for n in names if FRAGMENT_RE.fullmatch(n)]
        strays = tuple(self.storage.display(self.storage.path(n)) for n in names
                       if not FRAGMENT_RE.fullmatch(n))  # fmt: skip
        paths = [self.storage.path(n) for n in fragments]
        unreadable: list[tuple[str, str]] = []
        try:
            tables = self._query(paths, wanted)
        except _ScanFailed:
            unreadable = self._diagnose(paths)
            bad = {path for path, _ in unreadable}
            paths = [p for p in paths if p not in bad]
            tables = self._query(paths, wanted)
        rows, conflicts, targets = tables
        return Reading(
            rows=rows,
            conflicts=tuple(conflicts),
            unreadable=tuple((self.storage.display(p), why) for p, why in unreadable),
            strays=strays,
            n_fragments=len(paths),
            target_tasks=targets,
        )

    def _query(
        self, paths: list[str], wanted: Collection[tuple[str, str, str]] | None
    ) -> tuple[pa.Table, list[Conflict], tuple[str, ...]]:
        """Deduplicated rows, conflicts and target tasks of this sweep's rows."""
        if not paths:
            return SCHEMA.empty_table(), [], ()
        with duckdb.connect() as con:
            con.execute("SET enable_progress_bar = false").fetchall()
            try:
                con.register("fragments", self._source(con, paths))
                sweep = {"sweep": self.sweep}
                where = f"sweep = $sweep AND {_where(wanted)}"
                per_trial = con.sql(_PER_TRIAL_SQL.format(where=where), params=sweep)
                con.register("per_trial", per_trial.to_arrow_table())  # the one scan
                ((n_multi,),) = con.execute(_MULTI_SQL).fetchall()
                rows = con.sql(_NEWEST_TRIAL_SQL if n_multi else _ONE_TRIAL_SQL).to_arrow_table()
                found = []
                if pc.any(rows["disputed"]).as_py():
                    con.register("disputed", rows.filter(rows["disputed"]).select(RESULT_KEY))
                    sql = _CONFLICT_SQL.format(where=where)
                    found = con.sql(sql, params=sweep).to_arrow_table().to_pylist()
                targets = sorted(self._targets(con, paths, rows, wanted is not None))
            except (duckdb.Error, pa.ArrowException, OSError) as exc:
                raise _ScanFailed(str(exc)) from exc
        conflicts = [
            Conflict(
                key=tuple(str(row[c]) for c in RESULT_KEY),
                trial_keys=tuple(row["trial_keys"]),
                attempts=tuple(row["attempts"]),
                values=tuple(row["attempt_values"]),
                kept=float(row["kept"]),
            )
            for row in found
        ]
        for name in ADDED_COLUMNS:  # absent when every fragment read predates the column
            if name not in rows.column_names:
                rows = rows.append_column(name, pa.nulls(rows.num_rows, SCHEMA.field(name).type))
        table = rows.select(SCHEMA.names).cast(SCHEMA)
        return table, conflicts, tuple(str(t) for t in targets)

    def _targets(
        self, con: duckdb.DuckDBPyConnection, paths: list[str], rows: pa.Table, some: bool
    ) -> set[str]:
        """The target tasks with rows of this sweep: those of `rows`, and (`some`: `rows`
        holds only some rows) those of the fragments whose name names another task. The
        writer names a fragment by the target task of its rows, so only those fragments are
        scanned again (none, when every target task has a wanted row)."""
        found = set(pc.unique(rows["target_task"]).to_pylist())
        others = [p for p in paths if _task_of(p) not in found] if some else []
        if others:
            con.register("others", self._source(con, others))
            sql = "SELECT DISTINCT target_task FROM others WHERE sweep = $sweep"
            found |= {t for (t,) in con.execute(sql, {"sweep": self.sweep}).fetchall()}
        return found

    def _source(self, con: duckdb.DuckDBPyConnection, paths: list[str]) -> Any:
        """Local files through DuckDB's own reader; object stores through `pyarrow.fs`."""
        if self.storage.is_local:
            # By name: fragments of an older schema version lack the columns added since.
            return con.read_parquet(paths, hive_partitioning=False, union_by_name=True)
        return ds.dataset(paths, schema=SCHEMA, format="parquet", filesystem=self.storage.fs)

    def _diagnose(self, paths: list[str]) -> list[tuple[str, str]]:
        """The fragments that cannot be read as `SCHEMA`, each with why; nothing is moved."""
        bad = []
        for path in paths:
            _, why = self._footer(path)
            if why is not None:
                bad.append((path, why))
        if not bad:
            raise UserError(describe_failure(self.storage, "read", self.directory, OSError(
                "the fragments could not be scanned together")))  # fmt: skip
        return bad

    def _footer(self, path: str) -> tuple[int, str | None]:
        """(rows, None) for a fragment whose footer parses with `SCHEMA`'s columns, else
        (0, why). A storage error (not the file's fault) is a `UserError`."""
        try:
            with self.storage.fs.open_input_file(path) as source:
                meta = pq.ParquetFile(source).metadata
                found = meta.schema.to_arrow_schema()
        except pa.ArrowException as exc:
            return 0, _short(exc)
        except OSError as exc:
            raise UserError(describe_failure(self.storage, "read", path, exc)) from exc
        if not _known_schema(found):
            return 0, "columns differ from the results schema"
        return meta.num_rows, None


def _known_schema(found: pa.Schema) -> bool:
    """`SCHEMA`, or `SCHEMA` as an older version wrote it (without the columns added since)."""
    older = SCHEMA.remove_metadata()
    for name in ADDED_COLUMNS:
        older = older.remove(older.get_field_index(name))
    return any(found.equals(s, check_metadata=False) for s in (SCHEMA.remove_metadata(), older))


class _ScanFailed(Exception):
    """The scan of the fragments failed; `ResultsStore.reading` finds out which one."""


def _where(wanted: Collection[tuple[str, str, str]] | None) -> str:
    """A SQL condition keeping the wanted (target task, split, metric) rows."""
    if wanted is None:
        return "true"
    if not wanted:
        return "false"
    combos = ", ".join(
        "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in combo) + ")"
        for combo in sorted(wanted)
    )
    return f"(target_task, split, metric) IN ({combos})"


def _task_of(path: str) -> str | None:
    """The target task a fragment's name names (None: not a fragment name)."""
    found = FRAGMENT_RE.fullmatch(path.rsplit("/", 1)[-1])
    return None if found is None else found.group("task")


def _short(cause: object) -> str:
    return " ".join(str(cause).split())[:160]


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
        metric = METRICS.get(row["metric"])
        if row["split"] not in SPLITS or metric is None:
            raise ValueError(f"unknown split or metric in {'/'.join(key)}")
        if not (math.isfinite(row["value"]) and metric.contains(row["value"])):
            raise ValueError(
                f"value {row['value']} of {'/'.join(key)} is outside {metric.name}'s scale "
                f"{metric.scale}"
            )
        if row["n_examples"] < 0:
            raise ValueError(f"n_examples of {'/'.join(key)} is negative")
