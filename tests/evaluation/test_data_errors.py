"""Bad input is a one-line UserError naming dataset, config, split and column."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets

from evaluation.data.fixtures import build_datasets, write_fixtures
from evaluation.data.loaders import load_examples
from evaluation.data.sources import config_dir
from evaluation.tasks import get_task
from evaluation.tasks.spec import Source
from storage.errors import UserError

XNLI_DE = ("facebook/xnli", "de", "test")


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """A local mirror holding just XNLI German test, written through `datasets`."""
    for d, c, s, ds in build_datasets(n_per_split=8, tasks=[get_task("xnli")]):
        if (d, c, s) == XNLI_DE:
            path = config_dir(tmp_path, d, c) / f"{s}.parquet"
            path.parent.mkdir(parents=True)
            ds.to_parquet(str(path))
    return tmp_path


def _error(local_dir: Path, lang: str = "de") -> str:
    with pytest.raises(UserError) as info:
        load_examples(get_task("xnli"), "eval", lang, source="local", local_dir=local_dir)
    message = str(info.value)
    assert "\n" not in message
    return message


def _rewrite(mirror: Path, change) -> None:
    path = config_dir(mirror, "facebook/xnli", "de") / "test.parquet"
    ds = change(datasets.Dataset.from_parquet(str(path), keep_in_memory=True))
    path.unlink()
    ds.to_parquet(str(path))


def test_loads_when_intact(mirror: Path) -> None:
    ex = load_examples(get_task("xnli"), "eval", "de", source="local", local_dir=mirror)
    assert len(ex) == 8


def test_missing_split(mirror: Path) -> None:
    shutil.move(config_dir(mirror, *XNLI_DE[:2]) / "test.parquet", mirror / "elsewhere.parquet")
    (config_dir(mirror, *XNLI_DE[:2]) / "validation.parquet").write_bytes(b"")
    message = _error(mirror)
    assert "'facebook/xnli'" in message and "'de'" in message and "'test'" in message
    assert "validation" in message  # says which splits there are


def test_missing_config(mirror: Path) -> None:
    message = _error(mirror, "fr")
    assert "'facebook/xnli'" in message and "'fr'" in message and "'test'" in message


def test_missing_column(mirror: Path) -> None:
    _rewrite(mirror, lambda ds: ds.remove_columns("hypothesis"))
    message = _error(mirror)
    assert "column 'hypothesis'" in message and "'de'" in message and "'test'" in message


def test_label_outside_label_list(mirror: Path) -> None:
    features = datasets.Features({**_features(mirror), "label": datasets.Value("int64")})
    _rewrite(
        mirror,
        lambda ds: ds.cast(features).map(
            lambda r, i: {"label": 7 if i == 3 else r["label"]}, with_indices=True
        ),
    )
    message = _error(mirror)
    assert "column 'label'" in message and "7" in message and "'facebook/xnli'" in message


def _features(mirror: Path) -> datasets.Features:
    path = config_dir(mirror, "facebook/xnli", "de") / "test.parquet"
    return datasets.Dataset.from_parquet(str(path), keep_in_memory=True).features


def test_string_label_outside_label_list(tmp_path: Path) -> None:
    write_fixtures(tmp_path, n_per_split=6, tasks=[get_task("siqa")])
    path = config_dir(tmp_path, "allenai/social_i_qa", None) / "validation.parquet"
    ds = datasets.Dataset.from_parquet(str(path), keep_in_memory=True)
    ds = ds.map(lambda r: {"label": "9"})
    path.unlink()
    ds.to_parquet(str(path))
    with pytest.raises(UserError, match=r"social_i_qa.*'validation' column 'label': label '9'"):
        load_examples(get_task("siqa"), "dev", source="local", local_dir=tmp_path)


def test_unlabeled_rows_fail_unless_the_source_drops_them(mirror: Path) -> None:
    _rewrite(
        mirror,
        lambda ds: ds.cast_column("label", datasets.Value("int64")).map(lambda r: {"label": -1}),
    )
    assert "without a gold label" in _error(mirror)


def test_empty_local_directory(tmp_path: Path) -> None:
    message = _error(tmp_path)
    assert "empty" in message and "'facebook/xnli'" in message and "'test'" in message


def test_native_without_directory() -> None:
    with pytest.raises(UserError, match=r"'mewslix'.*native data needs a local directory"):
        load_examples(get_task("mewslix"), "eval", "de", source="hub")


def test_ccg_tag_outside_tag_map(tmp_path: Path) -> None:
    write_fixtures(tmp_path, n_per_split=4, tasks=[get_task("ccg")])
    tsv = tmp_path / "ccg" / "dev.tsv"
    text, tags = tsv.read_text().splitlines()[0].split("\t")
    tsv.write_text(f"{text}\tNOPE {' '.join(tags.split()[1:])}\n")
    with pytest.raises(UserError, match=r"'ccg'.*'dev' column 'tags'"):
        load_examples(get_task("ccg"), "dev", source="local", local_dir=tmp_path)


def test_hub_errors_are_user_errors() -> None:
    task = get_task("xnli")
    src = Source("no-such-org/no-such-dataset", "xx", "test")
    bogus = type(task)(**{**task.__dict__, "eval": {lang: src for lang in task.languages}})
    with pytest.raises(UserError, match="'no-such-org/no-such-dataset' config 'xx' split 'test'"):
        load_examples(bogus, "eval", "de", source="hub")


def test_cli_fixtures_reports_bad_directory_with_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cli = Path(sys.executable).with_name("xstilts")
    proc = subprocess.run(
        [str(cli), "fixtures", str(blocker)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "error" in proc.stderr
