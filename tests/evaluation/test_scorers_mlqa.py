"""MLQA's per-language normalizer: each quirk of the official script."""

import pytest

from evaluation.scorers.mlqa import mixed_segmentation, normalize_answer, punctuation, score


def test_punctuation_is_unicode_p_plus_ascii_symbols():
    punct = punctuation()
    assert {"«", "»", "¿", "、", "。", "٪", "—"} <= punct  # category P*
    assert {"$", "+", "<", "=", ">", "^", "`", "|", "~"} <= punct  # ASCII, category S
    assert "€" not in punct and "°" not in punct  # other symbols stay


@pytest.mark.parametrize(
    ("text", "lang", "normalized"),
    [
        ("«¡Hola, $mundo!»", "es", "hola mundo"),
        ("5 €", "en", "5 €"),
        ("The cat and a dog, an owl", "en", "cat and dog owl"),
        ("El gato y la casa de los Lalo", "es", "gato y casa de lalo"),
        ("unos y unas, un, una, las", "es", "y"),
        ("Der Hund, die Katze und das Haus des Mannes", "de", "hund katze und haus mannes"),
        ("ein eine einen einem eines einer den dem Einer", "de", ""),
        ("Cái bàn của tôi là những chiếc ghế", "vi", "bàn tôi ghế"),
        ("एक लड़का", "hi", "एक लड़का"),
        ("the 猫", "zh", "the 猫"),  # no article removal for zh
    ],
)
def test_articles_per_language(text, lang, normalized):
    assert normalize_answer(text, lang) == normalized


def test_arabic_al_is_removed_everywhere_even_mid_word():
    assert normalize_answer("الكتاب", "ar") == "كتاب"
    assert normalize_answer("مالك", "ar") == "م ك"  # "ال" in the middle of a word
    assert normalize_answer("في البيت", "ar") == "في بيت"


def test_chinese_mixed_segmentation():
    assert mixed_segmentation("北京abc def大学") == ["北", "京", "abc", "def", "大", "学"]
    assert normalize_answer("北京 大学", "zh") == "北 京 大 学"
    assert normalize_answer("iPhone 手机。", "zh") == "iphone 手 机"
    # Outside U+4E00-U+9FA5 (here U+9FA6 and a kana) characters stay in the buffer.
    assert normalize_answer("\u9fa6かな", "zh") == "\u9fa6かな"


def test_chinese_partial_overlap_counts_characters():
    result = score({"q": "北京大学"}, {"q": ["北京"]}, language="zh")
    # 4 predicted tokens, 2 gold, 2 shared: P 1/2, R 1 -> F1 2/3.
    assert result["exact_match"] == 0.0
    assert result["f1"] == pytest.approx(200 / 3)


def test_language_decides_the_normalizer():
    # Same strings, different verdicts: "el" is an article in Spanish only.
    assert score({"q": "el gato"}, {"q": ["gato"]}, language="es")["exact_match"] == 100.0
    assert score({"q": "el gato"}, {"q": ["gato"]}, language="en")["exact_match"] == 0.0


def test_multiple_gold_answers_and_empty_answers():
    result = score({"q": "Berlín"}, {"q": ["la ciudad", "berlín."]}, language="es")
    assert result == {"exact_match": 100.0, "f1": 100.0}
    empty = score({"q": "¿?"}, {"q": ["la"]}, language="es")  # both normalize to ""
    assert empty == {"exact_match": 100.0, "f1": 0.0}


def test_unknown_language_is_rejected():
    with pytest.raises(ValueError, match="'fr'"):
        score({"q": "x"}, {"q": ["x"]}, language="fr")
