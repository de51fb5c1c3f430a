"""The fixtures are learnable and cross-lingual: a tiny encoder trained from scratch on
English fixture data learns each task, and its zero-shot scores fall as the language
transform's strength rises. A small plain torch loop; no trainer package involved."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch
from scipy.stats import spearmanr
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    XLMRobertaConfig,
    XLMRobertaForQuestionAnswering,
    XLMRobertaForSequenceClassification,
    XLMRobertaForTokenClassification,
)

from evaluation.data.examples import ClassificationExample, SpanQAExample, TaggingExample
from evaluation.data.fixtures import read_metadata, write_fixtures
from evaluation.data.loaders import load_examples
from evaluation.tasks import get_task

pytestmark = pytest.mark.integration
TASKS = ("xnli", "udpos", "xquad")
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
PAD, CLS, SEP = 0, 1, 2


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Tokenizer]:
    torch.manual_seed(0)
    torch.set_num_threads(1)  # tiny matrices: more threads only contend
    root = write_fixtures(
        tmp_path_factory.mktemp("fx"),
        n_per_split=150,
        n_train=2000,
        tasks=[get_task(t) for t in TASKS],
    )
    texts = [line for f in sorted(root.rglob("*.parquet")) for line in _texts(f)]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    return root, tok


def _texts(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    out: list[str] = []
    for name in table.column_names:
        for value in table.column(name).to_pylist():
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, list) and value and isinstance(value[0], str):
                out.append(" ".join(value))
    return out


def _config(tok: Tokenizer, **kw: int) -> XLMRobertaConfig:
    return XLMRobertaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=160,
        pad_token_id=PAD,
        bos_token_id=CLS,
        eos_token_id=SEP,
        **kw,
    )


_VOCABS: dict[int, dict[str, int]] = {}


def _ids(tok: Tokenizer, words: Sequence[str]) -> list[int]:
    if id(tok) not in _VOCABS:
        _VOCABS[id(tok)] = tok.get_vocab()
    vocab = _VOCABS[id(tok)]
    return [vocab.get(w, 3) for w in words]


def _pad(seqs: list[list[int]], value: int = PAD) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs])


def _train(model: torch.nn.Module, batches: Callable[[], list[dict]], epochs: int) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    model.train()
    for _ in range(epochs):
        for batch in batches():
            loss = model(**batch).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()


def _chunks(items: list, size: int, seed: int) -> list[list]:
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    return [[items[i] for i in order[k : k + size]] for k in range(0, len(order), size)]


# --- the three task families ----------------------------------------------------------


def _pair(tok: Tokenizer, ex: ClassificationExample) -> list[int]:
    a, b = _ids(tok, ex.text_a.split()), _ids(tok, (ex.text_b or "").split())
    return [CLS, *a, SEP, SEP, *b, SEP]


def _nli_batch(tok: Tokenizer, exs: list[ClassificationExample]) -> dict:
    ids = _pad([_pair(tok, e) for e in exs])
    return {
        "input_ids": ids,
        "attention_mask": (ids != PAD).long(),
        "labels": torch.tensor([e.label for e in exs]),
    }


def _nli_score(model: torch.nn.Module, tok: Tokenizer, exs: list[ClassificationExample]) -> float:
    with torch.no_grad():
        batch = _nli_batch(tok, exs)
        pred = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits.argmax(-1)
    return 100.0 * (pred == batch["labels"]).float().mean().item()


def _tag_batch(tok: Tokenizer, exs: list[TaggingExample]) -> dict:
    ids = _pad([[CLS, *_ids(tok, e.tokens), SEP] for e in exs])
    labels = _pad([[-100, *e.tags, -100] for e in exs], -100)
    return {"input_ids": ids, "attention_mask": (ids != PAD).long(), "labels": labels}


def _tag_score(model: torch.nn.Module, tok: Tokenizer, exs: list[TaggingExample]) -> float:
    with torch.no_grad():
        b = _tag_batch(tok, exs)
        pred = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits.argmax(-1)
    mask = b["labels"] != -100
    return 100.0 * (pred[mask] == b["labels"][mask]).float().mean().item()  # = micro F1


def _qa_encode(tok: Tokenizer, ex: SpanQAExample) -> tuple[list[int], int, int, int]:
    q = _ids(tok, ex.question.split())
    words = ex.context.split(" ")
    ctx_start = len(q) + 3
    start = end = 0
    if ex.answers:
        a = ex.answers[0]
        first = len(ex.context[: a.start].split())
        start, end = ctx_start + first, ctx_start + first + len(a.text.split()) - 1
    return [CLS, *q, SEP, SEP, *_ids(tok, words), SEP], start, end, ctx_start


def _qa_batch(tok: Tokenizer, exs: list[SpanQAExample]) -> dict:
    enc = [_qa_encode(tok, e) for e in exs]
    ids = _pad([e[0] for e in enc])
    return {
        "input_ids": ids,
        "attention_mask": (ids != PAD).long(),
        "start_positions": torch.tensor([e[1] for e in enc]),
        "end_positions": torch.tensor([e[2] for e in enc]),
    }


def _f1(pred: list[str], gold: list[str]) -> float:
    common = sum(min(pred.count(w), gold.count(w)) for w in set(pred))
    if not common:
        return 0.0
    p, r = common / len(pred), common / len(gold)
    return 2 * p * r / (p + r)


def _qa_score(model: torch.nn.Module, tok: Tokenizer, exs: list[SpanQAExample]) -> float:
    b = _qa_batch(tok, exs)
    with torch.no_grad():
        out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
    scores = []
    for k, ex in enumerate(exs):
        ctx0 = _qa_encode(tok, ex)[3]
        words = ex.context.split(" ")
        s_log = out.start_logits[k, ctx0 : ctx0 + len(words)]
        e_log = out.end_logits[k, ctx0 : ctx0 + len(words)]
        s = int(s_log.argmax())
        e = s + int(e_log[s : s + 6].argmax())
        scores.append(_f1(words[s : e + 1], ex.answers[0].text.split()))
    return 100.0 * sum(scores) / len(scores)


FAMILIES = {
    "xnli": (
        lambda tok: XLMRobertaForSequenceClassification(_config(tok, num_labels=3)),
        _nli_batch,
        _nli_score,
        100 / 3,
        6,
    ),
    "udpos": (
        lambda tok: XLMRobertaForTokenClassification(_config(tok, num_labels=17)),
        _tag_batch,
        _tag_score,
        30.0,
        2,
    ),
    "xquad": (
        lambda tok: XLMRobertaForQuestionAnswering(_config(tok)),
        _qa_batch,
        _qa_score,
        30.0,
        8,
    ),
}


def _run(world: tuple[Path, Tokenizer], name: str) -> tuple[dict[str, float], float]:
    root, tok = world
    task = get_task(name)
    build, batch, score, floor, epochs = FAMILIES[name]
    train = load_examples(task, "train", source="local", local_dir=root)
    model = build(tok)
    _train(model, lambda: [batch(tok, c) for c in _chunks(train, 32, len(train))], epochs)
    scores = {
        lang: score(model, tok, load_examples(task, "eval", lang, source="local", local_dir=root))
        for lang in task.languages
    }
    return scores, floor


@pytest.mark.parametrize("name", TASKS)
def test_english_learns_and_transfer_falls_with_strength(world, name: str) -> None:
    scores, floor = _run(world, name)
    strength = read_metadata(world[0])["languages"]
    langs = sorted(scores)
    rho = spearmanr(
        [strength[lang]["strength"] for lang in langs], [scores[lang] for lang in langs]
    )[0]
    summary = ", ".join(
        f"{lang}={scores[lang]:.0f}"
        for lang in sorted(langs, key=lambda x: strength[x]["strength"])
    )
    assert scores["en"] >= floor + 20 if name == "xnli" else scores["en"] > floor, summary
    print(f"\n{name}: spearman {rho:.2f}: {summary}")
    assert rho <= -0.5, f"spearman {rho:.2f}: {summary}"
