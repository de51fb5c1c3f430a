"""Store, ledger and lease against a real S3 server (SeaweedFS), plus S3-only failures.

The portable tests of test_store.py, test_ledger.py and test_lease.py run here again with
`storage_uri` pointing at ``s3://``. Needs a private network namespace:
``unshare --net sh -c 'ip link set lo up && .venv/bin/pytest -m integration tests/orchestrator'``.
"""

from __future__ import annotations

import re
import threading
import uuid

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pytest
from s3server import ACCESS_KEY, SECRET_KEY, S3Server
from test_lease import (
    test_a_fresh_lease_on_another_host_is_respected,
    test_a_run_that_was_taken_over_knows_it,
    test_a_second_run_is_refused_while_the_first_lives,
    test_an_expired_lease_is_taken_over,
    test_generations_grow_and_old_ones_go,
    test_heartbeat_refreshes_the_record,
    test_racing_runs_get_exactly_one_lease,
    test_two_sweeps_have_separate_leases,
)
from test_ledger import (
    test_a_cell_runs_to_done,
    test_an_unknown_cell_is_pending,
    test_cells_have_their_own_records,
    test_corrupted_record_is_named_and_kept,
    test_failure_is_one_line_and_a_retry_clears_it,
    test_states_ignore_temporaries,
    test_two_sweeps_keep_separate_ledgers,
)
from test_store import (
    make_rows,
    test_conflicting_values_are_reported,
    test_corrupted_fragment_is_named_and_kept,
    test_dedup_keeps_the_latest_attempt,
    test_empty_store_reads_as_an_empty_table,
    test_fragment_names_are_deterministic,
    test_readers_ignore_temporaries,
    test_republishing_a_fragment_keeps_the_first,
    test_same_values_across_attempts_are_no_conflict,
    test_schema_is_exactly_the_contract,
    test_two_sweeps_share_a_root_without_touching,
)

from storage.errors import UserError
from storage.files import Storage, resolve_storage
from storage.results import ResultsStore

pytestmark = pytest.mark.integration

PORTABLE = (
    test_a_cell_runs_to_done,
    test_an_unknown_cell_is_pending,
    test_cells_have_their_own_records,
    test_corrupted_record_is_named_and_kept,
    test_failure_is_one_line_and_a_retry_clears_it,
    test_states_ignore_temporaries,
    test_two_sweeps_keep_separate_ledgers,
    test_a_fresh_lease_on_another_host_is_respected,
    test_a_run_that_was_taken_over_knows_it,
    test_a_second_run_is_refused_while_the_first_lives,
    test_an_expired_lease_is_taken_over,
    test_generations_grow_and_old_ones_go,
    test_heartbeat_refreshes_the_record,
    test_racing_runs_get_exactly_one_lease,
    test_two_sweeps_have_separate_leases,
    test_conflicting_values_are_reported,
    test_corrupted_fragment_is_named_and_kept,
    test_dedup_keeps_the_latest_attempt,
    test_empty_store_reads_as_an_empty_table,
    test_fragment_names_are_deterministic,
    test_readers_ignore_temporaries,
    test_republishing_a_fragment_keeps_the_first,
    test_same_values_across_attempts_are_no_conflict,
    test_schema_is_exactly_the_contract,
    test_two_sweeps_share_a_root_without_touching,
)


@pytest.fixture
def storage_uri(s3_server: S3Server, request: pytest.FixtureRequest) -> str:
    """A fresh prefix in the test bucket for every test."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:60]
    return s3_server.uri(f"t/{name}-{uuid.uuid4().hex[:8]}")


def race(storage: Storage, key: str, writers: int) -> list[int]:
    """`writers` threads publish `key` create-only at once; the indices of those that won."""
    barrier, wins = threading.Barrier(writers), []

    def write(i: int) -> None:
        barrier.wait()
        if storage.publish(storage.path(key), b"writer %d" % i, create_only=True):
            wins.append(i)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return wins


def test_create_only_put_race_has_one_winner(storage_uri: str) -> None:
    storage = resolve_storage(storage_uri)
    assert storage.create_is_atomic
    for round_ in range(10):
        winners = race(storage, f"race/{round_}.json", writers=4)
        assert len(winners) == 1
        content = storage.read_bytes(storage.path(f"race/{round_}.json"))
        assert content == b"writer %d" % winners[0]


def test_plain_readers_on_s3(storage_uri: str, s3_server: S3Server) -> None:
    store = ResultsStore(storage_uri, "sw")
    for key in ("k1", "k2"):
        store.write_rows(make_rows(), trial_key=key, target_task="xnli", attempt=0)
    folder, fs = store.directory, s3_server.filesystem()
    expected = 2 * len(make_rows())
    dataset = ds.dataset(folder, format="parquet", filesystem=fs)
    assert dataset.to_table().num_rows == expected
    assert duckdb.sql("SELECT count(*) FROM dataset").fetchall() == [(expected,)]
    assert len(pd.read_parquet(folder, filesystem=fs)) == expected
    options = {
        "aws_endpoint_url": f"http://{s3_server.endpoint}",
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "aws_region": "us-east-1",
        "aws_allow_http": "true",
    }
    assert pl.read_parquet(f"s3://{folder}/*.parquet", storage_options=options).height == expected


def test_unreachable_storage_is_one_line() -> None:
    store = ResultsStore("s3://bucket/p?endpoint_override=127.0.0.1:1&scheme=http", "sw")
    with pytest.raises(UserError, match=r"^storage s3://bucket/p/sw/results is unreachable"):
        store.write_rows(make_rows(), trial_key="k1", target_task="xnli", attempt=0)
    with pytest.raises(UserError, match=r"^storage s3://bucket/p/sw/results is unreachable"):
        store.read()


def test_wrong_credentials_mean_no_write_permission(
    storage_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = ResultsStore(storage_uri, "sw")
    with pytest.raises(UserError, match=r"^no write permission on s3://") as caught:
        store.write_rows(make_rows(), trial_key="k1", target_task="xnli", attempt=0)
    assert "not-the-secret" not in str(caught.value)
