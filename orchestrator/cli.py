"""The `xstilts` command line. Heavy imports (torch, ray) happen inside the commands that
need them, so `validate`, `plan`, `tasks` and `--help` start fast.

Every user error is one line on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from storage.errors import UserError

STORAGE = click.option("--storage", help="Override the spec's storage (path, s3://, gs://).")
NAME = click.option("--name", help="Override the spec's sweep name.")
SPEC_HELP = "SPEC is a YAML path or a built-in spec: quickstart, phang2020, scaling."


def _load(spec: str, storage: str | None, name: str | None) -> Any:
    from orchestrator.spec import load_spec

    return load_spec(spec, storage=storage, name=name)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="xstilts")
def cli() -> None:
    """xstilts: STILTs x model size x seed sweeps on Ray, scored as XTREME-R scores them."""


@cli.command()
@click.argument("spec")
@STORAGE
@NAME
def validate(spec: str, storage: str | None, name: str | None) -> None:
    """Check a sweep spec and report every problem at once. SPEC: path or built-in name.

    Also reads each own checkpoint's config.json and weights headers, and checks that a
    local data directory holds every file the sweep reads."""
    from orchestrator.data_check import check_data
    from orchestrator.grid import expand
    from orchestrator.splits import check_splits

    parsed = _load(spec, storage, name)
    cells = expand(parsed)
    check_splits(parsed)
    check_data(parsed)
    click.echo(f"{spec}: ok — sweep {parsed.name!r}, {len(cells)} cells")


@cli.command()
@click.argument("spec")
@STORAGE
@NAME
@click.option("--cells", "show_cells", is_flag=True, help="List every cell, not just groups.")
@click.option(
    "--power",
    is_flag=True,
    help="Print the minimum detectable size trend (80 % power) and what more seeds or sizes buy.",
)
@click.option(
    "--pilot-name", help="With --power: take the noise from this existing sweep's results."
)
@click.option(
    "--pilot-storage", help="Storage of the --pilot-name sweep (default: this spec's storage)."
)
@click.option(
    "--seed-sd",
    type=float,
    help="With --power: SD of one seed's dispersion effect, points (default 0.5, or the pilot's).",
)
@click.option(
    "--model-sd",
    type=float,
    help="With --power: between-model quirk SD, points (default 0.3, or the pilot's).",
)
def plan(
    spec: str,
    storage: str | None,
    name: str | None,
    show_cells: bool,
    power: bool,
    pilot_name: str | None,
    pilot_storage: str | None,
    seed_sd: float | None,
    model_sd: float | None,
) -> None:
    """Show the grid, the trainings it implies and an estimate of GPU-hours.

    With --power: the smallest slope of the dispersion effect per decade of parameters the
    report's test would detect with 80 % power, for the spec's sizes x seeds, +1 or +2
    seeds and +1 size; noise from a pilot sweep (--pilot-name) or stated (--seed-sd,
    --model-sd).
    """
    from orchestrator.plan_view import done_counts, show_plan

    stated: dict[str, object] = {"--pilot-name": pilot_name, "--pilot-storage": pilot_storage}
    stated |= {"--seed-sd": seed_sd, "--model-sd": model_sd}
    if not power and any(v is not None for v in stated.values()):
        given = ", ".join(k for k, v in stated.items() if v is not None)
        raise UserError(f"{given} only make(s) sense with --power")
    if pilot_storage is not None and pilot_name is None:
        raise UserError("--pilot-storage needs --pilot-name (the pilot sweep's name)")
    parsed = _load(spec, storage, name)
    if not power:
        from orchestrator.data_check import check_data
        from orchestrator.splits import check_splits

        check_splits(parsed)
        check_data(parsed)
        show_plan(parsed, show_cells=show_cells, done=done_counts(parsed))
        return
    from orchestrator.plan import pilot_noise, resolve_noise
    from orchestrator.plan_view import show_power

    pilot = None
    if pilot_name is not None:
        pilot = pilot_noise(pilot_storage or parsed.storage, pilot_name)
    show_power(parsed, resolve_noise(seed_sd, model_sd, pilot))


@cli.command()
@click.argument("spec", default="quickstart")
@STORAGE
@NAME
@click.option(
    "-v", "--verbose", is_flag=True, help="Show Ray's and Tune's output here, not in a log file."
)
def run(spec: str, storage: str | None, name: str | None, verbose: bool) -> None:
    """Run a sweep (default: the built-in quickstart, on an embedded Ray, on CPU).

    Connects to the cluster in RAY_ADDRESS when set (and prints its dashboard address). Run
    it again after any crash: it resumes, and finished work is never redone. Cells log to
    the spec's experiment trackers (default: MLflow, under the sweep); Ray's and Tune's own
    output goes to a log file under the sweep unless -v.
    """
    from orchestrator.driver import run_sweep
    from orchestrator.stopping import Stopped

    try:
        result = run_sweep(_load(spec, storage, name), verbose=verbose)
    except Stopped as stop:
        click.echo(
            f"xstilts: stopped by {stop}; what was done is kept, resume with `xstilts run {spec}`",
            err=True,
        )
        sys.exit(stop.exit_code)
    click.echo(
        f"{len(result.done)} cells done, {len(result.failed)} failed, "
        f"{len(result.unfinished)} unfinished"
    )
    for label, cause in result.failed.items():
        click.echo(f"failed: {label}: {cause}", err=True)
    if result.exit_code:
        sys.exit(result.exit_code)


@cli.command()
@click.argument("spec", default="quickstart")
@STORAGE
@NAME
def status(spec: str, storage: str | None, name: str | None) -> None:
    """Each cell's state: pending, running (phase, target task), done, failed (cause)."""
    from orchestrator.status_view import show_status

    show_status(_load(spec, storage, name))


@cli.command()
@click.argument("spec", default="quickstart")
@STORAGE
@NAME
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "parquet"]), default="table")
@click.option("--where", multiple=True, help="COLUMN=VALUE filter; repeat to combine.")
@click.option("--out", type=click.Path(path_type=Path), help="Write CSV/Parquet here.")
def results(
    spec: str,
    storage: str | None,
    name: str | None,
    fmt: str,
    where: tuple[str, ...],
    out: Path | None,
) -> None:
    """Print or export the deduplicated per-language rows of a sweep."""
    from orchestrator.status_view import show_results

    show_results(_load(spec, storage, name), fmt, where, out)


@cli.command()
@click.argument("spec", default="quickstart")
@STORAGE
@NAME
@click.option("--out", type=click.Path(path_type=Path), help="Report folder (default: in storage).")
def report(spec: str, storage: str | None, name: str | None, out: Path | None) -> None:
    """Answer the question from the results store: tables, plots, intervals."""
    from orchestrator.reporting import make_report

    if out is not None and out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    make_report(_load(spec, storage, name), out)


@cli.command()
@click.option("--role", type=click.Choice(["target", "intermediate"]), help="Only this role.")
@click.option(
    "--files",
    "files_of",
    metavar="TASK",
    help="List the files a local mirror holds for TASK (relative to data.local_dir).",
)
def tasks(role: str | None, files_of: str | None) -> None:
    """List the task registry: name, format, languages, metric, version."""
    if files_of is not None:
        from evaluation.data.needs import file_lines
        from evaluation.tasks import get_task

        for line in file_lines(get_task(files_of)):
            click.echo(line)
        return
    from orchestrator.tables import show_tasks

    show_tasks(role)


@cli.command()
@click.option("--predictions", type=click.Path(path_type=Path), required=True)
@click.option("--labels", type=click.Path(path_type=Path), required=True)
@click.option("--tasks", "task_list", help="Comma-separated tasks to score (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def score(predictions: Path, labels: Path, task_list: str | None, as_json: bool) -> None:
    """Score XTREME-format prediction files (<dir>/<task>/test-<lang>.<ext>) officially."""
    from evaluation.score import run

    chosen = [t.strip() for t in task_list.split(",") if t.strip()] if task_list else None
    run(predictions, labels, chosen, as_json)


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--seed", default=0, show_default=True, help="Generator seed.")
@click.option(
    "--examples",
    default=200,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Examples per split.",
)
def fixtures(directory: Path, seed: int, examples: int) -> None:
    """Write schema-exact synthetic local data for every task into DIRECTORY."""
    from rich.console import Console

    from evaluation.data.fixtures import write_fixtures

    console = Console(stderr=True)
    with console.status("writing fixtures") as status:
        root = write_fixtures(
            directory, seed=seed, n_per_split=examples, progress=lambda m: status.update(m)
        )
    click.echo(f"fixtures written to {root}")


def main() -> None:
    try:
        cli.main(prog_name="xstilts", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except UserError as exc:
        from storage.files import redact

        for line in redact(str(exc)).splitlines() or ["(no message)"]:
            click.echo(f"xstilts: error: {line}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
