"""Every dataset of every task: fixture columns, dtypes, ClassLabel names and splits equal
the schema declared for its Hub dataset; the registry reads only declared splits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from evaluation.data.fixtures import dataset_uses, ensure_fixtures
from evaluation.data.schemas import SCHEMAS, schema_for, schema_problems
from evaluation.data.sources import config_dir, read_source
from evaluation.tasks import all_tasks
from evaluation.tasks.spec import Source

N = 12


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_fixtures(tmp_path_factory.getbasetemp() / f"fixtures-n{N}", n_per_split=N)


def all_sources() -> list[Source]:
    found: dict[tuple[str, str | None, str], Source] = {}
    for task in all_tasks():
        for src in (*task.train, *task.dev, *task.eval.values()):
            found.setdefault((src.dataset, src.config, src.split), src)
    return list(found.values())


CONFIGS = sorted(dataset_uses(all_tasks()), key=lambda k: (k[0], k[1] or ""))


@pytest.mark.parametrize("src", all_sources(), ids=lambda s: f"{s.dataset}:{s.config}:{s.split}")
def test_registry_reads_only_declared_splits(src: Source) -> None:
    assert src.split in schema_for(src.dataset, src.config).splits_of(src.config)


@pytest.mark.parametrize("key", CONFIGS, ids=lambda k: f"{k[0]}:{k[1]}")
def test_fixture_config_has_exactly_the_declared_splits(fixture_root: Path, key) -> None:
    dataset, config = key
    folder = config_dir(fixture_root, dataset, config)
    written = sorted(p.stem for p in folder.glob("*.parquet"))
    assert written == sorted(schema_for(dataset, config).splits_of(config))


@pytest.mark.parametrize("src", all_sources(), ids=lambda s: f"{s.dataset}:{s.config}:{s.split}")
def test_fixture_features_equal_declared_schema(fixture_root: Path, src: Source) -> None:
    ds = read_source(src, source="local", local_dir=fixture_root)
    assert ds is not None and len(ds) > 0
    assert schema_problems(ds.features, schema_for(src.dataset, src.config)) == []


def test_every_declared_schema_is_used_by_some_task() -> None:
    used = {(s.dataset, schema_for(s.dataset, s.config).configs) for s in all_sources()}
    assert {(s.dataset, s.configs) for s in SCHEMAS} == used


def test_schema_problems_names_the_column() -> None:
    schema = schema_for("nyu-mll/glue", "mnli")
    features = schema.features.copy()
    del features["hypothesis"]
    features["label"] = schema_for("nyu-mll/glue", "qqp").features["label"]
    problems = schema_problems(features, schema)
    assert any("'hypothesis' missing" in p for p in problems)
    assert any("'label' is" in p for p in problems)


def test_label_encodings_match_the_hub() -> None:
    names = lambda d, c, col: schema_for(d, c).features[col]  # noqa: E731
    assert names("nyu-mll/glue", "mnli", "label").names == [
        "entailment",
        "neutral",
        "contradiction",
    ]
    assert names("google/xtreme", "PAN-X.de", "ner_tags").feature.names[:3] == [
        "O",
        "B-PER",
        "I-PER",
    ]
    assert names("Rowan/hellaswag", None, "label").dtype == "string"
    assert names("allenai/social_i_qa", None, "label").dtype == "string"
    assert names("universal_dependencies", "pl_pdb", "upos").feature.names[0] == "NOUN"
