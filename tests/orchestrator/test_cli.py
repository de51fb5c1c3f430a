"""The CLI as a user runs it: exit codes, one-line errors, fast start, --help everywhere."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

XSTILTS = str(Path(sys.executable).with_name("xstilts"))
COMMANDS = ["run", "plan", "status", "results", "report", "score", "validate", "tasks", "fixtures"]


def xstilts(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([XSTILTS, *args], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    out = xstilts(command, "--help")
    assert out.returncode == 0, out.stderr
    assert "Usage: xstilts" in out.stdout


def test_validate_builtin_ok() -> None:
    out = xstilts("validate", "quickstart")
    assert out.returncode == 0 and "18 cells" in out.stdout


def test_validate_bad_spec_lists_every_problem_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: ok\nstorage: /tmp/x\nmodels: [tiny-s]\nintermediate_tasks: [none]\n"
        "target_tasks: [xnli, udpos, xnlii]\nseeds: [0]\nsede: 1\n"
    )
    out = xstilts("validate", str(spec))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert any("target_tasks[2]: unknown task 'xnlii' — did you mean 'xnli'?" in ln for ln in lines)
    assert any("sede: unknown field — did you mean 'seeds'?" in ln for ln in lines)


def test_missing_spec_is_one_line_exit_2() -> None:
    out = xstilts("plan", "no-such-spec.yaml")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_plan_phang2020_counts_trainings() -> None:
    out = xstilts("plan", "phang2020")
    assert out.returncode == 0, out.stderr
    # Nine intermediate tasks + multitask train phase 2 once per (model, seed); none does not.
    assert "phase-2 trainings: 10 " in out.stdout
    # Seven of the nine XTREME targets train (Tatoeba and BUCC use the phase-2 encoder).
    assert "phase-3 trainings: 77" in out.stdout
    assert re.search(r"estimated GPU-hours: [\d,.]+", out.stdout)


def test_plan_cells_lists_every_trial_key() -> None:
    out = xstilts("plan", "quickstart", "--cells")
    assert out.returncode == 0
    assert len(re.findall(r"\b[0-9a-f]{16}\b", out.stdout)) == 18


def test_light_commands_do_not_import_torch_or_ray() -> None:
    code = (
        "import sys; from orchestrator.cli import cli;"
        "cli.main(['plan', 'scaling'], standalone_mode=False);"
        "cli.main(['validate', 'phang2020'], standalone_mode=False);"
        "heavy = {'torch', 'ray', 'transformers', 'datasets', 'deepspeed'} & set(sys.modules);"
        "print('HEAVY', sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout


def test_plan_shows_what_is_done_from_the_ledger(tmp_path: Path) -> None:
    from orchestrator.grid import expand
    from orchestrator.ledger import Ledger
    from orchestrator.spec import load_spec

    cell = expand(load_spec("quickstart"))[0]
    ledger = Ledger(str(tmp_path), "quickstart")
    ledger.mark_target_done(cell.trial_key, "xnli", "f.parquet")
    ledger.mark_target_done(cell.trial_key, "udpos", "g.parquet")
    out = xstilts("plan", "quickstart", "--storage", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "done: 2 of 72 (cell, target task) pairs" in out.stdout
