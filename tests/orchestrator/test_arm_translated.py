"""Translated and multilingual intermediate data through `xstilts run`: `mnli`,
`mnli@translate-train` and `mnli@langs[de,hi,sw]` are three cells, each named by its arm in
every row, and phase 2 of each trains on the data its arm says.

How much phase 2 trained on is read back from MLflow's store, independently of the trainer
(one epoch at batch 8: one logged loss per step, so ceil(examples / 8) steps); which
languages, from the cell's data settings as `xstilts run` builds them, read through the
fixtures (a translated row's id names its XNLI config)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
import sweeps

from evaluation.tasks import get_task
from orchestrator.jobs import cell_data, data_access
from orchestrator.spec import load_spec

pytestmark = pytest.mark.integration

ARMS = ["mnli", "mnli@translate-train", "mnli@langs[de,hi,sw]"]
N_TRAIN = 48  # training examples per split in the module's fixtures (`fixtures`)
CAP = sweeps.MINI["data"]["max_examples"]["train"]  # 96: caps each arm's pool
BATCH = 8
# XNLI's languages besides English (Conneau et al. 2018), in sorted order.
XNLI_OTHERS = "ar bg de el es fr hi ru sw th tr ur vi zh".split()


def language(example_id: str) -> str:
    return "en" if example_id.startswith("nyu-mll/glue/") else example_id.split("/")[2]


def test_translated_arms_run_end_to_end(tmp_path: Path, fixtures: Path) -> None:
    spec = sweeps.write_spec(
        tmp_path / "translated.yaml", str(tmp_path / "runs"), fixtures,
        intermediate_tasks=ARMS, target_tasks=["xnli"],
        languages={"xnli": ["en", "de", "sw"]}, phase2=sweeps.one_epoch_phase2(BATCH),
    )  # fmt: skip
    done = sweeps.run(spec, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "runs" / "mini"

    keys, languages = sweeps.arm_rows(sweep)
    assert set(keys) == set(ARMS)
    assert len(set(keys.values())) == len(ARMS)
    assert languages == {"en", "de", "sw"}

    # English MNLI has 48 examples; each language arm pools more, up to the data cap.
    assert sweeps.phase2_steps(sweep) == {
        "mnli": math.ceil(N_TRAIN / BATCH),
        "mnli@translate-train": math.ceil(CAP / BATCH),
        "mnli@langs[de,hi,sw]": math.ceil(CAP / BATCH),
    }

    # Which examples: the cells' data as `xstilts run` builds it, one language at a time.
    loaded = load_spec(str(spec))
    data, mnli = data_access(loaded), get_task("mnli")
    langs = {
        arm: Counter(language(ex.id) for ex in cell_data(loaded, data, arm).train(mnli))
        for arm in ARMS
    }
    assert langs["mnli"] == {"en": N_TRAIN}
    assert langs["mnli@langs[de,hi,sw]"] == {"de": CAP // 3, "hi": CAP // 3, "sw": CAP // 3}
    # 96 examples, one per language in turn: the first 96 - 6 * 14 languages get a 7th.
    extra = CAP - (CAP // 14) * 14
    assert langs["mnli@translate-train"] == {
        lang: CAP // 14 + (i < extra) for i, lang in enumerate(XNLI_OTHERS)
    }
