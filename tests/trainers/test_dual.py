"""The dual encoder of Mewsli-X and LAReQA, its zero-shot ranking, and BUCC's threshold."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import HP, RecordingHooks, cell_job

from evaluation.data.examples import Answer, Entity, MentionExample, QuestionExample, RetrievalPair
from evaluation.data.loaders import load_examples
from evaluation.data.retrieval import Candidate
from evaluation.predict import (
    DualEncoder,
    bucc_mining,
    candidate_pool,
    evaluate_dual,
    evaluate_retrieval,
    golds,
)
from evaluation.retrieval import BuccSide, bucc_candidates, bucc_threshold
from evaluation.scorers import row_metrics
from evaluation.tasks import Format, get_task
from storage.errors import UserError
from trainers.dual import DualHead, candidate_text, dual_encoder, mention_query
from trainers.formats import HEADS, head_for
from trainers.ladder import LADDER
from trainers.loop import TaskData, TrainSpec, train
from trainers.taskmodel import TaskModel, Tokenization, predictor, task_features
from trainers.tokenizer import tokenizer_digest

DUAL_TASKS = ("mewslix", "lareqa")


@pytest.fixture(scope="module")
def retrieval_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evaluation.data.fixtures import write_fixtures

    root = tmp_path_factory.mktemp("retrieval") / "fx"
    names = (*DUAL_TASKS, "bucc2018")
    return write_fixtures(
        root, seed=0, n_per_split=24, n_train=96, tasks=[get_task(n) for n in names]
    )


def examples(root: Path, task: str, part: str, language: str = "en", limit: int = 64) -> list:
    return load_examples(
        get_task(task), part, language, source="local", local_dir=root, limit=limit
    )


def tokenization(tiny, max_len: int = 64) -> Tokenization:
    return Tokenization(tiny.tokenizer, tokenizer_digest(tiny.tokenizer), max_len, None)


def run_spec(steps: int, eval_every: int = 1000) -> TrainSpec:
    return TrainSpec(
        lr=1e-3,
        batch_size=16,
        grad_accum=1,
        warmup_ratio=0.0,
        eval_every=eval_every,
        patience=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        seed=0,
        max_steps=steps,
    )


# --- training -------------------------------------------------------------------------


@pytest.mark.parametrize("task", DUAL_TASKS)
def test_dual_encoder_trains_through_the_loop_and_its_loss_falls(task, tiny, retrieval_root):
    spec = get_task(task)
    tok = tokenization(tiny)
    torch.manual_seed(0)
    model = TaskModel(tiny.encoder, {task: head_for(spec).build(LADDER["tiny-s"].hidden, 0)})
    features = task_features(spec, examples(retrieval_root, task, "train"), tok, "train", True)
    assert len(features) == 64 and {"input_ids", "cand_input_ids"} <= set(features[0])
    losses: list[float] = []
    data = TaskData(spec, features, [], tok)
    train(model, {task: data}, run_spec(24), on_step=lambda _s, loss: losses.append(loss))
    assert sum(losses[-6:]) / 6 < 0.7 * sum(losses[:6]) / 6, losses


def test_the_head_is_a_learnable_scale_over_normalised_mean_pooling() -> None:
    head = DualHead(8)
    assert [n for n, _ in head.named_parameters()] == ["logit_scale"]
    assert float(head.logit_scale.detach()) == 100.0
    states = torch.tensor([[[3.0, 4.0], [9.0, 9.0]]])
    out = head(states, torch.tensor([[1, 0]]))  # the padded position is not pooled
    assert torch.allclose(out, torch.tensor([[0.6, 0.8]]))


def test_dev_evaluation_ranks_the_in_split_pool(tiny, retrieval_root) -> None:
    spec = get_task("mewslix")
    dev = examples(retrieval_root, "mewslix", "dev", limit=12)
    tok = tokenization(tiny)
    model = TaskModel(tiny.encoder, {"mewslix": head_for(spec).build(LADDER["tiny-s"].hidden, 0)})
    ranked = predictor(model, spec, tok, 8, False)(dev)
    pool = candidate_pool(dev)
    assert set(ranked) == {ex.id for ex in dev}
    assert all(
        len(ids) == min(20, len(pool.ids)) and set(ids) <= set(pool.ids) for ids in ranked.values()
    )
    assert golds(spec, dev) == {ex.id: ex.entity_id for ex in dev}


# --- texts ------------------------------------------------------------------------------


def test_mention_query_marks_the_mention_in_its_own_sentence() -> None:
    context = "Old news here. Then {Ann} met Bob Lee at noon.\nLater text."
    ex = MentionExample("m", "en", context, Answer("Bob Lee", context.index("Bob")), "Q1")
    assert mention_query(ex) == "Bob Lee: Then (Ann) met { Bob Lee } at noon."


def test_candidate_texts_follow_the_official_preprocessing() -> None:
    assert candidate_text(Entity("Q1", "T", "A man.\nHe  sang.")) == "A man. He sang."
    assert candidate_text(Candidate("en", "B c.", "A b.\nB c.")) == "B c.A b.B c."


# --- zero-shot ranking -------------------------------------------------------------------


def question(qid: str, lang: str, answer: int) -> QuestionExample:
    sentences = (f"{lang} one {qid}.", f"{lang} two {qid}.")
    return QuestionExample(qid, lang, f"{lang} q{qid}", " ".join(sentences), sentences, answer)


def oracle(vector_of) -> DualEncoder:
    """Towers that embed a query next to its relevant candidates (hand-made geometry)."""
    return DualEncoder(
        lambda items: np.stack([vector_of(x) for x in items]),
        lambda items: np.stack([vector_of(x) for x in items]),
    )


def test_lareqa_ranks_one_pool_of_every_language() -> None:
    spec = get_task("lareqa")
    by_lang = {lang: [question("a", lang, 1), question("b", lang, 0)] for lang in ("en", "de")}
    basis = {"a": np.array([1.0, 0.0, 0.0]), "b": np.array([0.0, 1.0, 0.0])}

    def vector_of(x) -> np.ndarray:
        if isinstance(x, QuestionExample):
            return basis[x.id]
        _, which, qid = x.sentence.rstrip(".").split()
        is_answer = which == {"a": "two", "b": "one"}[qid]
        return basis[qid] if is_answer else np.array([0.0, 0.0, 1.0])

    rows = evaluate_dual(spec, by_lang, oracle(vector_of), None)
    assert [(r["language"], r["metric"], r["value"]) for r in rows] == [
        ("en", "map@20", 100.0),
        ("en", "map@20_se", 0.0),  # every query perfect: no sampling noise
        ("de", "map@20", 100.0),
        ("de", "map@20_se", 0.0),
    ]
    pool = candidate_pool([q for qs in by_lang.values() for q in qs])
    assert len(pool.ids) == 8 and pool.relevant["a"] == {"en-1", "de-5"}


def test_mewslix_ranks_the_task_entity_pool_and_writes_the_submission(tmp_path) -> None:
    spec = get_task("mewslix")
    entities = [Entity(f"Q{i}", f"t{i}", f"d{i}") for i in range(30)]
    mentions = [
        MentionExample(f"m{i}", "de", f"m {i}", Answer("m", 0), f"Q{i}") for i in (3, 7, 29)
    ]
    eye = np.eye(30)

    def vector_of(x) -> np.ndarray:
        if isinstance(x, Entity):
            return eye[int(x.id[1:])]
        return eye[int(x.id[1:])] + 0.5 * eye[(int(x.id[1:]) + 1) % 30]

    rows = evaluate_dual(spec, {"de": mentions}, oracle(vector_of), tmp_path, entities)
    assert rows[0]["value"] == 100.0 and rows[0]["n_examples"] == 3
    written = (tmp_path / "mewslix" / "test-de.json").read_text()
    assert written.startswith('{"m29": ["Q29", "Q0", ')


# --- BUCC -------------------------------------------------------------------------------


def bucc_pairs(prefix: str, n: int, shift: int = 0) -> list[RetrievalPair]:
    """n aligned sentences; with `shift`, the gold pairs each source with another target."""
    return [
        RetrievalPair(f"{prefix}{i}", f"{prefix} src {i}", f"{prefix} trg {(i + shift) % n}",
                      f"de-{prefix}{i}", f"en-{prefix}{(i + shift) % n}")
        for i in range(n)
    ]  # fmt: skip


def bucc_embed(texts) -> np.ndarray:
    """Source i and target i are close; every third target is pushed off (a hard pair)."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(64, 16))
    rows = []
    for text in texts:
        i = int(text.split()[-1])
        noise = 0.9 if "trg" in text and i % 3 == 0 else 0.1
        rows.append(base[i] + noise * base[(i * 7 + 5) % 64])
    return np.stack(rows)


def test_bucc_threshold_comes_from_validation_and_ignores_the_test_gold() -> None:
    validation = bucc_pairs("v", 12)
    test, test_moved = bucc_pairs("t", 12), bucc_pairs("t", 12, shift=5)
    mined = bucc_mining(test, validation, bucc_embed)
    moved = bucc_mining(test_moved, validation, bucc_embed)
    assert mined.threshold == moved.threshold
    src = BuccSide(bucc_embed([p.source for p in validation]), [p.source for p in validation],
                   [p.source_id for p in validation])  # fmt: skip
    trg = BuccSide(bucc_embed([p.target for p in validation]), [p.target for p in validation],
                   [p.target_id for p in validation])  # fmt: skip
    gold = {(p.source_id, p.target_id) for p in validation}
    assert mined.threshold == bucc_threshold(bucc_candidates(src, trg), gold) > 0

    def tuned_on_test(pairs: list[RetrievalPair]) -> float:  # the old, flattering way
        side = [BuccSide(bucc_embed(t), t, i) for t, i in (
            ([p.source for p in pairs], [p.source_id for p in pairs]),
            ([p.target for p in pairs], [p.target_id for p in pairs]),
        )]  # fmt: skip
        return bucc_threshold(bucc_candidates(*side), {(p.source_id, p.target_id) for p in pairs})

    assert tuned_on_test(test) != tuned_on_test(test_moved)  # the test gold would matter


def test_bucc_needs_validation_pairs_and_the_spec_names_them() -> None:
    spec = get_task("bucc2018")
    assert spec.version == 2 and spec.tune_split == "validation"
    assert {lang: (s.config, s.split) for lang, s in spec.tune.items()} == {
        lang: (f"bucc18.{lang}", "validation") for lang in spec.languages
    }
    with pytest.raises(ValueError, match="no validation pairs to tune de on"):
        evaluate_retrieval(spec, {"de": bucc_pairs("t", 6)}, bucc_embed, None)


# --- the cell ---------------------------------------------------------------------------


def test_a_retrieval_target_without_a_head_is_a_user_error(retrieval_root, tmp_path) -> None:
    from trainers.cell import run_cell

    saved = HEADS.pop(Format.RETRIEVAL)
    try:
        job = cell_job(retrieval_root, tmp_path, target_tasks=("mewslix",))
        with pytest.raises(UserError, match=r"^task mewslix: no head supports format retrieval$"):
            run_cell(job, RecordingHooks())
    finally:
        HEADS[Format.RETRIEVAL] = saved
    assert not (tmp_path / "sw" / "phase2" / "p").exists()


@pytest.mark.integration
def test_run_cell_trains_dual_encoders_and_scores_every_language(retrieval_root, tmp_path):
    from trainers.cell import run_cell

    targets = (*DUAL_TASKS, "bucc2018")
    hp = dict(HP, max_steps=20, eval_every=10)
    job = cell_job(
        retrieval_root, tmp_path, intermediate_task="none", phase2_tasks=(), phase2_hparams={},
        target_tasks=targets, phase3_hparams={t: hp for t in targets},
    )  # fmt: skip
    hooks = RecordingHooks()
    run_cell(job, hooks)
    assert list(hooks.rows) == list(targets)
    for task in DUAL_TASKS:
        rows = hooks.rows[task]
        spec = get_task(task)
        assert sorted((r["language"], r["metric"]) for r in rows) == sorted(
            (lang, m) for lang in spec.languages for m in row_metrics(spec)
        )
        assert set(row_metrics(spec)) == {"map@20", "map@20_se"}
        assert all(0 <= r["value"] <= 100 and r["n_examples"] == 12 for r in rows)
        assert (tmp_path / "sw" / "cells" / "k" / "predictions" / task / "test-en.json").exists()
    english = next(r["value"] for r in hooks.rows["mewslix"] if r["language"] == "en")
    assert english > 50  # the trained encoder links English mentions
    bucc = hooks.rows["bucc2018"]
    assert {(r["language"], r["metric"]) for r in bucc} == {
        (lang, m)
        for lang in get_task("bucc2018").languages
        for m in row_metrics(get_task("bucc2018"))
    }
    assert {"f1", "precision", "recall"} <= set(row_metrics(get_task("bucc2018")))


def test_dual_encoder_towers_embed_unit_vectors(tiny) -> None:
    head = DualHead(LADDER["tiny-s"].hidden)
    towers = dual_encoder(tiny.encoder, head, tiny.tokenizer, 32, batch_size=4)
    q = towers.queries([replace(question("a", "en", 0), question="who sang ?")])
    c = towers.candidates([Entity("Q1", "t", "a singer"), Entity("Q2", "u", "a painter")])
    assert q.shape == (1, LADDER["tiny-s"].hidden) and c.shape == (2, LADDER["tiny-s"].hidden)
    assert np.allclose(np.linalg.norm(c, axis=1), 1.0, atol=1e-5)
