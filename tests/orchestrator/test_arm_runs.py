"""Arms and stages through `xstilts run`: an equal-size arm (`mnli@n=32`) and a mixture
(`mnli+qqp`) each make their own cell, named by the arm in every row, train phase 2 on the
data the arm says, and XCOPA trains SIQA before COPA on fixtures (the XTREME-R protocol):
without the stage the same cell has another key and other numbers.

How much phase 2 trained on is read back from MLflow's store, independently of the trainer:
one epoch at batch 8 is one logged loss per step, so ceil(examples / 8) steps."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest
import sweeps

pytestmark = pytest.mark.integration

N_TRAIN = 48  # training examples per task in the module's fixtures (`fixtures`)
BATCH = 8


def test_arms_and_stages_run_end_to_end(tmp_path: Path, fixtures: Path) -> None:
    spec = sweeps.write_spec(
        tmp_path / "arms.yaml", str(tmp_path / "runs"), fixtures,
        intermediate_tasks=["mnli@n=32", "mnli+qqp"], target_tasks=["xcopa"],
        protocol="xtreme_r", languages={"xcopa": ["et", "sw"]},
        phase2=sweeps.one_epoch_phase2(BATCH),
    )  # fmt: skip
    done = sweeps.run(spec, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "runs" / "mini"

    keys, languages = sweeps.arm_rows(sweep)
    assert set(keys) == {"mnli@n=32", "mnli+qqp"}
    assert len(set(keys.values())) == 2
    assert languages == {"et", "sw"}

    # n=32 trains on 32 MNLI examples; the mixture on all of MNLI's and QQP's together.
    assert sweeps.phase2_steps(sweep) == {
        "mnli@n=32": math.ceil(32 / BATCH),
        "mnli+qqp": math.ceil(2 * N_TRAIN / BATCH),
    }
    # XTREME-R's XCOPA: SIQA is trained first. Without the stage (`stages: {xcopa: []}`) the
    # same phase 2 gives another target key and other numbers.
    plain = sweeps.write_spec(
        tmp_path / "plain.yaml", str(tmp_path / "runs"), fixtures, name="plain",
        intermediate_tasks=["mnli@n=32"], target_tasks=["xcopa"], protocol="xtreme_r",
        languages={"xcopa": ["et", "sw"]}, phase2=sweeps.one_epoch_phase2(BATCH),
        phase3={**sweeps.MINI["phase3"], "stages": {"xcopa": []}},
    )  # fmt: skip
    done = sweeps.run(plain, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert values(tmp_path / "runs" / "plain", "mnli@n=32") != values(sweep, "mnli@n=32")


def values(sweep: Path, arm: str) -> dict[tuple[str, str], tuple[str, float]]:
    """(language, metric) -> (trial key, value) of `arm`'s rows."""
    rows = duckdb.sql(
        f"select language, metric, trial_key, value "
        f"from read_parquet('{sweep}/results/**/*.parquet') where intermediate_task = '{arm}'"
    ).fetchall()
    return {(lang, metric): (key, value) for lang, metric, key, value in rows}
