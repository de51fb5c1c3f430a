"""Small rich tables shared by the commands."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from evaluation.tasks import Role, all_tasks


def show_tasks(role: str | None) -> None:
    table = Table(title="xstilts task registry")
    for col in ("name", "role", "format", "languages", "metric", "version"):
        table.add_column(col)
    for t in all_tasks(Role(role) if role else None):
        langs = " ".join(t.languages)
        table.add_row(
            t.name,
            t.role.value,
            t.format.value,
            f"{len(t.languages)}: {langs}",
            f"{t.headline} ({', '.join(t.metrics)})",
            str(t.version),
        )
    Console().print(table)
