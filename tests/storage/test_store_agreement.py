"""`xstilts results`, `xstilts report` and a plain DuckDB query agree on one damaged store.

The store holds a whole planted sweep plus everything a real one collects over its life:
a retry that scored the same values (a duplicate), a retry that scored one value
differently (a conflict), a cell scored again under a new trial key, a truncated fragment,
a stray file and a writer's temporary. The plain query is written here, from the contract
in the README, over the fragments a person would pick by hand.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from evaluation.analysis.synthetic import Planted, rows_table, write_planted
from storage.results import ResultsStore

SWEEP = "agree"
PLAN = Planted(sweep=SWEEP, seeds=(0, 1, 2), noise=1.0)
XSTILTS = str(Path(sys.executable).with_name("xstilts"))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [XSTILTS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _fragment_of(results: Path, model: str, task: str, seed: int) -> Path:
    for path in sorted(results.glob("*.parquet")):
        first = duckdb.sql(f"SELECT model, intermediate_task, seed FROM '{path}' LIMIT 1")
        if first.fetchall()[0] == (model, task, seed):
            return path
    raise AssertionError(f"no fragment of {model}/{task}/{seed}")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    results = root / SWEEP / "results"
    write_planted(results, PLAN)
    writer = ResultsStore(str(root), SWEEP)
    # a duplicate: attempt 1 of small/mnli/0 scored exactly what attempt 0 did
    same = _fragment_of(results, "small", "mnli", 0)
    table = duckdb.sql(f"SELECT * FROM '{same}'").to_arrow_table()
    key = table["trial_key"][0].as_py()
    table = table.set_column(12, "attempt", pa.array([1] * table.num_rows, pa.int32()))
    writer.write_rows(table, trial_key=key, target_task="xnli", attempt=1)
    # a conflict: attempt 1 of large/none/2 scored German differently
    other = _fragment_of(results, "large", "none", 2)
    table = duckdb.sql(
        f"SELECT * REPLACE (1::INT AS attempt, CASE WHEN language = 'de' AND metric = "
        f"'accuracy' THEN value + 7.5 ELSE value END AS value) FROM '{other}'"
    ).to_arrow_table()
    writer.write_rows(table, trial_key=table["trial_key"][0].as_py(), target_task="xnli", attempt=1)
    # the same cell scored again under a new trial key (a sweep extended): identical values
    again = _fragment_of(results, "tiny", "none", 1)
    table = duckdb.sql(f"SELECT * REPLACE ('extended0000001' AS trial_key) FROM '{again}'")
    writer.write_rows(
        table.to_arrow_table(), trial_key="extended0000001", target_task="xnli", attempt=0
    )
    # a truncated fragment (a copy of a good one, cut short), a stray file, a temporary
    whole = _fragment_of(results, "tiny", "mnli", 0).read_bytes()
    (results / "trunc0000000001__xnli__a000.parquet").write_bytes(whole[: len(whole) // 2])
    (results / "notes.txt").write_text("my notes about this sweep\n")
    (results / ".zzzz0000000001__xnli__a000.parquet.1f2e.tmp").write_bytes(whole[:100])
    return root


def _plain_duckdb(results: Path) -> list[tuple]:
    """The deduplicated view by hand: the fragments that are whole, then the README's rule
    (latest attempt within a trial; newest trial for a cell)."""
    files = sorted(str(p) for p in results.glob("*__a*.parquet") if not p.name.startswith("trunc"))
    rows = duckdb.sql(
        f"""
        WITH raw AS (SELECT * FROM read_parquet({files!r})),
        per_trial AS (
          SELECT * FROM raw QUALIFY row_number() OVER (
            PARTITION BY trial_key, target_task, language, split, metric
            ORDER BY attempt DESC) = 1)
        SELECT model, intermediate_task, seed, target_task, language, split, metric, value
        FROM per_trial QUALIFY row_number() OVER (
          PARTITION BY model, intermediate_task, seed, target_task, language, split, metric
          ORDER BY written_at DESC) = 1
        """
    ).fetchall()
    return sorted(rows)


def test_results_report_and_duckdb_agree_row_for_row(store: Path) -> None:
    results = store / SWEEP / "results"
    expected = _plain_duckdb(results)
    # models × tasks × seeds × XNLI languages × (accuracy, nll, nll_se)
    assert len(expected) == 3 * 2 * 3 * 15 * 3
    shown = _cli(
        "results", "quickstart", "--storage", str(store), "--name", SWEEP, "--format", "csv",
        cwd=store,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    got = sorted(
        (r["model"], r["intermediate_task"], int(r["seed"]), r["target_task"], r["language"],
         r["split"], r["metric"], float(r["value"]))
        for r in csv.DictReader(io.StringIO(shown.stdout))
    )  # fmt: skip
    assert got == expected
    # what the read found wrong, one line each; the temporary is not news
    problems = shown.stderr.splitlines()
    assert sum("conflicting values" in line and "large/none/2/xnli/de" in line
               for line in problems) == 1  # fmt: skip
    assert sum("unreadable fragment skipped" in line and "trunc0000000001" in line
               for line in problems) == 1  # fmt: skip
    assert sum("stray file ignored" in line and "notes.txt" in line for line in problems) == 1
    assert len(problems) == 3 and not any(".tmp" in line for line in problems)
    # the report's per-cell means are those of the same rows
    report = _cli("report", "quickstart", "--storage", str(store), "--name", SWEEP, cwd=store)
    assert report.returncode == 0, report.stderr
    summary = json.loads((store / SWEEP / "report" / "summary.json").read_text())
    by_cell: dict[tuple, list[list[float]]] = {}
    for model, task, seed, _target, _lang, _split, metric, value in expected:
        by_cell.setdefault((model, task, metric), [[] for _ in PLAN.seeds])[seed].append(value)
    for c in summary["cells"]:
        seeds = by_cell[(c["model"], c["intermediate_task"], c["metric"])]
        mean = sum(sum(v) / len(v) for v in seeds) / len(seeds)
        assert c["mean"] == pytest.approx(mean, abs=1e-9)
    (conflict,) = summary["conflicts"]
    assert (conflict["model"], conflict["seed"], conflict["language"]) == ("large", 2, "de")
    assert conflict["kept"] == pytest.approx(conflict["values"][1])
    assert any("trunc0000000001" in n for n in summary["notes"])


def test_status_reports_the_same_problems(store: Path) -> None:
    shown = _cli("status", "quickstart", "--storage", str(store), "--name", SWEEP, cwd=store)
    assert shown.returncode == 0, shown.stderr
    assert "unreadable fragment skipped" in shown.stderr and "notes.txt" in shown.stderr
    assert "conflicting values" in shown.stderr


def test_a_planted_row_table_is_what_the_writer_takes() -> None:
    table = rows_table(SWEEP, ("m", "none", 0), 10, "xnli", [("en", "test", "accuracy", 1.0)])
    assert table.schema.names[12] == "attempt" and table.schema.names[1] == "trial_key"
