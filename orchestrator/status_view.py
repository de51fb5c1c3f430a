"""`xstilts status` and `xstilts results`: what the ledger and the store say."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from orchestrator.grid import expand
from orchestrator.lease import live_holder
from orchestrator.ledger import Ledger, cell_view
from orchestrator.spec import SweepSpec
from orchestrator.verify import damaged, without
from storage.errors import UserError
from storage.results import Reading, ResultsStore
from storage.schema import METRICS, RESULT_KEY, SCHEMA


def show_status(spec: SweepSpec) -> dict[str, int]:
    ledger = Ledger(spec.storage, spec.name)
    store = ResultsStore(spec.storage, spec.name)
    recorded = ledger.all_states()
    damage = damaged(recorded, store)
    states = without(recorded, damage)
    table = Table(title=f"sweep {spec.name!r} at {ledger.storage.uri}")
    for col in ("cell", "trial key", "state", "phase", "targets", "attempts", "cause"):
        table.add_column(col, overflow="fold")
    counts = {"done": 0, "running": 0, "failed": 0, "pending": 0}
    for cell in expand(spec):
        s = cell_view(states, cell.trial_key, cell.target_keys)
        status = s.status(cell.target_tasks) if s else "pending"
        counts[status] += 1
        running = s.running if s else None
        phase = f"{running.phase} {running.target_task or ''}".strip() if running else ""
        done = sum(t in s.targets for t in cell.target_tasks) if s else 0
        table.add_row(
            cell.label,
            cell.trial_key,
            status,
            phase,
            f"{done}/{len(cell.target_tasks)}",
            str(getattr(s, "attempts", 0) if s else 0),
            (s.failed or "") if s else "",
        )
    console = Console()
    console.print(table)
    holder = live_holder(spec.storage, spec.name)
    console.print(
        ", ".join(f"{n} {k}" for k, n in counts.items())
        + (f" — run in progress: {holder.describe(time.time())}" if holder else "")
    )
    for d in damage:
        print(f"{d}; `xstilts run` scores {d.target_task} again", file=sys.stderr)
    report_problems(store.reading())
    return counts


def report_problems(reading: Reading) -> None:
    """Conflicts, unreadable fragments and stray files, one line each on stderr."""
    lines = reading.problems()
    if not lines:
        return
    err = Console(stderr=True, highlight=False)
    for line in lines[:20]:
        err.print(f"results store: {line}", markup=False, soft_wrap=True)
    if len(lines) > 20:
        err.print(f"results store: ... and {len(lines) - 20} more", markup=False, soft_wrap=True)


def parse_where(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        column, sep, value = item.partition("=")
        if not sep or column not in SCHEMA.names:
            names = ", ".join(SCHEMA.names)
            raise UserError(f"--where {item!r}: expected COLUMN=VALUE, COLUMN one of {names}")
        out[column] = value
    return out


def filter_rows(table: pa.Table, where: dict[str, str]) -> pa.Table:
    import pyarrow.compute as pc

    for column, value in where.items():
        col = table[column]
        table = table.filter(pc.equal(pc.cast(col, pa.string()), value))
    return table


def show_results(spec: SweepSpec, fmt: str, where: tuple[str, ...], out: Path | None) -> None:
    wanted = parse_where(where)
    reading = ResultsStore(spec.storage, spec.name).reading()
    report_problems(reading)
    table = filter_rows(reading.rows, wanted)
    if fmt == "parquet":
        if out is None:
            raise UserError("--format parquet needs --out FILE")
        import pyarrow.parquet as pq

        pq.write_table(table, out)
        print(f"{table.num_rows} rows written to {out}", file=sys.stderr)
    elif fmt == "csv":
        import pyarrow.csv as pcsv

        if out is None:
            sink = pa.BufferOutputStream()
            pcsv.write_csv(table, sink)
            sys.stdout.write(sink.getvalue().to_pybytes().decode())
        else:
            pcsv.write_csv(table, out)
    else:
        _print_table(table)


def _print_table(table: pa.Table) -> None:
    shown = [*RESULT_KEY[1:], "value"]  # one result per row; the sweep is in the title
    view = Table(title=f"{table.num_rows} rows")
    for col in shown:
        view.add_column(col, justify="right" if col in ("seed", "value") else "left")
    for row in table.select(shown).to_pylist():
        digits = METRICS[row["metric"]].digits if row["metric"] in METRICS else 2
        view.add_row(*(f"{row[c]:.{digits}f}" if c == "value" else str(row[c]) for c in shown))
    Console().print(view)
