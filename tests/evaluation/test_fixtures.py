"""Fixtures are deterministic from the seed, written atomically, and cross-lingual: the
recorded transform strength orders how far each language is from English."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from scipy.stats import spearmanr

from evaluation.data.fixtures import (
    FIXTURE_VERSION,
    METADATA,
    ensure_fixtures,
    read_metadata,
    write_fixtures,
)
from evaluation.data.loaders import load_examples
from evaluation.data.synth.languages import language
from evaluation.tasks import all_tasks, get_task
from storage.errors import UserError

N = 12
SMALL = ("xnli", "xquad", "ccg", "mewslix")


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_fixtures(tmp_path_factory.getbasetemp() / f"fixtures-n{N}", n_per_split=N)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _write(root: Path, seed: int) -> Path:
    return write_fixtures(root, seed=seed, n_per_split=6, tasks=[get_task(t) for t in SMALL])


def test_same_seed_same_bytes_other_seed_other_content(tmp_path: Path) -> None:
    a, b, c = (_write(tmp_path / name, seed) for name, seed in (("a", 3), ("b", 3), ("c", 4)))
    assert _digest(a) == _digest(b)
    assert _digest(a).keys() == _digest(c).keys() and _digest(a) != _digest(c)


def test_metadata_records_every_language_strength(fixture_root: Path) -> None:
    meta = read_metadata(fixture_root)
    langs = {lang for t in all_tasks() for lang in t.languages}
    assert langs <= set(meta["languages"]) and meta["n_per_split"] == N
    assert meta["languages"]["en"]["strength"] == 0.0
    strengths = [m["strength"] for code, m in meta["languages"].items() if code != "en"]
    assert all(0.0 < s < 1.0 for s in strengths) and len(set(strengths)) == len(strengths)
    assert (
        meta["languages"]["ja"]["script"] != "Latn" and meta["languages"]["de"]["script"] == "Latn"
    )


def test_share_of_words_changed_rises_with_strength(fixture_root: Path) -> None:
    task = get_task("xnli")
    english = load_examples(task, "eval", "en", source="local", local_dir=fixture_root)
    en_words = {w for ex in english for w in f"{ex.text_a} {ex.text_b}".split()}
    changed = {}
    for lang in task.languages:
        exs = load_examples(task, "eval", lang, source="local", local_dir=fixture_root)
        words = [w for ex in exs for w in f"{ex.text_a} {ex.text_b}".split()]
        changed[lang] = sum(w not in en_words for w in words) / len(words)
    strength = [language(lang).strength for lang in task.languages]
    assert changed["en"] == 0.0
    assert spearmanr(strength, [changed[lang] for lang in task.languages])[0] > 0.9


def test_target_languages_are_parallel(fixture_root: Path) -> None:
    task = get_task("xnli")
    labels = {
        lang: [
            ex.label
            for ex in load_examples(task, "eval", lang, source="local", local_dir=fixture_root)
        ]
        for lang in task.languages
    }
    assert len({tuple(v) for v in labels.values()}) == 1
    assert len(set(labels["en"])) == 3  # all three classes occur


def test_every_class_occurs_in_training_data(fixture_root: Path) -> None:
    for name in ("mnli", "qqp", "hellaswag", "commonsenseqa", "copa", "siqa"):
        exs = load_examples(get_task(name), "train", source="local", local_dir=fixture_root)
        assert len({ex.label for ex in exs}) >= 2, name


def test_squad_v2_has_unanswerable_questions(tmp_path: Path) -> None:
    root = write_fixtures(tmp_path, n_per_split=40, tasks=[get_task("squad_v2")])
    exs = load_examples(get_task("squad_v2"), "train", source="local", local_dir=root)
    unanswerable = [ex for ex in exs if not ex.answers]
    assert 0 < len(unanswerable) < len(exs)


def test_ensure_fixtures_generates_once(tmp_path: Path) -> None:
    calls: list[str] = []
    root = tmp_path / "quick"
    ensure_fixtures(root, n_per_split=2)
    stamp = (root / METADATA).stat().st_mtime_ns
    assert ensure_fixtures(root, n_per_split=2) == root
    assert (root / METADATA).stat().st_mtime_ns == stamp and not calls
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".quick.")]  # no temp left


def test_fixtures_of_an_older_version_are_written_again(tmp_path: Path) -> None:
    """A tree an older xstilts wrote lacks what this one reads (MNLI's translations, the MLM
    corpus): it is replaced whole, and nothing of the old tree or the temporary one is left."""
    root = tmp_path / "quick"
    ensure_fixtures(root, n_per_split=2)
    translated = root / "facebook" / "xnli" / "de" / "train.parquet"
    assert translated.is_file()
    meta = json.loads((root / METADATA).read_text())
    (root / METADATA).write_text(json.dumps({**meta, "fixture_version": 1}))
    translated.unlink()
    assert ensure_fixtures(root, n_per_split=2) == root
    assert json.loads((root / METADATA).read_text())["fixture_version"] == FIXTURE_VERSION
    assert translated.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["quick"]


def test_refuses_to_write_into_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        write_fixtures(tmp_path, n_per_split=2, tasks=[get_task("xnli")])


def test_progress_reports_each_file(tmp_path: Path) -> None:
    seen: list[str] = []
    write_fixtures(tmp_path, n_per_split=2, tasks=[get_task("pawsx")], progress=seen.append)
    assert len(seen) == 7 * 3  # seven languages, three splits


def test_ensure_fixtures_never_writes_into_own_data(tmp_path: Path) -> None:
    """A directory holding anything but fixtures (a user's mirror, or one with a
    metadata.json of its own) is refused before anything is generated, and left as it is."""
    own = tmp_path / "mirror"
    (own / "google").mkdir(parents=True)
    (own / METADATA).write_text("{}")
    with pytest.raises(UserError, match="holds no fixtures"):
        ensure_fixtures(own, n_per_split=2)
    assert sorted(p.name for p in own.iterdir()) == ["google", METADATA]
    assert [p.name for p in tmp_path.iterdir()] == ["mirror"]  # no temporary tree left
