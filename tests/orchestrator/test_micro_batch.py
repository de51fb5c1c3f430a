"""`micro_batch_size`: the one batch setting resources might have wanted to change. It enters
a cell's key only where it differs from `batch_size` (specs that never set it keep their
keys), and the sweep guard refuses a changed value under an existing sweep name."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.grid import expand
from orchestrator.guard import check_or_record
from orchestrator.spec import SweepSpec, load_spec
from storage.errors import UserError
from storage.layout import SweepLayout


def quickstart(storage: str = "./runs", **phase2: object) -> SweepSpec:
    raw = load_spec("quickstart").model_dump()
    raw["storage"] = storage
    raw["phase2"]["defaults"].update(phase2)
    return SweepSpec.model_validate(raw)


def keys(spec: SweepSpec) -> dict[str, str]:
    return {c.label: c.trial_key for c in expand(spec)}


def test_micro_batch_size_enters_the_key_only_where_it_is_not_batch_size() -> None:
    base = keys(quickstart())
    assert keys(quickstart(micro_batch_size=16)) == base  # quickstart's batch_size
    smaller = keys(quickstart(micro_batch_size=4))
    assert all(smaller[c] != base[c] for c in base if c.split("/")[1] != "none")
    assert all(smaller[c] == base[c] for c in base if c.split("/")[1] == "none")  # no phase 2


def test_a_micro_batch_size_that_does_not_divide_the_batch_is_refused() -> None:
    with pytest.raises(UserError, match=r"^micro_batch_size 5 does not divide batch_size 16$"):
        expand(quickstart(micro_batch_size=5))


def test_the_guard_refuses_another_micro_batch_size_under_the_same_name(tmp_path: Path) -> None:
    first = quickstart(str(tmp_path))
    check_or_record(SweepLayout.of(first.storage, first.name), first)
    same = quickstart(str(tmp_path), micro_batch_size=16)
    check_or_record(SweepLayout.of(same.storage, same.name), same)  # the default spelled out
    other = quickstart(str(tmp_path), micro_batch_size=8)
    with pytest.raises(UserError, match=r"changed: .*phase2\.mnli\.micro_batch_size"):
        check_or_record(SweepLayout.of(other.storage, other.name), other)


# --- every step of a built-in spec splits among its models' workers ------------------------


@pytest.mark.parametrize("name", ["scaling", "phang2020"])
def test_builtin_specs_split_every_step_among_their_workers(name: str, capsys) -> None:
    from orchestrator.cli import cli
    from orchestrator.splits import split_problems

    assert split_problems(load_spec(name)) == []
    cli.main(["validate", name], standalone_mode=False)
    assert f"{name}: ok" in capsys.readouterr().out


def test_scaling_without_its_split_settings_is_refused_line_by_line() -> None:
    """Hand arithmetic: jiant's phase-2 step is 1 micro-batch of 4 (batch 4, grad_accum 1),
    which neither XL's 4 nor the ladder's 8 XXL workers divide (9 tasks each); the QA tasks'
    4 x 4 steps make 4 micro-batches, which 8 workers do not divide (3 tasks)."""
    from orchestrator.splits import split_problems

    raw = load_spec("scaling").model_dump()
    raw["phase2"]["by_model"] = {}
    raw["resources"]["xlmr-xxl"] = {"trial_resource": "on_demand"}  # the ladder's 8 workers
    problems = split_problems(SweepSpec.model_validate(raw))
    phase2 = [p for p in problems if p.startswith("phase2: ")]
    assert len(phase2) == 18 and all("1 micro-batches of 4 per step" in p for p in phase2)
    assert sum("across 4 workers of model xlmr-xl;" in p for p in phase2) == 9
    assert sorted(p for p in problems if p.startswith("phase3: ")) == [
        f"phase3: task {t}: 4 micro-batches of 4 per step (grad_accum 4 x batch_size 4 / "
        f"micro_batch_size) do not split across 8 workers of model xlmr-xxl; set "
        "micro_batch_size (it enters the cell key) or grad_accum"
        for t in ("mlqa", "tydiqa", "xquad")
    ]
