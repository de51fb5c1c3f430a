"""The MLM continuation arm end to end: `xstilts run` on fixtures trains `mlm` (continued MLM
on the fixture tree's multilingual corpus) and `mnli+mlm` (MNLI and MLM on one encoder,
mixed), writes rows whose `intermediate_task` names each arm, under keys that differ from
each other's and from plain `mnli`'s; the corpus' settings and text are in the phase-2 key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sweeps
import yaml

from orchestrator.grid import expand
from orchestrator.spec import load_spec
from storage.results import ResultsStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~40 s

FAST = {"lr": 1.0e-3, "max_steps": 4, "batch_size": 8, "grad_accum": 1, "max_seq_length": 32,
        "eval_every": 2, "patience": 0}  # fmt: skip


def _spec(tmp: Path, fixtures: Path, arms: tuple[str, ...] = ("mlm", "mnli+mlm"),
          **corpus: object) -> Path:  # fmt: skip
    path = sweeps.write_spec(
        tmp / f"spec-{len(list(tmp.glob('spec-*')))}.yaml",
        str(tmp / "runs"),
        fixtures,
        name="arm-mlm",
        intermediate_tasks=list(arms),
        target_tasks=["xnli"],
        languages={"xnli": ["en", "de"]},
        phase2={"defaults": FAST},
        phase3={"defaults": FAST},
    )
    if "mlm" in "".join(arms):
        raw = yaml.safe_load(path.read_text())
        raw["data"]["mlm_corpus"] = {"local_dir": str(fixtures / "mlm_corpus"), "max_lines": 40,
                                     "dev_lines": 4, **corpus}  # fmt: skip
        path.write_text(yaml.safe_dump(raw))
    return path


def _phase2_keys(spec: Path, extra: list[str] | None = None) -> dict[str, str]:
    parsed = load_spec(str(spec))
    if extra:
        parsed = parsed.model_copy(
            update={"intermediate_tasks": [*parsed.intermediate_tasks, *extra]}
        )
    return {c.intermediate_task: c.phase2_key for c in expand(parsed)}


def test_mlm_arms_run_end_to_end(tmp_path: Path, fixtures: Path) -> None:
    spec = _spec(tmp_path, fixtures)
    done = sweeps.run(spec, tmp_path, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = ResultsStore(str(tmp_path / "runs"), "arm-mlm").read().to_pylist()
    by_arm = {r["intermediate_task"]: r["trial_key"] for r in rows}
    assert set(by_arm) == {"mlm", "mnli+mlm"}
    assert {(r["intermediate_task"], r["language"]) for r in rows} == {
        (arm, lang) for arm in by_arm for lang in ("en", "de")
    }
    assert {r["data_source"] for r in rows} == {"fixtures"}
    keys = {c.intermediate_task: c for c in expand(load_spec(str(spec)))}
    assert {arm: keys[arm].target_keys["xnli"] for arm in by_arm} == by_arm  # rows: per target
    with_mnli = _phase2_keys(spec, ["mnli"])
    assert len(set(with_mnli.values())) == 3  # mlm, mnli+mlm and mnli: three phase-2 models

    # The corpus is in the phase-2 key: its sampling, its languages, its text.
    base = _phase2_keys(spec)
    assert _phase2_keys(_spec(tmp_path, fixtures, alpha=0.7))["mlm"] != base["mlm"]
    fewer = _spec(tmp_path, fixtures, languages=["de", "en"])
    assert _phase2_keys(fewer)["mnli+mlm"] != base["mnli+mlm"]
    copy = tmp_path / "corpus-copy"
    shutil.copytree(fixtures / "mlm_corpus", copy)
    same = _spec(tmp_path, fixtures, local_dir=str(copy))
    assert _phase2_keys(same) == base  # where the text lies is not what it is
    with (copy / "de.txt").open("a", encoding="utf-8") as f:
        f.write("one more line\n")
    assert _phase2_keys(same)["mlm"] != base["mlm"]
    # Beside an `mlm` arm, plain `mnli` keeps the key it has in a sweep without one.
    assert _phase2_keys(_spec(tmp_path, fixtures, arms=("mnli",))) == {"mnli": with_mnli["mnli"]}
