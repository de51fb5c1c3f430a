"""The language arms of an intermediate task: `task@translate-train` and
`task@langs[a,b,...]` — spelling, the languages they choose, every bad spelling as one line
at validation, and the translated files a local mirror must hold."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from evaluation.tasks import get_task
from orchestrator.arms import parse_intermediate
from orchestrator.data_check import data_problems
from orchestrator.spec import SpecError, validate

# XNLI's 14 languages besides English (Conneau et al. 2018), whose training sets are
# MNLI's machine-translated: written out here, not read from the registry.
XNLI_OTHERS = tuple("ar bg de el es fr hi ru sw th tr ur vi zh".split())
GOOD = {
    "name": "langs",
    "storage": "/tmp/xstilts-langs",
    "models": ["tiny-s"],
    "intermediate_tasks": ["mnli"],
    "target_tasks": ["xnli"],
    "seeds": [0],
    "data": {"source": "hub", "native_dir": "/data/native"},
}


@pytest.mark.parametrize(
    ("name", "languages"),
    [
        ("mnli", {}),
        ("mnli@translate-train", {"mnli": XNLI_OTHERS}),
        ("mnli@langs[de,hi,sw]", {"mnli": ("de", "hi", "sw")}),
        ("mnli@langs[de,en]", {"mnli": ("de", "en")}),
        ("mnli@n=100@langs[sw]", {"mnli": ("sw",)}),
        ("mnli@n=100@translate-train", {"mnli": XNLI_OTHERS}),
        ("mnli@langs[de]+qqp", {"mnli": ("de",)}),
    ],
)
def test_an_arm_names_the_languages_of_its_training_data(name: str, languages: dict) -> None:
    setting = parse_intermediate(name)
    assert setting.name == name  # canonical, so it is the cell's `intermediate_task`
    assert setting.train_languages() == languages
    assert validate({**GOOD, "intermediate_tasks": ["none", name]}).intermediate_tasks[1] == name


def test_n_counts_the_pool() -> None:
    assert parse_intermediate("mnli@n=100@translate-train").train_sizes() == {"mnli": 100}


BAD = [
    ("mnli@langs[hi,de]", "'mnli@langs[hi,de]': write this arm as 'mnli@langs[de,hi]'"),
    ("mnli@langs[de]@n=10", "'mnli@langs[de]@n=10': write this arm as 'mnli@n=10@langs[de]'"),
    ("mnli@langs[de,de]", "langs[de,de]: de is listed twice"),
    ("mnli@langs[]", "langs[]: the training languages are langs[a,b,...]"),
    ("mnli@langs=de", "langs=de: the training languages are langs[a,b,...]"),
    ("mnli@langs[De]", "'De' is not a language code"),
    ("mnli@langs[xx]", "'mnli@langs[xx]': mnli has no training data in 'xx' (it has ar bg"),
    ("mnli@langs[dee]", "mnli has no training data in 'dee' — did you mean 'de'?"),
    ("mnli@translate-train=1", "translate-train=1: translate-train takes no value"),
    ("mnli@translat-train", "unknown arm modifier 'translat-train' — did you mean"),
    ("mnli@translate-train@langs[de]", "translate-train and langs[...] both choose"),
    (
        "qqp@translate-train",
        "'qqp@translate-train': qqp has no translated training data, so no translate-train "
        "arm (tasks with translations: mnli)",
    ),
    ("multitask@langs[de]", "anli, qqp, squad, squad_v2, hellaswag, cosmosqa, commonsenseqa"),
    ("mnli+qqp@langs[de]", "qqp has no translated training data, so no langs arm"),
]


@pytest.mark.parametrize(("name", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_language_arm_is_one_line_naming_it(name: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        validate({**GOOD, "intermediate_tasks": ["mnli", name]})
    (problem,) = info.value.problems
    assert problem.startswith("intermediate_tasks[1]: ") and "\n" not in problem
    assert message in problem


def test_a_local_mirror_must_hold_the_translations_an_arm_reads(tmp_path: Path) -> None:
    from evaluation.data.fixtures import write_fixtures

    root = write_fixtures(tmp_path / "mirror", n_per_split=4, tasks=[get_task("mnli")])
    raw = copy.deepcopy(GOOD)
    raw["data"] = {"source": "local", "local_dir": str(root)}
    raw["target_tasks"] = ["pawsx"]  # its files are not there either: named, but apart
    (root / "facebook/xnli/sw/train.parquet").unlink()

    def missing(*arms: str) -> list[str]:
        lines = data_problems(validate({**raw, "intermediate_tasks": list(arms)}))
        return [line for line in lines if line.startswith("data (mnli)")]

    assert missing("mnli", "mnli@langs[de,en]") == []
    for arms in (["mnli@langs[de,sw]"], ["mnli@translate-train"], ["mnli@translate-train+qqp"]):
        (line,) = missing(*arms)
        assert "facebook/xnli/sw/train" in line


def test_the_readme_example_validates() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Translated and multilingual intermediate data\n", 1)[1]
    (block,) = re.findall(r"```yaml\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    names = yaml.safe_load(block)["intermediate_tasks"]
    assert validate({**GOOD, "intermediate_tasks": names}).intermediate_tasks == names


def test_plan_sizes_a_pooled_arm_by_its_languages() -> None:
    """Phang's recipe (3 epochs, no step or example cap): translate-train's phase 2 reads 14
    translations of MNLI, `langs[de,en]` two versions, so 14x and 2x the plain arm's."""
    from orchestrator.grid import expand
    from orchestrator.plan import cell_flops
    from orchestrator.spec import SweepSpec, load_spec

    raw = load_spec("phang2020").model_dump()
    raw["intermediate_tasks"] = ["none", "mnli", "mnli@translate-train", "mnli@langs[de,en]"]
    raw["models"], raw["seeds"] = ["xlmr-base"], [0]
    flops = {c.intermediate_task: cell_flops(SweepSpec.model_validate(raw), c, 10**8)
             for c in expand(SweepSpec.model_validate(raw))}  # fmt: skip
    phase2 = {arm: f - flops["none"] for arm, f in flops.items()}
    assert phase2["mnli@translate-train"] == pytest.approx(14 * phase2["mnli"])
    assert phase2["mnli@langs[de,en]"] == pytest.approx(2 * phase2["mnli"])


def test_tasks_files_lists_the_translations_an_arm_reads() -> None:
    from click.testing import CliRunner

    from orchestrator.cli import cli

    out = CliRunner().invoke(cli, ["tasks", "--files", "mnli"])
    assert out.exit_code == 0, out.output
    translated = [line for line in out.output.splitlines() if "(translated)" in line]
    assert len(translated) == 14
    assert "train de (translated): facebook/xnli/de/train.parquet" in translated
