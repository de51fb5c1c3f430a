"""The loader yields the same examples from fixture files read as a local Hub mirror as
from the in-memory `datasets.Dataset`, for every task, part and language."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from evaluation.data.convert import to_examples
from evaluation.data.examples import (
    ClassificationExample,
    MentionExample,
    MultipleChoiceExample,
    QuestionExample,
    RetrievalPair,
    SpanQAExample,
    TaggingExample,
)
from evaluation.data.fixtures import build_datasets, ensure_fixtures
from evaluation.data.loaders import entity_pool, load_examples, sources_of, task_labels
from evaluation.data.retrieval import answer_pool, bitext
from evaluation.tasks import Format, Role, all_tasks, get_task

N = 12
FORMS = {
    "xnli": ClassificationExample,
    "xcopa": MultipleChoiceExample,
    "udpos": TaggingExample,
    "xquad": SpanQAExample,
    "tatoeba": RetrievalPair,
    "mewslix": MentionExample,
    "lareqa": QuestionExample,
}


@pytest.fixture(scope="session")
def fixture_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_fixtures(tmp_path_factory.getbasetemp() / f"fixtures-n{N}", n_per_split=N)


@pytest.fixture(scope="module")
def in_memory() -> dict:
    return {(d, c, s): ds for d, c, s, ds in build_datasets(seed=0, n_per_split=N)}


def cases() -> list[tuple[str, str, str]]:
    out = []
    for task in all_tasks():
        out += [(task.name, part, "en") for part in ("train", "dev") if getattr(task, part)]
        out += [(task.name, "eval", lang) for lang in task.eval]
    return out


@pytest.mark.parametrize("case", cases(), ids=lambda c: "-".join(c))
def test_local_mirror_equals_in_memory(fixture_root: Path, in_memory: dict, case) -> None:
    name, part, lang = case
    task = get_task(name)
    from_files = load_examples(task, part, lang, source="local", local_dir=fixture_root)
    expected = []
    for src in sources_of(task, part, lang):
        if src.native:
            continue
        expected += to_examples(task, in_memory[(src.dataset, src.config, src.split)], src, lang)
    hub_only = [ex for ex in from_files if not ex.id.startswith(("mewslix", "ccg", "fever_nli"))]
    assert from_files and hub_only == expected
    if name in FORMS:
        assert all(isinstance(ex, FORMS[name]) for ex in from_files)


def test_anli_plus_pools_rounds_mnli_snli_and_fever(fixture_root: Path) -> None:
    task = get_task("anli")
    pooled = load_examples(task, "train", source="local", local_dir=fixture_root)
    origins = {ex.id.rsplit("/", 2)[0] for ex in pooled}
    assert origins == {
        "facebook/anli/plain_text",
        "nyu-mll/glue/mnli",
        "stanfordnlp/snli/plain_text",
        "fever_nli/None",
    }
    snli = [ex for ex in pooled if ex.id.startswith("stanfordnlp")]
    assert 0 < len(snli) <= N  # SNLI's -1 rows are dropped, never kept as a label
    assert all(0 <= ex.label < 3 for ex in pooled)


def test_fever_is_optional(fixture_root: Path, tmp_path: Path) -> None:
    (tmp_path / "mirror").symlink_to(fixture_root)
    natives = tmp_path / "natives"
    natives.mkdir()
    task = get_task("anli")
    pooled = load_examples(
        task, "train", source="local", local_dir=tmp_path / "mirror", native_dir=natives
    )
    assert pooled and not any(ex.id.startswith("fever_nli") for ex in pooled)


def test_limit_keeps_every_pooled_source(fixture_root: Path) -> None:
    ex = load_examples(get_task("anli"), "train", source="local", local_dir=fixture_root, limit=6)
    assert len(ex) == 6 and len({e.id.split("/")[0] for e in ex}) >= 4


def test_labels_follow_the_spec_or_the_corpus(fixture_root: Path) -> None:
    assert task_labels(get_task("xnli")) == ("entailment", "neutral", "contradiction")
    ccg = task_labels(get_task("ccg"), source="local", local_dir=fixture_root)
    assert len(ccg) > 3 and "N" in ccg
    tags = load_examples(get_task("ccg"), "train", source="local", local_dir=fixture_root)
    assert max(t for ex in tags for t in ex.tags) < len(ccg)


def test_udpos_extra_languages_map_ud_label_order(fixture_root: Path) -> None:
    task = get_task("udpos")
    en = load_examples(task, "eval", "en", source="local", local_dir=fixture_root)
    pl = load_examples(task, "eval", "pl", source="local", local_dir=fixture_root)
    assert [ex.tags for ex in en] == [ex.tags for ex in pl]  # parallel content, same tag ids


def test_qa_answers_sit_at_their_offsets_in_every_language(fixture_root: Path) -> None:
    task = get_task("xquad")
    for lang in task.languages:
        for ex in load_examples(task, "eval", lang, source="local", local_dir=fixture_root):
            for a in ex.answers:
                assert ex.context[a.start : a.start + len(a.text)] == a.text


def test_retrieval_pools(fixture_root: Path) -> None:
    lareqa = get_task("lareqa")
    questions = [
        q
        for lang in lareqa.languages
        for q in load_examples(lareqa, "eval", lang, source="local", local_dir=fixture_root)
    ]
    pool = answer_pool(questions)
    assert all(len(rel) == len(lareqa.languages) for rel in pool.relevant.values())
    pairs = load_examples(
        get_task("bucc2018"), "eval", "de", source="local", local_dir=fixture_root
    )
    corpus = bitext(pairs)
    assert len(corpus.gold) == len(pairs) and all(s.startswith("de-") for s, _ in corpus.gold)
    mewslix = get_task("mewslix")
    pool_ids = {e.id for e in entity_pool(mewslix, local_dir=fixture_root)}
    mentions = load_examples(mewslix, "eval", "ja", source="local", local_dir=fixture_root)
    assert mentions and {m.entity_id for m in mentions} <= pool_ids


def test_intermediate_tasks_are_english_only() -> None:
    """All but continued MLM, whose languages are its corpus' (`data.mlm_corpus`)."""
    tasks = all_tasks(Role.INTERMEDIATE)
    assert all(t.languages == ("en",) for t in tasks if t.format is not Format.MASKED_LM)
    assert [t.languages for t in tasks if t.format is Format.MASKED_LM] == [()]
