"""Encoders other than XLM-R that `AutoModel` loads (BERT-architecture such as mBERT, and
mDeBERTa's DeBERTa-v2) work with every head: loaded from a Hugging Face directory as a
user has it, each head trains (its loss falls) and predicts, and retrieval embeds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from synth_examples import synthetic_texts
from test_heads import CASES, spec, tokenization
from tokenizers import BertWordPieceTokenizer
from transformers import BertConfig, BertModel, BertTokenizerFast, DebertaV2Config, DebertaV2Model

from evaluation.tasks import get_task
from trainers.checkpoint_facts import read_facts, refusal
from trainers.formats import head_for, num_labels
from trainers.loop import TaskData, train
from trainers.models import Pretrained, load_dir
from trainers.taskmodel import TaskModel, embedder, predictor, task_features

SHAPE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
         "intermediate_size": 64, "max_position_embeddings": 128}  # fmt: skip


def _tokenizer(directory: Path) -> BertTokenizerFast:
    wordpiece = BertWordPieceTokenizer(lowercase=False)
    wordpiece.train_from_iterator(synthetic_texts(400), vocab_size=600)
    wordpiece.save_model(str(directory))
    return BertTokenizerFast(vocab_file=str(directory / "vocab.txt"), do_lower_case=False)


@pytest.fixture(scope="module", params=["bert", "deberta-v2"])
def encoder_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp(request.param)
    tok = _tokenizer(directory)
    torch.manual_seed(0)
    if request.param == "bert":
        model = BertModel(BertConfig(vocab_size=len(tok), **SHAPE))
    else:
        model = DebertaV2Model(DebertaV2Config(vocab_size=len(tok), **SHAPE))
    model.save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


@pytest.fixture
def encoder(encoder_dir: Path) -> Pretrained:
    # transformers has no sdpa attention for DeBERTa: validate says to set eager.
    eager = read_facts("local_dir", str(encoder_dir)).architecture == "deberta-v2"
    return load_dir(str(encoder_dir), attention="eager" if eager else "sdpa")


def test_the_checkpoint_is_read_as_it_is(encoder_dir: Path) -> None:
    facts = read_facts("local_dir", str(encoder_dir))
    assert (facts.layers, facts.hidden, facts.heads, facts.ffn) == (2, 32, 2, 64)
    assert facts.architecture in ("bert", "deberta-v2") and refusal(facts, "eager") is None
    sdpa = refusal(facts, "sdpa")
    assert (sdpa is None) == (facts.architecture == "bert")
    model = load_dir(str(encoder_dir), attention="eager").encoder
    assert facts.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("task", sorted(CASES))
def test_every_head_trains_on_it(task: str, encoder: Pretrained) -> None:
    task_spec = get_task(task)
    examples = CASES[task](synthetic_texts(32, seed=1))
    tok = tokenization(encoder)
    torch.manual_seed(0)
    head = head_for(task_spec).build(encoder.encoder.config.hidden_size,
                                     num_labels(task_spec, examples))  # fmt: skip
    model = TaskModel(encoder.encoder, {task: head})
    data = TaskData(task_spec, task_features(task_spec, examples, tok, "train", True), [], tok)
    losses: list[float] = []
    train(model, {task: data}, spec(steps=100), on_step=lambda _s, loss: losses.append(loss))
    assert sum(losses[-10:]) < 0.9 * sum(losses[:10])
    assert len(predictor(model, task_spec, tok, 16, False)(examples[:5])) == 5


def test_retrieval_embeds_with_it(encoder: Pretrained) -> None:
    texts = synthetic_texts(7, seed=3)
    vectors = embedder(encoder.encoder, encoder.tokenizer, 2, 32, batch_size=3)(texts)
    assert vectors.shape == (7, 32) and torch.isfinite(torch.from_numpy(vectors)).all()
