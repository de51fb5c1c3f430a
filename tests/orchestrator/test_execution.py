"""A spec's `execution.<model>` settings: validated, carried to the cell, keyed by precision."""

from __future__ import annotations

import pytest

from orchestrator.grid import expand, result_config
from orchestrator.jobs import build_jobs
from orchestrator.spec import SpecError, SweepSpec, load_spec, validate
from storage.layout import SweepLayout
from trainers.ladder import Execution


def spec_with(name: str = "quickstart", **changes: object) -> SweepSpec:
    raw = load_spec(name).model_dump()
    raw.update(changes)
    return SweepSpec.model_validate(raw)


def keys(spec: SweepSpec) -> dict[str, str]:
    return {c.label: c.trial_key for c in expand(spec)}


def test_settings_reach_the_cell_over_the_ladders() -> None:
    spec = spec_with(execution={"tiny-m": {"compile": True, "attention": "eager"}})
    jobs = build_jobs(spec, SweepLayout.of("/tmp/x", spec.name), expand(spec))
    by_model = {j.config.model.name: j.config.model.execution for j in jobs.values()}
    assert by_model["tiny-m"] == Execution(compile=True, attention="eager")  # fp32: the ladder's
    assert by_model["tiny-s"] == Execution()


def test_kernels_and_compile_keep_the_keys() -> None:
    """They compute the same numbers (to reduction noise): no key changes."""
    base = keys(load_spec("quickstart"))
    same = {"compile": True, "attention": "eager", "fused_optimizer": False}
    assert keys(spec_with(execution={"tiny-s": same})) == base
    assert keys(spec_with(execution={"tiny-s": {"precision": "fp32"}})) == base  # the ladder's


def test_precision_other_than_the_ladders_changes_that_models_keys() -> None:
    base = keys(load_spec("quickstart"))
    changed = keys(spec_with(execution={"tiny-s": {"precision": "bf16"}}))
    moved = {label for label in base if changed[label] != base[label]}
    assert moved == {label for label in base if label.startswith("tiny-s/")}
    config = result_config(spec_with(execution={"tiny-s": {"precision": "bf16"}}))
    assert config["models"]["tiny-s"]["precision"] == "bf16"
    assert "precision" not in config["models"]["tiny-m"]


def test_hub_models_default_to_bf16() -> None:
    base = keys(load_spec("scaling"))
    assert keys(spec_with("scaling", execution={"xlmr-xl": {"precision": "bf16"}})) == base
    fp32 = keys(spec_with("scaling", execution={"xlmr-xl": {"precision": "fp32"}}))
    assert {label for label in base if fp32[label] != base[label]} == {
        label for label in base if label.startswith("xlmr-xl/")
    }


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        ({"tiny-x": {"compile": True}}, "execution.tiny-x: model 'tiny-x' is not in models"),
        ({"tiny-s": {"precision": "fp16"}}, "execution.tiny-s.precision: Input should be"),
        ({"tiny-s": {"attention": "flash"}}, "execution.tiny-s.attention: Input should be"),
        ({"tiny-s": {"compiled": True}}, "execution.tiny-s.compiled: unknown field"),
    ],
)
def test_bad_settings_name_their_field(execution: dict, message: str) -> None:
    raw = load_spec("quickstart").model_dump()
    raw["execution"] = execution
    with pytest.raises(SpecError) as err:
        validate(raw)
    assert any(message in p for p in err.value.problems), err.value.problems
