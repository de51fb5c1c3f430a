"""The real-tokenizer path: XLM-R's SentencePiece tokenizer (250,002 pieces) on real text in
scripts without spaces (zh, ja, th), right-to-left (ar, he) and with combining marks (hi, bn).

The tokenizer is XLM-R's `tokenizer.json` as the `xlmr-tokenizer` extra ships it
(pyproject.toml; scripts/setup.sh installs it). Golden values come from outside this code:
the XLM-R ids of "Hello World!" that transformers' own XLM-R tokenizer test pins (from
fairseq's `xlmr.encode`), and XTREME's rules re-implemented here from their scripts:
per-word `tokenize` for label alignment (`utils_tag.py`) and the cut of long sentences at
word boundaries (`utils_preprocess.py`: a word whose sub-words would pass the window starts
the next sentence).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import datasets
import numpy as np
import pytest
import torch
from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

from evaluation.data.convert import to_examples
from evaluation.data.examples import ClassificationExample, SpanQAExample, TaggingExample
from evaluation.data.schemas import schema_for
from evaluation.tasks import get_task
from trainers import span
from trainers.heads import CLASSIFICATION_HEAD, IGNORE, TAGGING_HEAD
from trainers.taskmodel import embedder

# Real sentences, segmented into words as UD and PAN-X give them.
WORDS = {
    "zh": "我们 在 北京 的 天安门 广场 上 拍照 。".split(),
    "ja": "東京 は 日本 の 首都 で 、 人口 が 多い 。".split(),
    "th": "ฉัน ชอบ กิน ข้าว ผัด กับ ไข่ ดาว ที่ ร้าน นี้".split(),
    "ar": "ذهب الولد إلى المدرسة في الصباح الباكر .".split(),
    "he": "הילד הלך לבית הספר בבוקר המוקדם .".split(),
    "hi": "भारत की राजधानी नई दिल्ली है और यह बहुत बड़ा शहर है ।".split(),
}


@pytest.fixture(scope="module")
def xlmr() -> Any:
    path = resources.files("semantra_multilingual") / "assets/multilingual-e5-small/tokenizer.json"
    assert path.is_file(), "install the xlmr-tokenizer extra (scripts/setup.sh does)"
    return XLMRobertaTokenizerFast(tokenizer_file=str(path))


def test_it_is_xlmr_sentencepiece(xlmr: Any) -> None:
    assert len(xlmr) == 250_002
    # transformers' test_tokenization_xlm_roberta.py, from fairseq's xlmr.base.encode.
    assert xlmr("Hello World!")["input_ids"] == [0, 35378, 6661, 38, 2]


def _official_first_positions(xlmr: Any, words: list[str]) -> list[int]:
    """XTREME's utils_tag.py: each word tokenized alone (an empty result becomes <unk>), the
    label on its first piece, after <s>."""
    positions, at = [], 1
    for word in words:
        positions.append(at)
        at += max(1, len(xlmr.tokenize(word)))
    return positions


def _tags(words: list[str]) -> tuple[int, ...]:
    return tuple((3 * i + 1) % 7 for i in range(len(words)))


def _oracle(features: list[dict], n_labels: int = 7) -> list[np.ndarray]:
    """Logits that put each labelled position on its gold label."""
    outputs = []
    for feat in features:
        out = np.zeros((len(feat["input_ids"]), n_labels), dtype=np.float32)
        for pos, label in enumerate(feat["labels"]):
            if label != IGNORE:
                out[pos, label] = 5.0
        outputs.append(out)
    return outputs


@pytest.mark.parametrize("lang", sorted(WORDS))
def test_tagging_labels_the_first_subword_of_every_word(xlmr: Any, lang: str) -> None:
    words = WORDS[lang]
    ex = TaggingExample(lang, tuple(words), _tags(words))
    (feat,) = TAGGING_HEAD.featurize([ex], xlmr, 128, True)
    labelled = [p for p, label in enumerate(feat["labels"]) if label != IGNORE]
    assert labelled == feat["first"] == _official_first_positions(xlmr, words)
    assert [feat["labels"][p] for p in labelled] == list(ex.tags)
    assert feat["input_ids"][0] == xlmr.cls_token_id and feat["input_ids"][-1] == 2
    spec = get_task("panx")
    decoded = TAGGING_HEAD.decode(_oracle([feat]), [feat], [ex], spec)
    assert decoded == [[spec.labels[t] for t in ex.tags]]


def _official_windows(xlmr: Any, words: list[str], max_len: int) -> list[list[str]]:
    """XTREME's utils_preprocess.py cut of one long sentence (max_len minus specials)."""
    room, used, out = max_len - 2, 0, [[]]
    for word in words:
        n = len(xlmr.tokenize(word))
        if used + n > room:
            out.append([])
            used = 0
        out[-1].append(word)
        used += n
    return [w for w in out if w]


def test_a_long_sentence_is_tagged_in_windows(xlmr: Any) -> None:
    """Every word of a 300-word sentence gets its own tag, window after window; before,
    words past the window were all tagged `O`."""
    words = [w for lang in ("hi", "zh", "ar", "th", "ja", "he") for w in WORDS[lang]] * 5
    ex = TaggingExample("long", tuple(words), _tags(words))
    features = TAGGING_HEAD.featurize([ex], xlmr, 32, True)
    assert len(features) > 5 and all(len(f["input_ids"]) <= 32 for f in features)
    cut = [list(ex.tokens[f["word_offset"] : f["word_offset"] + len(f["first"])]) for f in features]
    assert cut == _official_windows(xlmr, words, 32)
    spec = get_task("udpos")
    (decoded,) = TAGGING_HEAD.decode(_oracle(features, 17), features, [ex], spec)
    assert decoded == [spec.labels[t] for t in ex.tags]


def test_windows_of_several_sentences_are_joined_back_per_sentence(xlmr: Any) -> None:
    exs = [TaggingExample(k, tuple(w * 4), _tags(w * 4)) for k, w in sorted(WORDS.items())]
    features = TAGGING_HEAD.featurize(exs, xlmr, 24, True)
    spec = get_task("panx")
    decoded = TAGGING_HEAD.decode(_oracle(features), features, exs, spec)
    assert decoded == [[spec.labels[t] for t in ex.tags] for ex in exs]


# --- extractive QA: answer character offsets -------------------------------------------

QA = {  # (task, language, context, question, answer)
    "xquad-zh": ("xquad", "zh", "北京是中华人民共和国的首都，也是全国的政治、文化和国际交往中心。",
                 "北京是哪个国家的首都？", "中华人民共和国"),
    "xquad-th": ("xquad", "th", "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย และเป็นเมืองที่มีประชากรมากที่สุด",
                 "เมืองหลวงของประเทศไทยคืออะไร", "กรุงเทพมหานคร"),
    "xquad-hi": ("xquad", "hi", "भारत की राजधानी नई दिल्ली है। मुंबई देश का सबसे बड़ा शहर है।",
                 "भारत की राजधानी क्या है?", "नई दिल्ली"),
    "mlqa-ar": ("mlqa", "ar", "القاهرة هي عاصمة جمهورية مصر العربية وأكبر مدنها من حيث السكان.",
                "ما هي عاصمة مصر؟", "القاهرة"),
    "mlqa-zh": ("mlqa", "zh", "长江是亚洲最长的河流，全长约六千三百公里，流经中国多个省份。",
                "长江全长多少？", "约六千三百公里"),
    "mlqa-hi": ("mlqa", "hi", "गंगा नदी हिमालय से निकलती है और बंगाल की खाड़ी में गिरती है।",
                "गंगा कहाँ से निकलती है?", "हिमालय"),
    "tydiqa-ar": ("tydiqa", "ar", "تقع مدينة الرياض في وسط شبه الجزيرة العربية وهي عاصمة السعودية.",
                  "ما هي عاصمة السعودية؟", "الرياض"),
    "tydiqa-bn": ("tydiqa", "bn", "ঢাকা বাংলাদেশের রাজধানী এবং সবচেয়ে বড় শহর।",
                  "বাংলাদেশের রাজধানী কোনটি?", "ঢাকা"),
}  # fmt: skip


def _qa_example(task: str, lang: str, context: str, question: str, answer: str) -> SpanQAExample:
    """Through the task's converter, from a row with the Hub dataset's own schema."""
    spec = get_task(task)
    src = spec.eval[lang]
    start = context.index(answer)
    row: dict[str, Any] = {"id": f"{src.where_prefix[1] if src.where_prefix else ''}q1",
                           "context": context, "question": question,
                           "answers": {"text": [answer], "answer_start": [start]}}  # fmt: skip
    features = schema_for(src.dataset, src.config).features
    if "title" in features:
        row["title"] = "t"
    ds = datasets.Dataset.from_list([row], features=features)
    (ex,) = to_examples(spec, ds, src, lang)
    assert isinstance(ex, SpanQAExample)
    return ex


@pytest.mark.parametrize("case", sorted(QA))
@pytest.mark.parametrize("max_len", [384, 40])
def test_answer_offsets_survive_tokenization_and_windows(
    xlmr: Any, case: str, max_len: int
) -> None:
    ex = _qa_example(*QA[case])
    answer = ex.answers[0]
    assert ex.context[answer.start : answer.start + len(answer.text)] == answer.text
    features = span.featurize([ex], xlmr, max_len, True)
    holding = [f for f in features if f["start"] > 0]
    assert holding, "no window holds the answer"
    for f in holding:
        got = ex.context[f["offsets"][f["start"]][0] : f["offsets"][f["end"]][1]]
        # A piece may run past the answer where the script has no spaces; never short.
        assert answer.text in got and len(got) <= len(answer.text) + 3, (got, answer.text)
    outputs = []
    for f in features:
        out = np.full((len(f["input_ids"]), 2), -5.0, dtype=np.float32)
        if f["start"] > 0:
            out[f["start"], 0] = out[f["end"], 1] = 5.0
        outputs.append(out)
    predicted = span.decode(outputs, features, [ex], get_task(QA[case][0]))[ex.id]
    assert answer.text in predicted and predicted == got.strip()


def test_questions_are_cut_on_piece_boundaries(xlmr: Any) -> None:
    ex = _qa_example(*QA["xquad-th"])
    long_q = SpanQAExample(ex.id, ex.context, ex.question * 8, ex.answers)
    (cut,) = span._questions([long_q], xlmr, 40)
    assert long_q.question.startswith(cut) and len(xlmr.tokenize(cut)) == 10


# --- truncation --------------------------------------------------------------------------


@pytest.mark.parametrize("lang", sorted(WORDS))
def test_classification_truncates_to_the_window(xlmr: Any, lang: str) -> None:
    text = "".join(WORDS[lang]) * 6 if lang in ("zh", "ja", "th") else " ".join(WORDS[lang] * 6)
    pair = ClassificationExample("p", text, text[::-1], 0)
    single = ClassificationExample("s", text, None, 0)
    (f_pair,) = CLASSIFICATION_HEAD.featurize([pair], xlmr, 24, False)
    (f_one,) = CLASSIFICATION_HEAD.featurize([single], xlmr, 24, False)
    for ids in (f_pair["input_ids"], f_one["input_ids"]):
        assert len(ids) == 24 and ids[0] == 0 and ids[-1] == 2
    seps = [i for i, t in enumerate(f_pair["input_ids"]) if t == 2]
    assert len(seps) == 3 and seps[1] == seps[0] + 1  # <s> A </s></s> B </s>, both kept


# --- retrieval pooling -------------------------------------------------------------------


def test_mean_pooling_ignores_padding(xlmr: Any) -> None:
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=len(xlmr), hidden_size=16, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=32)  # fmt: skip
    encoder = XLMRobertaModel(config).eval()
    texts = [" ".join(w) if k not in ("zh", "ja", "th") else "".join(w) for k, w in WORDS.items()]
    texts += ["短い", "ok"]
    embed = embedder(encoder, xlmr, layer=1, max_len=64, batch_size=3)
    pooled = embed(texts)
    for text, row in zip(texts, pooled, strict=True):
        ids = torch.tensor([xlmr(text, truncation=True, max_length=64)["input_ids"]])
        with torch.inference_mode():
            states = encoder(input_ids=ids, output_hidden_states=True).hidden_states[1][0]
        np.testing.assert_allclose(row, states.mean(0).numpy(), rtol=1e-4, atol=1e-5)
