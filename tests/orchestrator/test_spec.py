"""SweepSpec validation: every problem at once, each naming its field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from orchestrator.spec import BUILTIN_SPECS, SpecError, load_spec, read_yaml, validate

GOOD = {
    "name": "demo",
    "storage": "/tmp/xstilts-demo",
    "models": ["tiny-s", "tiny-m"],
    "intermediate_tasks": ["none", "mnli", "multitask"],
    "target_tasks": ["xnli", "udpos"],
    "seeds": [0, 1],
    "data": {"source": "hub", "native_dir": "/data/native"},
}


def problems(raw: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        validate(raw)
    return info.value.problems


def with_(**changes: object) -> dict:
    raw = copy.deepcopy(GOOD)
    raw.update(changes)
    return raw


@pytest.mark.parametrize("name", BUILTIN_SPECS)
def test_builtin_specs_validate(name: str) -> None:
    spec = load_spec(name)
    assert spec.name == name


def test_good_spec_validates() -> None:
    assert validate(GOOD).models == ["tiny-s", "tiny-m"]


BAD = [
    (with_(target_tasks=["xnli", "udpos", "xnlii"]),
     "target_tasks[2]: unknown task 'xnlii' — did you mean 'xnli'?"),
    (with_(models=["tiny-z"]), "models[0]: unknown model 'tiny-z' — did you mean 'tiny-s'?"),
    (with_(name="../escape"), "name: '../escape' is not a valid sweep name"),
    (with_(name="UPPER"), "name: 'UPPER' is not a valid sweep name"),
    (with_(seed=3), "seed: unknown field — did you mean 'seeds'?"),
    (with_(seeds=[0, -1]), "seeds[1]: seed -1 is negative"),
    (with_(seeds=["one"]), "seeds[0]: Input should be a valid integer, got 'one'"),
    (with_(storage="http://bucket/x"), "storage: storage scheme 'http':// is not supported"),
    (with_(phase2={"defaults": {"lr": -1.0}}),
     "phase2.defaults.lr: Input should be greater than 0, got -1.0"),
    (with_(data={"source": "local"}), "data: source 'local' needs local_dir"),
    (with_(data={"source": "ftp"}),
     "data.source: Input should be 'hub', 'local' or 'fixtures', got 'ftp'"),
    (with_(data={"source": "fixtures"}), "data: source 'fixtures' needs local_dir"),
    (with_(data={"source": "hub", "tasks": {"xnlli": {"source": "local", "local_dir": "/d"}}}),
     "data.tasks.xnlli: the sweep reads no data of task 'xnlli' — did you mean 'xnli'?"),
    (with_(data={"source": "hub", "tasks": {"xnli": {"source": "local"}}}),
     "data.tasks.xnli: source 'local' needs local_dir"),
    (with_(languages={"xnlii": ["de"]}),
     "languages.xnlii: 'xnlii' is not among the sweep's target_tasks — did you mean 'xnli'?"),
    (with_(languages={"xnli": ["de", "dee"]}),
     "languages.xnli[1]: xnli has no language 'dee' — did you mean 'de'?"),
    (with_(languages={"xnli": []}), "languages.xnli: no language"),
    (with_(languages={"xnli": ["de", "de"]}), "languages.xnli: 'de' is listed twice"),
    (with_(intermediate_tasks=["none", "xnli"]),
     "intermediate_tasks[1]: 'xnli' is a target task, not an intermediate task"),
    (with_(target_tasks=["mnli"]), "target_tasks[0]: 'mnli' is an intermediate task"),
    (with_(resources={"xlmr-base": {"workers": 2}}),
     "resources.xlmr-base: model 'xlmr-base' is not in models"),
    (with_(resources={"tiny-s": {"zero_stage": 1}}),
     "resources.tiny-s.zero_stage: Input should be 2 or 3"),
    (with_(phase3={"overrides": {"pawsx": {"lr": 1e-5}}}),
     "phase3.overrides.pawsx: task 'pawsx' is not trained in phase3"),
    (with_(seeds=[0, 0]), "seeds: 0 is listed twice"),
    ({k: v for k, v in GOOD.items() if k != "name"}, "name: required field is missing"),
    (with_(phase2={"defaults": {"learning_rate": 1e-5}}),
     "phase2.defaults.learning_rate: unknown field"),
    (with_(intermediate_tasks=["ccg"], data={"source": "hub"}),
     "intermediate_tasks[0]: 'ccg' needs ccg which is not on the Hub"),
    (with_(testing={"fail_cells": ["tiny-s/mnli/0"]}), "testing: unknown field"),
    # issue 19: arms, recipes, protocols, per-model settings, stages, per-task caps, `all`
    (with_(intermediate_tasks=["mnli@nn=20"]),
     "intermediate_tasks[0]: 'mnli@nn=20': unknown arm modifier 'nn' — did you mean 'n'?"),
    (with_(intermediate_tasks=["mnli@n=02000"]),
     "intermediate_tasks[0]: 'mnli@n=02000': write this arm as 'mnli@n=2000'"),
    (with_(intermediate_tasks=["mnli@n=0"]),
     "intermediate_tasks[0]: n=0: the training-set size is n=N with N a positive integer"),
    (with_(intermediate_tasks=["none@n=10"]), "intermediate_tasks[0]: 'none@n=10': `none` trains"),
    (with_(intermediate_tasks=["mnlii@n=10"]),
     "intermediate_tasks[0]: unknown task 'mnlii' — did you mean 'mnli'?"),
    (with_(recipe="jiantt"), "recipe: unknown recipe 'jiantt' — did you mean 'jiant'?"),
    (with_(protocol="xtreme-r"), "protocol: Input should be 'xtreme' or 'xtreme_r'"),
    (with_(phase3={"by_model": {"tiny-x": {"defaults": {"lr": 1e-5}}}}),
     "phase3.by_model.tiny-x: model 'tiny-x' is not in models — did you mean 'tiny-s'?"),
    (with_(phase3={"by_model": {"tiny-s": {"overrides": {"xnlii": {"lr": 1e-5}}}}}),
     "phase3.by_model.tiny-s.overrides.xnlii: task 'xnlii' is not trained in phase3"),
    (with_(phase2={"by_model": {"tiny-s": {"lr": 1e-5}}}),
     "phase2.by_model.tiny-s.lr: unknown field"),
    (with_(phase3={"stages": {"xnlii": ["siqa"]}}),
     "phase3.stages.xnlii: 'xnlii' is not among the sweep's target_tasks — did you mean 'xnli'?"),
    (with_(phase3={"stages": {"xnli": ["siqaa"]}}),
     "phase3.stages.xnli[0]: 'siqaa' is not a task with English training data — did you mean"),
    (with_(phase3={"stages": {"xnli": ["xnli"]}}),
     "phase3.stages.xnli[0]: a task cannot be its own stage"),
    (with_(data={"source": "hub", "native_dir": "/n", "max_examples": {"tasks": {"siqa": 10}}}),
     "data.max_examples.tasks.siqa: the sweep trains no task 'siqa'"),
    (with_(languages={"xnli": "al"}), "languages.xnli"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "expected"), BAD, ids=[e for _, e in BAD])
def test_each_bad_spec_names_its_field(raw: dict, expected: str) -> None:
    found = problems(raw)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    raw = with_(
        name="../x",
        models=["tiny-z"],
        target_tasks=["xnlii"],
        seeds=[-1],
        seed=1,
        storage="ftp://x",
        data={"source": "local"},
        resources={"nope": {}},
    )
    found = problems(raw)
    for prefix in ("name:", "models[0]:", "target_tasks[0]:", "seeds[0]:", "seed:", "storage:",
                   "data:", "resources.nope:"):  # fmt: skip
        assert any(p.startswith(prefix) for p in found), (prefix, found)


def test_yaml_reads_scientific_floats_and_rejects_code(tmp_path: Path) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text("a: 1e-5\nb: 2.0E+3\nc: 1_000\n")
    assert read_yaml(ok) == {"a": 1e-5, "b": 2000.0, "c": 1000}
    evil = tmp_path / "evil.yaml"
    evil.write_text("a: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(Exception, match="invalid YAML"):
        read_yaml(evil)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodels: [a, b\n")
    with pytest.raises(Exception, match=r"bad\.yaml:\d+: invalid YAML"):
        read_yaml(bad)


def test_unknown_spec_reference_suggests_builtin() -> None:
    with pytest.raises(Exception, match="did you mean 'quickstart'"):
        load_spec("quickstrat")


def test_overrides_apply_on_load() -> None:
    spec = load_spec("quickstart", storage="s3://bucket/runs", name="qs-2")
    assert (spec.storage, spec.name) == ("s3://bucket/runs", "qs-2")


def test_hyperparameters_resolve_recipe_then_defaults_then_override() -> None:
    spec = validate(with_(phase3={"defaults": {"lr": 2e-5}, "overrides": {"udpos": {"lr": 3e-5}}}))
    xnli, udpos = spec.hparams("phase3", "xnli"), spec.hparams("phase3", "udpos")
    assert (xnli.lr, udpos.lr) == (2e-5, 3e-5)
    assert (xnli.batch_size, xnli.grad_accum, xnli.max_seq_length) == (4, 8, 256)
    squad = validate(with_(intermediate_tasks=["squad"])).hparams("phase2", "squad")
    assert (squad.grad_accum, squad.max_seq_length, squad.warmup_ratio) == (4, 384, 0.1)


def test_resolved_hyperparameters_are_typed_whole_and_reach_the_loop_whole() -> None:
    from dataclasses import fields

    from orchestrator.spec import Hparams
    from trainers.hparams import PhaseHparams, hparam_names
    from trainers.loop import TrainSpec

    assert set(Hparams.model_fields) == set(hparam_names())  # a spec field is a typed field
    assert set(hparam_names()) <= {f.name for f in fields(TrainSpec)}  # ... and a loop field
    with pytest.raises(SpecError, match=r"phase2\.defaults\.learning_rate"):
        validate(with_(phase2={"defaults": {"learning_rate": 1e-5}}))
    hp = validate(with_(phase2={"defaults": {"max_steps": 7}})).hparams("phase2", "mnli")
    assert isinstance(hp, PhaseHparams) and hp.max_steps == 7
    assert hp.as_dict() == {f.name: getattr(hp, f.name) for f in fields(PhaseHparams)}
    run = TrainSpec.from_hparams(hp, seed=3)
    assert {k: getattr(run, k) for k in hparam_names()} == hp.as_dict()


def test_languages_all_is_every_language_of_the_protocols_list() -> None:
    from orchestrator.grid import expand

    spec = validate(with_(languages={"xnli": "all", "udpos": ["de", "fr"]}))
    assert len(spec.eval_languages("xnli")) == 15 and spec.eval_languages("udpos") == ("de", "fr")
    plain = validate(with_(languages={"udpos": ["de", "fr"]}))
    assert [c.trial_key for c in expand(spec)] == [c.trial_key for c in expand(plain)]
    v1 = validate(with_(protocol="xtreme", languages={"udpos": "all"}))
    assert len(v1.eval_languages("udpos")) == 33  # XTREME v1's list, not XTREME-R's 38
