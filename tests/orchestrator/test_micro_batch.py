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
