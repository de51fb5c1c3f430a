"""The sweep record (`sweep.json`): data identity and a lost record under results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.guard import check_or_record
from orchestrator.spec import SweepSpec, validate
from storage.errors import UserError
from storage.layout import SweepLayout

BASE = {
    "name": "g",
    "models": ["tiny-s"],
    "intermediate_tasks": ["none"],
    "target_tasks": ["xnli"],
    "seeds": [0],
}


def spec(tmp: Path, data_dir: str = "data") -> SweepSpec:
    data = {"source": "fixtures", "local_dir": str(tmp / data_dir)}
    return validate({**BASE, "storage": str(tmp / "runs"), "data": data})


def record(tmp: Path) -> dict:
    return json.loads((tmp / "runs" / "g" / "sweep.json").read_text())["config"]


def test_the_record_names_where_the_data_is(tmp_path: Path) -> None:
    s = spec(tmp_path)
    check_or_record(SweepLayout.of(s.storage, s.name), s)
    assert record(tmp_path)["data_paths"] == {"local_dir": str(tmp_path / "data")}
    check_or_record(SweepLayout.of(s.storage, s.name), s)  # the same spec: accepted


def test_other_data_under_the_same_name_is_refused(tmp_path: Path) -> None:
    s = spec(tmp_path)
    check_or_record(SweepLayout.of(s.storage, s.name), s)
    other = spec(tmp_path, "elsewhere")
    with pytest.raises(UserError, match=r"changed: data_paths\.local_dir"):
        check_or_record(SweepLayout.of(other.storage, other.name), other)


def test_a_record_older_than_data_paths_is_extended_not_refused(tmp_path: Path) -> None:
    s = spec(tmp_path)
    layout = SweepLayout.of(s.storage, s.name)
    check_or_record(layout, s)
    path = tmp_path / "runs" / "g" / "sweep.json"
    old = json.loads(path.read_text())
    del old["config"]["data_paths"]
    path.write_text(json.dumps(old))
    check_or_record(layout, s)
    assert "data_paths" in record(tmp_path)


@pytest.mark.parametrize("what", ["results", "ledger"])
def test_a_lost_record_under_results_is_refused(tmp_path: Path, what: str) -> None:
    s = spec(tmp_path)
    layout = SweepLayout.of(s.storage, s.name)
    check_or_record(layout, s)
    sweep = tmp_path / "runs" / "g"
    (sweep / what).mkdir(parents=True)
    (sweep / what / "something").write_text("x")
    (sweep / "sweep.json").unlink()
    with pytest.raises(UserError, match=f"sweep.json is missing but the sweep already has {what}"):
        check_or_record(layout, s)
    assert not (sweep / "sweep.json").exists()


def test_a_lost_record_of_an_empty_sweep_is_recorded_again(tmp_path: Path) -> None:
    s = spec(tmp_path)
    layout = SweepLayout.of(s.storage, s.name)
    check_or_record(layout, s)
    (tmp_path / "runs" / "g" / "sweep.json").unlink()
    check_or_record(layout, s)
    assert (tmp_path / "runs" / "g" / "sweep.json").exists()
