"""Recipes as named, cited data; per-model hyperparameters; intermediate-task arms."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from evaluation.data.multitask import PHANG_TASKS
from orchestrator.arms import parse_arm, parse_intermediate
from orchestrator.cli import cli
from orchestrator.grid import expand, phase2_tasks, result_config
from orchestrator.jobs import build_jobs
from orchestrator.plan import recipe_rows
from orchestrator.spec import SweepSpec, load_spec
from storage.layout import SweepLayout
from trainers.hparams import EVAL_AT_END

# Phang et al. 2020's values, read off jiant (nyu-mll/jiant at daa5a258) by hand: (value,
# file:line). Phase 2 is the guide's command (guides/projects/xstilts.md:20-29, batch 4) over
# proj/simple/runscript.py's defaults; phase 3 jiant's XTREME scripts.
S = "scripts/benchmarks/xtreme/subscripts/"
PHASE2 = {
    "lr": (1e-5, "proj/simple/runscript.py:59"),
    "epochs": (3.0, "proj/simple/runscript.py:40"),
    "batch_size": (4, "guides/projects/xstilts.md:27"),
    "grad_accum": (1, "proj/main/scripts/configurator.py:252"),
    "warmup_ratio": (0.1, "proj/main/scripts/configurator.py:258"),
    "max_seq_length": (256, "proj/simple/runscript.py:39"),
    "eval_every": (EVAL_AT_END, "proj/simple/runscript.py:50"),
    "patience": (0, "proj/simple/runscript.py:53"),
    "weight_decay": (0.01, "shared/model_setup.py:85"),
    "max_grad_norm": (1.0, "proj/simple/runscript.py:61"),
    "mix_cap": (None, "proj/main/scripts/configurator.py:399-404"),
}
PHASE3_COMMON = {
    "lr": (1e-5, S + "e_run_models.sh:15"),
    "warmup_ratio": (0.1, "xtreme_runconfig_writer.py:44"),
    "eval_every": (1000, S + "e_run_models.sh:16"),
    "patience": (30, S + "e_run_models.sh:17"),
    "weight_decay": (0.01, "shared/model_setup.py:85"),
    "max_grad_norm": (1.0, "proj/main/runscript.py:48"),
}
# task: (d_write_configs.sh line, epochs, batch, accumulation), (max length, its line in
# c_tokenize_and_cache.sh)
PHASE3 = {
    "xnli": ((15, 2.0, 4, 8), (256, 16)),
    "pawsx": ((23, 5.0, 4, 8), (256, 16)),
    "udpos": ((31, 10.0, 4, 8), (256, 16)),
    "panx": ((39, 10.0, 4, 8), (256, 16)),
    "xquad": ((47, 2.0, 4, 4), (384, 98)),
    "mlqa": ((55, 2.0, 4, 4), (384, 98)),
    "tydiqa": ((63, 2.0, 4, 4), (384, 98)),
}


def check(cited: dict, name: str, value: object, where: str) -> None:
    assert cited[name].value == value, name
    assert cited[name].source.startswith("jiant:") and cited[name].source.endswith(where), name


def test_phang2020_carries_jiants_cited_values() -> None:
    spec = load_spec("phang2020")
    assert (spec.recipe, spec.protocol, spec.models) == ("jiant", "xtreme", ["xlmr-large"])
    for task in {t for i in spec.intermediate_tasks for t in phase2_tasks(i)}:
        cited = spec.hparam_sources("phase2", task, "xlmr-large")
        for name, (value, where) in PHASE2.items():
            check(cited, name, value, where)
    for task, ((line, epochs, batch, accum), (length, length_line)) in PHASE3.items():
        cited = spec.hparam_sources("phase3", task, "xlmr-large")
        for name, (value, where) in PHASE3_COMMON.items():
            check(cited, name, value, where)
        for name, value in (("epochs", epochs), ("batch_size", batch), ("grad_accum", accum)):
            check(cited, name, value, f"{S}d_write_configs.sh:{line}")
        check(cited, "max_seq_length", length, f"{S}c_tokenize_and_cache.sh:{length_line}")
    for task, line in (("bucc2018", 142), ("tatoeba", 153)):  # the length retrieval embeds
        check(spec.hparam_sources("phase3", task), "max_seq_length", 512, f"cache.sh:{line}")
    assert spec.data.max_examples.dev == 500  # eval_subset_num (configurator.py:253)


def test_plan_cells_shows_each_tasks_recipe_with_its_source() -> None:
    rows = {(r.phase, r.task, r.name): r for r in recipe_rows(load_spec("phang2020"))}
    assert rows[("phase3", "xnli", "epochs")].value == 2.0
    assert rows[("phase3", "xnli", "epochs")].source.endswith("d_write_configs.sh:15")
    assert rows[("phase3", "tatoeba (encoder only)", "max_seq_length")].value == 512
    out = CliRunner().invoke(cli, ["plan", "phang2020", "--cells"], env={"COLUMNS": "250"})
    assert out.exit_code == 0, out.output
    assert "d_write_configs.sh:23" in out.output and "at the end" in out.output


def test_stages_show_in_the_recipe_and_scalings_per_model_values() -> None:
    rows = recipe_rows(load_spec("scaling"))
    siqa = {(r.model, r.name): r for r in rows if r.task == "siqa (before xcopa)"}
    assert siqa[("", "lr")].value == 3e-5 and siqa[("xlmr-base", "lr")].value == 2e-5
    assert siqa[("xlmr-base", "lr")].source == "spec phase3.by_model.xlmr-base.overrides.siqa"
    assert ("xlmr-xxl", "lr") not in siqa  # XL and XXL keep Large's values


# --- per-model hyperparameters ---------------------------------------------------------------


def quickstart(**changes: object) -> SweepSpec:
    raw = load_spec("quickstart").model_dump()
    for key, value in changes.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) else value
    return SweepSpec.model_validate(raw)


def keys(spec: SweepSpec) -> dict[str, tuple[str, str, dict[str, str]]]:
    return {c.label: (c.phase2_key, c.trial_key, c.target_keys) for c in expand(spec)}


def test_by_model_changes_the_keys_of_the_models_it_changes_only() -> None:
    none = {"by_model": {}}  # the quickstart's own per-model learning rates left out
    base = keys(quickstart(phase2=none, phase3=none))
    spec = quickstart(
        phase2=none, phase3={"by_model": {"tiny-s": {"overrides": {"xnli": {"lr": 5e-4}}}}}
    )
    new = keys(spec)
    for label, (p2, trial, targets) in new.items():
        if label.startswith("tiny-s/"):
            assert p2 == base[label][0] and trial != base[label][1]
            assert targets["xnli"] != base[label][2]["xnli"]
            assert targets["udpos"] == base[label][2]["udpos"]  # other tasks' work stays
        else:
            assert (p2, trial, targets) == base[label]
    p2 = quickstart(phase2={"by_model": {"tiny-m": {"defaults": {"lr": 5e-4}}}}, phase3=none)
    changed = {k for k, v in keys(p2).items() if v[0] != base[k][0]}
    assert changed == {k for k in base if k.startswith("tiny-m/") and "/none/" not in k}
    assert "by_model" not in result_config(quickstart(phase2=none, phase3=none))
    assert result_config(p2)["by_model"]["tiny-m"]["phase2"]["mnli"]["lr"] == 5e-4
    own = result_config(load_spec("quickstart"))["by_model"]  # higher lr for smaller sizes
    assert own["tiny-s"]["phase2"]["mnli"]["lr"] == 3e-3
    assert "tiny-l" not in own  # tiny-l keeps the defaults


def test_precedence_recipe_defaults_override_model_defaults_model_override() -> None:
    spec = quickstart(
        phase3={
            "defaults": {"lr": 1e-3, "epochs": 4},
            "overrides": {"xnli": {"lr": 2e-3, "batch_size": 8}},
            "by_model": {
                "tiny-s": {
                    "defaults": {"lr": 3e-3, "epochs": 5},
                    "overrides": {"xnli": {"lr": 4e-3}},
                }
            },
        }
    )
    hp = spec.hparams("phase3", "xnli", "tiny-s")
    assert (hp.lr, hp.epochs, hp.batch_size, hp.weight_decay) == (4e-3, 5.0, 8, 0.01)
    other = spec.hparams("phase3", "xnli", "tiny-m")
    assert (other.lr, other.epochs, other.batch_size) == (2e-3, 4.0, 8)
    assert spec.hparams("phase3", "udpos", "tiny-s").lr == 3e-3
    jobs = build_jobs(spec, SweepLayout.of("/tmp/x", spec.name), expand(spec))
    by_model = {j.config.model.name: j.config.phase3_hparams["xnli"].lr for j in jobs.values()}
    assert by_model == {"tiny-s": 4e-3, "tiny-m": 2e-3, "tiny-l": 2e-3}


# --- arms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "task", "size"),
    [("mnli", "mnli", None), ("mnli@n=2000", "mnli", 2000), ("multitask@n=64", "multitask", 64)],
)
def test_arm_names_parse_to_their_task_and_size(text: str, task: str, size: int | None) -> None:
    arm = parse_arm(text)
    assert (arm.task, arm.train_size, arm.name) == (task, size, text)


@pytest.mark.parametrize(
    ("text", "tasks", "sizes"),
    [
        ("mnli+qqp", ("mnli", "qqp"), {}),
        ("mnli@n=64+qqp", ("mnli", "qqp"), {"mnli": 64}),
        ("multitask@n=8", PHANG_TASKS, dict.fromkeys(PHANG_TASKS, 8)),
    ],
)
def test_a_mixture_trains_each_arms_tasks_with_its_own_modifiers(
    text: str, tasks: tuple[str, ...], sizes: dict[str, int]
) -> None:
    mix = parse_intermediate(text)
    assert (mix.name, mix.tasks, mix.train_sizes()) == (text, tasks, sizes)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("qqp+mnli", "write this mixture as 'mnli+qqp'"),
        ("mnli+none", "mixes with nothing"),
        ("mnli+multitask", "mnli is in two arms"),
        ("mnli+", "starts with its task's name"),
        ("mnli@n=0+qqp", "positive integer"),
    ],
)
def test_a_malformed_mixture_is_one_line(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_intermediate(text)


def test_uncapped_mixing_is_settable_in_a_spec_and_enters_the_keys() -> None:
    spec = quickstart(phase2={"defaults": {**load_spec("quickstart").phase2.defaults.model_dump(),
                                           "mix_cap": "uncapped"}})  # fmt: skip
    assert spec.hparams("phase2", "mnli").mix_cap is None
    assert spec.hparam_sources("phase2", "mnli")["mix_cap"].source == "spec phase2.defaults"
    base, uncapped = keys(load_spec("quickstart")), keys(spec)
    for label, (p2, _, _) in uncapped.items():
        assert (p2 == base[label][0]) == ("/none/" in label)


def test_an_equal_size_arm_is_its_own_cell_with_every_task_at_n() -> None:
    spec = quickstart(intermediate_tasks=["none", "mnli", "mnli@n=64", "multitask@n=64"])
    cells = {c.label: c for c in expand(spec)}
    assert cells["tiny-s/mnli@n=64/0"].phase2_key != cells["tiny-s/mnli/0"].phase2_key
    jobs = build_jobs(spec, SweepLayout.of("/tmp/x", spec.name), list(cells.values()))
    by_task = {j.config.intermediate_task: j.config for j in jobs.values()}
    assert by_task["mnli@n=64"].phase2_tasks == ("mnli",)
    assert dict(by_task["mnli@n=64"].data.train_sizes) == {"mnli": 64}
    assert set(by_task["multitask@n=64"].data.train_sizes.values()) == {64}
    assert len(by_task["multitask@n=64"].data.train_sizes) == 9
    assert not by_task["mnli"].data.train_sizes


def test_a_per_task_cap_enters_the_keys_of_the_cells_that_train_that_task() -> None:
    base = keys(load_spec("quickstart"))
    capped = keys(quickstart(data={"max_examples": {"train": 512, "dev": 48, "eval": 48,
                                                    "tasks": {"mnli": 100}}}))  # fmt: skip
    for label, (p2, _, _) in capped.items():
        assert (p2 == base[label][0]) == ("/none/" in label)  # mnli and multitask train mnli


def test_jiants_multitask_mix_is_proportional_to_size_and_reaches_the_sampler() -> None:
    from evaluation.tasks import get_task
    from trainers.loop import TaskData, TrainSpec, multitask_sampler

    run = TrainSpec.from_hparams(load_spec("phang2020").hparams("phase2", "mnli"), seed=0)
    capped = TrainSpec.from_hparams(load_spec("quickstart").hparams("phase2", "mnli"), seed=0)
    assert (run.mix_cap, capped.mix_cap) == (None, 2**14)
    sizes = {"mnli": 30_000, "qqp": 10_000}
    tasks = {t: TaskData(get_task(t), [None] * n, [], None) for t, n in sizes.items()}
    assert multitask_sampler(tasks, 0, run.mix_cap).probabilities() == {"mnli": 0.75, "qqp": 0.25}
    flat = multitask_sampler(tasks, 0, capped.mix_cap).probabilities()
    assert flat["mnli"] == pytest.approx(16384 / 26384)
