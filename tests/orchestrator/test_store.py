"""The results store: schema, atomic fragments, dedup, conflicts, damage; and storage URIs.

Tests taking `storage_uri` are portable: tests/orchestrator/test_store_s3.py runs them
again against a real S3 server.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from storage.errors import UserError
from storage.files import _authorization, resolve_storage
from storage.results import KEY, SCHEMA, ResultsStore, fragment_name

LANGUAGES = ("de", "en", "sw")


@pytest.fixture
def storage_uri(tmp_path: Path) -> str:
    return str(tmp_path / "root")


def make_rows(
    value: float = 50.0, languages: tuple[str, ...] = LANGUAGES, seed: int = 1
) -> list[dict[str, Any]]:
    return [
        {
            "model": "tiny-s",
            "model_params": 1_000_000,
            "intermediate_task": "mnli",
            "seed": seed,
            "language": language,
            "split": "test",
            "metric": metric,
            "value": value,
            "n_examples": 100,
            "task_version": 1,
            "data_source": "local",
        }
        for language in languages
        for metric in ("f1", "exact_match")
    ]


def results_dir(storage_uri: str, sweep: str = "sw") -> str:
    storage = resolve_storage(storage_uri)
    return storage.path(sweep, "results")


def test_schema_is_exactly_the_contract(storage_uri: str) -> None:
    store = ResultsStore(storage_uri, "sw")
    name = store.write_rows(make_rows(), trial_key="k1", target_task="xquad", attempt=0)
    storage = resolve_storage(storage_uri)
    with storage.fs.open_input_file(f"{results_dir(storage_uri)}/{name}") as source:
        assert pq.read_schema(source).remove_metadata().equals(SCHEMA)
    table = store.read()
    assert table.schema.equals(SCHEMA)
    assert [f.name for f in SCHEMA] == [
        "sweep", "trial_key", "model", "model_params", "intermediate_task", "seed",
        "target_task", "language", "split", "metric", "value", "n_examples", "attempt",
        "written_at", "task_version", "schema_version", "data_source",
    ]  # fmt: skip
    assert SCHEMA.field("schema_version").type == pa.int16()
    assert set(table.column("schema_version").to_pylist()) == {2}
    assert set(table.column("sweep").to_pylist()) == {"sw"}
    assert set(table.column("data_source").to_pylist()) == {"local"}


def test_fragments_of_schema_version_1_read_with_unknown_provenance(storage_uri: str) -> None:
    """A fragment written before `data_source` existed stays readable: null (unknown)."""
    store = ResultsStore(storage_uri, "sw")
    store.write_rows(make_rows(), trial_key="new", target_task="xnli", attempt=0)
    old = store.write_rows(make_rows(seed=2), trial_key="old", target_task="xnli", attempt=0)
    storage = resolve_storage(storage_uri)
    path = f"{results_dir(storage_uri)}/{old}"
    with storage.fs.open_input_file(path) as source:
        v1 = pq.read_table(source).drop_columns(["data_source"])
    v1 = v1.set_column(v1.schema.get_field_index("schema_version"), "schema_version",
                       pa.array([1] * v1.num_rows, pa.int16()))  # fmt: skip
    sink = pa.BufferOutputStream()
    pq.write_table(v1, sink)
    storage.publish(path, sink.getvalue().to_pybytes())
    reading = store.reading()
    assert not reading.unreadable and reading.rows.schema.equals(SCHEMA)
    by_seed = {(r["seed"], r["data_source"]) for r in reading.rows.to_pylist()}
    assert by_seed == {(1, "local"), (2, None)}
    new = next(n for n in store.fragments() if n != old)
    storage.delete(f"{results_dir(storage_uri)}/{new}")  # only v1 fragments: no such column
    rows = store.read()
    assert rows.schema.equals(SCHEMA) and set(rows.column("data_source").to_pylist()) == {None}


def test_fragment_names_are_deterministic(storage_uri: str) -> None:
    store = ResultsStore(storage_uri, "sw")
    name = store.write_rows(make_rows(), trial_key="k1", target_task="xnli", attempt=2)
    assert name == fragment_name("k1", "xnli", 2) == "k1__xnli__a002.parquet"
    assert fragment_name("k1", "xnli", 2) != fragment_name("k1", "xnli", 3)
    assert store.fragments() == [name]


def test_republishing_a_fragment_keeps_the_first(storage_uri: str) -> None:
    store = ResultsStore(storage_uri, "sw")
    store.write_rows(make_rows(10.0), trial_key="k1", target_task="xnli", attempt=0)
    store.write_rows(make_rows(90.0), trial_key="k1", target_task="xnli", attempt=0)
    assert set(store.read().column("value").to_pylist()) == {10.0}
    assert len(store.fragments()) == 1


def test_dedup_keeps_the_latest_attempt(storage_uri: str) -> None:
    store = ResultsStore(storage_uri, "sw")
    for attempt, value in [(0, 50.0), (2, 70.0), (1, 60.0)]:
        store.write_rows(make_rows(value), trial_key="k1", target_task="xnli", attempt=attempt)
    table = store.read()
    assert table.num_rows == len(make_rows())
    assert set(table.column("attempt").to_pylist()) == {2}
    assert set(table.column("value").to_pylist()) == {70.0}
    keys = [tuple(row[c] for c in KEY) for row in table.to_pylist()]
    assert keys == sorted(set(keys))


def test_conflicting_values_are_reported(storage_uri: str) -> None:
    store = ResultsStore(storage_uri, "sw")
    store.write_rows(make_rows(50.0), trial_key="k1", target_task="xnli", attempt=0)
    changed = make_rows(50.0)
    changed[0]["value"] = 51.5  # de / f1
    store.write_rows(changed, trial_key="k1", target_task="xnli", attempt=1)
    store.write_rows(make_rows(40.0, seed=2), trial_key="k2", target_task="xnli", attempt=0)
    conflicts = store.reading().conflicts
    assert len(conflicts) == 1
    assert conflicts[0].key == ("sw", "tiny-s", "mnli", "1", "xnli", "de", "test", "f1")
    assert conflicts[0].attempts == (0, 1) and conflicts[0].values == (50.0, 51.5)
    assert conflicts[0].kept == 51.5
    assert "attempt 0: 50, attempt 1: 51.5 (kept 51.5)" in str(conflicts[0])


def test_a_cell_scored_by_two_trials_keeps_the_newest(storage_uri: str) -> None:
    store = ResultsStore(storage_uri, "sw")
    store.write_rows(make_rows(50.0), trial_key="old", target_task="xnli", attempt=3)
    store.write_rows(make_rows(50.0), trial_key="new", target_task="xnli", attempt=0)
    reading = store.reading()
    assert set(reading.rows.column("trial_key").to_pylist()) == {"new"}
    assert reading.rows.num_rows == len(make_rows()) and reading.conflicts == ()


def test_same_values_across_attempts_are_no_conflict(storage_uri: str) -> None:
    store = ResultsStore(storage_uri, "sw")
    for attempt in (0, 1):
        store.write_rows(make_rows(50.0), trial_key="k1", target_task="xnli", attempt=attempt)
    assert store.reading().conflicts == ()
    assert store.read().num_rows == len(make_rows())


def test_readers_ignore_temporaries(storage_uri: str) -> None:
    store = ResultsStore(storage_uri, "sw")
    store.write_rows(make_rows(), trial_key="k1", target_task="xnli", attempt=0)
    storage = resolve_storage(storage_uri)
    stray = f"{results_dir(storage_uri)}/.k1__xnli__a001.parquet.3f2a.tmp"
    with storage.fs.open_output_stream(stray) as out:
        out.write(b"PAR1 half a fragment")  # a writer killed mid-write
    assert store.read().num_rows == len(make_rows())
    assert store.fragments() == ["k1__xnli__a000.parquet"]


def test_corrupted_fragment_is_named_and_kept(storage_uri: str) -> None:
    store = ResultsStore(storage_uri, "sw")
    store.write_rows(make_rows(), trial_key="k1", target_task="xnli", attempt=0)
    storage = resolve_storage(storage_uri)
    bad = f"{results_dir(storage_uri)}/k2__xnli__a000.parquet"
    with storage.fs.open_output_stream(bad) as out:
        out.write(b"this is not parquet")
    reading = store.reading()
    ((where, why),) = reading.unreadable
    assert where.endswith("k2__xnli__a000.parquet") and why
    assert reading.rows.num_rows == len(make_rows())  # the good fragment is still read
    assert "k2__xnli__a000.parquet" in store.fragments()  # nothing moved or deleted
    assert "unreadable fragment skipped" in reading.problems()[0]


def test_two_sweeps_share_a_root_without_touching(storage_uri: str) -> None:
    one, two = ResultsStore(storage_uri, "one"), ResultsStore(storage_uri, "two")
    one.write_rows(make_rows(1.0), trial_key="k1", target_task="xnli", attempt=0)
    two.write_rows(make_rows(2.0), trial_key="k1", target_task="xnli", attempt=0)
    assert set(one.read().column("value").to_pylist()) == {1.0}
    assert set(two.read().column("sweep").to_pylist()) == {"two"}


def test_empty_store_reads_as_an_empty_table(storage_uri: str) -> None:
    store = ResultsStore(storage_uri, "sw")
    assert store.read().schema.equals(SCHEMA)
    reading = store.reading()
    assert reading.rows.num_rows == 0 and reading.n_fragments == 0 and reading.conflicts == ()


def test_arrow_table_input(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path), "sw")
    table = pa.Table.from_pylist(make_rows())
    store.write_rows(table, trial_key="k1", target_task="xnli", attempt=0)
    assert store.read().column("seed").type == pa.int32()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metric": "bleu"}, "unknown split or metric"),
        ({"split": "train"}, "unknown split or metric"),
        ({"value": 0.5e3}, "outside (f1|exact_match)'s scale"),
        ({"value": float("nan")}, "outside (f1|exact_match)'s scale"),
        ({"trial_key": "other"}, "rows say trial_key"),
        ({"colour": "red"}, "outside the results schema"),
        ({"n_examples": None}, "missing values in: n_examples"),
    ],
)
def test_bad_rows_are_refused(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    rows = make_rows()
    rows[0].update(change)
    with pytest.raises(ValueError, match=message):
        ResultsStore(str(tmp_path), "sw").write_rows(
            rows, trial_key="k1", target_task="xnli", attempt=0
        )
    assert not (tmp_path / "sw" / "results").exists() or not os.listdir(tmp_path / "sw/results")


def test_duplicate_and_missing_rows_are_refused(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path), "sw")
    with pytest.raises(ValueError, match="duplicate row for language/split/metric en/test/f1"):
        store.write_rows(make_rows() + make_rows()[2:3], trial_key="k", target_task="x", attempt=0)
    rows = [{k: v for k, v in row.items() if k != "seed"} for row in make_rows()]
    with pytest.raises(ValueError, match="lack columns of the results schema: seed"):
        store.write_rows(rows, trial_key="k", target_task="x", attempt=0)


def test_crash_before_rename_leaves_no_fragment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultsStore(str(tmp_path), "sw")
    store.write_rows(make_rows(), trial_key="k1", target_task="xnli", attempt=0)

    def crash(*_: object) -> None:
        raise KeyboardInterrupt  # stands in for a kill between the write and the rename

    monkeypatch.setattr(os, "link", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write_rows(make_rows(), trial_key="k2", target_task="xnli", attempt=0)
    monkeypatch.undo()
    assert store.fragments() == ["k1__xnli__a000.parquet"]
    assert store.read().num_rows == len(make_rows())


def test_plain_readers_without_xstilts(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path), "sw")
    for key in ("k1", "k2"):
        store.write_rows(make_rows(), trial_key=key, target_task="xnli", attempt=0)
    folder = tmp_path / "sw" / "results"
    (folder / ".k3__xnli__a000.parquet.9c1e.tmp").write_bytes(b"PAR1 partial")
    expected = 2 * len(make_rows())
    assert ds.dataset(folder, format="parquet").to_table().num_rows == expected
    assert len(pd.read_parquet(folder)) == expected
    assert pl.read_parquet(f"{folder}/*.parquet").height == expected
    glob = f"{folder}/*.parquet"
    count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall()
    assert count == [(expected,)]
    described = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{glob}')").fetchall()
    types = {row[0]: row[1] for row in described}
    assert types["schema_version"] == "SMALLINT" and types["seed"] == "INTEGER"


# --- storage URIs ------------------------------------------------------------------------


def test_local_paths_resolve_to_absolute_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_storage("runs").root == str(tmp_path / "runs")
    assert resolve_storage(f"file://{tmp_path}/x").root == str(tmp_path / "x")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://KEY:SECRET@bucket/p", "must not carry credentials"),
        ("s3://bucket/p?secret_key=SECRET", "must not carry credentials"),
        ("s3://bucket/p?colour=red", "unknown s3:// storage option"),
        ("s3://bucket/p?endpoint_override=h:1&scheme=ftp", "must be http or https"),
        ("hdfs://nn/p", "not supported"),
        ("   ", "storage is empty"),
    ],
)
def test_bad_storage_uris(uri: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as caught:
        resolve_storage(uri)
    assert "SECRET" not in str(caught.value)


def test_object_store_uri_keeps_options_out_of_the_display() -> None:
    storage = resolve_storage("s3://bucket/pre/fix?endpoint_override=127.0.0.1:9&scheme=http")
    assert (storage.root, storage.uri) == ("bucket/pre/fix", "s3://bucket/pre/fix")
    assert storage.display(storage.path("sw", "x")) == "s3://bucket/pre/fix/sw/x"


def test_no_write_permission_is_one_line() -> None:
    store = ResultsStore("/sys/xstilts-no-such-root", "sw")
    with pytest.raises(UserError, match=r"^no write permission on /sys/xstilts-no-such-root/sw"):
        store.write_rows(make_rows(), trial_key="k1", target_task="xnli", attempt=0)


def test_unsafe_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"sweep name '\.\./up'"):
        ResultsStore(str(tmp_path), "../up")
    with pytest.raises(UserError, match="trial key 'a/b'"):
        fragment_name("a/b", "xnli", 0)


def test_create_only_put_signature_matches_the_aws_example() -> None:
    """AWS's published SigV4 example for a PUT Object (examplebucket, test$file.text)."""
    headers = {
        "date": "Fri, 24 May 2013 00:00:00 GMT",
        "host": "examplebucket.s3.amazonaws.com",
        "x-amz-content-sha256": hashlib.sha256(b"Welcome to Amazon S3.").hexdigest(),
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
    }
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    header = _authorization(
        "us-east-1", "/test%24file.text", headers, "AKIAIOSFODNN7EXAMPLE", secret
    )
    assert header.endswith(
        "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    )
    assert "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class" in header


def test_a_writer_killed_at_any_instant_leaves_whole_fragments(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import itertools, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_store import make_rows
        from storage.results import ResultsStore
        store = ResultsStore({str(tmp_path)!r}, "sw")
        for i in itertools.count():
            store.write_rows(make_rows(float(i % 100), seed=i), trial_key=f"k{{i}}",
                             target_task="xnli", attempt=0)
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", code])
    folder, deadline = tmp_path / "sw" / "results", time.monotonic() + 60
    while len(list(folder.glob("*.parquet")) if folder.exists() else []) < 10:
        assert writer.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    store = ResultsStore(str(tmp_path), "sw")
    table = store.read()
    assert table.num_rows == len(store.fragments()) * len(make_rows()) >= 10 * len(make_rows())
    per_fragment = table.group_by("trial_key").aggregate([("value", "count")])
    assert set(per_fragment.column("value_count").to_pylist()) == {len(make_rows())}


def test_two_trials_that_disagree_are_a_conflict(storage_uri: str) -> None:
    store = ResultsStore(storage_uri, "sw")
    store.write_rows(make_rows(50.0), trial_key="old", target_task="xnli", attempt=0)
    store.write_rows(make_rows(55.0), trial_key="new", target_task="xnli", attempt=0)
    store.write_rows(make_rows(40.0, seed=2), trial_key="other", target_task="xnli", attempt=0)
    reading = store.reading()
    assert len(reading.conflicts) == len(make_rows())  # every language/metric of seed 1
    first = reading.conflicts[0]
    assert first.trial_keys == ("new", "old") and first.values == (55.0, 50.0)
    assert first.kept == 55.0 and "new" in str(first)
    assert set(reading.rows.column("value").to_pylist()) == {55.0, 40.0}
