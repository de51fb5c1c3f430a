"""Results store speed: write one million rows as fragments, read them back deduplicated.

Fragment size as a sweep makes them: one fragment per (cell, target task, attempt) of
40 languages x 3 metrics = 120 rows (a WikiANN-sized target task; XNLI-sized ones are
smaller, so real sweeps write fewer rows per file). 5% of (cell, target task) pairs are
written twice (a retried trial, attempt 1, scoring what the first attempt did: resources
never change results), so the deduplicated read has real work to do; the read also checks
every result for conflicting values and lists stray files. Writes go through
``ResultsStore.write_rows`` with list-of-dict rows, one at a time, each published
atomically (temp file, fsync, link). Reads are timed warm, best of 3:
``ResultsStore.read()`` (list, scan, dedup, sort) against a plain DuckDB
``SELECT * FROM read_parquet('<dir>/*.parquet')`` of the same files, to Arrow.
Target: our deduplicated read at most 2x the plain scan. Prints figures; not a test.

    .venv/bin/python bench/store_bench.py [--rows N] [--dir DIR]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from storage.results import ResultsStore

LANGUAGES = 40
METRICS = ("f1", "precision", "recall")
RETRIED = 0.05
TARGETS = ("panx", "udpos", "xnli", "xquad", "mlqa", "tydiqa", "tatoeba", "lareqa")


def fragment_rows(cell: int, languages: int, attempt: int) -> list[dict[str, Any]]:
    rng = random.Random(cell * 7919)  # a retry scores what the first attempt did
    return [
        {
            "model": f"xlmr-{('base', 'large', 'xl')[cell % 3]}",
            "model_params": 270_000_000 * (1 + cell % 3),
            "intermediate_task": "mnli",
            "seed": cell,  # one cell per trial key: the dedup keeps every cell
            "language": f"l{lang:02d}",
            "split": "test",
            "metric": metric,
            "value": round(rng.uniform(20, 90), 4),
            "n_examples": 1000,
            "task_version": 1,
            "data_source": "fixtures",
        }
        for lang in range(languages)
        for metric in METRICS
    ]


def write(store: ResultsStore, total_rows: int) -> tuple[int, int, float]:
    """Write fragments until `total_rows` rows (rounded up to whole languages)."""
    rng = random.Random(0)
    written = fragments = pair = 0
    start = time.perf_counter()
    while written < total_rows:
        cell, target = divmod(pair, len(TARGETS))
        attempts = (0, 1) if rng.random() < RETRIED else (0,)
        for attempt in attempts:
            languages = min(LANGUAGES, -(-(total_rows - written) // len(METRICS)))
            if languages <= 0:
                break
            rows = fragment_rows(cell, languages, attempt)
            store.write_rows(
                rows, trial_key=f"cell{cell:05d}", target_task=TARGETS[target], attempt=attempt
            )
            written, fragments = written + len(rows), fragments + 1
        pair += 1
    return fragments, written, time.perf_counter() - start


def best_of(repeats: int, run: Callable[[], int]) -> tuple[float, int]:
    run()  # warm the page cache and the imports
    timings, rows = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        rows = run()
        timings.append(time.perf_counter() - start)
    return min(timings), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: a temp dir)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as root:
        store = ResultsStore(root, "bench")
        fragments, written, seconds = write(store, args.rows)
        print(
            f"write: {written:,} rows in {fragments:,} fragments in {seconds:.1f} s "
            f"= {written / seconds:,.0f} rows/s ({fragments / seconds:,.0f} fragments/s)"
        )
        ours, kept = best_of(3, lambda: store.read().num_rows)
        glob = f"{store.directory}/*.parquet"
        plain_sql = f"SELECT * FROM read_parquet('{glob}')"
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        plain, scanned = best_of(3, lambda: con.sql(plain_sql).to_arrow_table().num_rows)
        print(
            f"read (deduplicated): {kept:,} rows in {ours:.2f} s = {kept / ours:,.0f} rows/s "
            f"({written - kept:,} superseded rows dropped)"
        )
        print(
            f"plain DuckDB scan:   {scanned:,} rows in {plain:.2f} s "
            f"= {scanned / plain:,.0f} rows/s"
        )
        verdict = "meets" if ours / plain <= 2 else "misses"
        print(f"ratio deduplicated / plain: {ours / plain:.2f}x ({verdict} the 2x target)")


if __name__ == "__main__":
    main()
