"""Training data in other languages: an arm's `langs[...]` / `translate-train` through
`DataAccess.train`, on fixtures whose XNLI training sets are translated copies of MNLI's."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

import pytest

from evaluation.tasks import get_task
from storage.errors import UserError
from trainers.celldata import DataAccess

MNLI = get_task("mnli")
N_TRAIN = 24
# XNLI's languages other than English (Conneau et al. 2018, Table 1), written out here.
XNLI_OTHERS = "ar bg de el es fr hi ru sw th tr ur vi zh".split()
ENGLISH = "nyu-mll/glue/mnli/train/"


@pytest.fixture(scope="module")
def access(tmp_path_factory: pytest.TempPathFactory) -> DataAccess:
    from evaluation.data.fixtures import write_fixtures

    root = write_fixtures(tmp_path_factory.mktemp("langs") / "fx", n_per_split=8,
                          n_train=N_TRAIN, tasks=[MNLI])  # fmt: skip
    return DataAccess("local", str(root), None, None, None, None)


def in_languages(access: DataAccess, *langs: str, **changes: object) -> list:
    return replace(access, train_languages={"mnli": langs}, **changes).train(MNLI)


def language_of(example) -> str:
    return "en" if example.id.startswith(ENGLISH) else example.id.split("/")[2]


def row(example) -> int:
    return int(example.id.rsplit("/", 1)[1])


def test_english_is_the_default(access: DataAccess) -> None:
    plain = access.train(MNLI)
    assert len(plain) == N_TRAIN and all(ex.id.startswith(ENGLISH) for ex in plain)
    assert in_languages(access, "en") == plain


def test_langs_pool_english_and_its_translation_in_turn(access: DataAccess) -> None:
    pooled = in_languages(access, "de", "en")
    assert [language_of(ex) for ex in pooled] == ["de", "en"] * N_TRAIN
    assert [row(ex) for ex in pooled] == [i for i in range(N_TRAIN) for _ in "de"]
    german, english = pooled[0::2], pooled[1::2]
    assert english == access.train(MNLI)
    for de, en in zip(german, english, strict=True):
        assert de.label == en.label  # the same example, translated
        for de_text, en_text in ((de.text_a, en.text_a), (de.text_b, en.text_b)):
            assert numbers(de_text) == numbers(en_text)  # numbers are shared by all languages
    changed = [de.text_a != en.text_a for de, en in zip(german, english, strict=True)]
    assert sum(changed) > N_TRAIN // 2


def numbers(text: str | None) -> Counter[str]:
    return Counter(re.findall(r"\d+", text or ""))


def test_translate_train_is_every_translation_and_no_english(access: DataAccess) -> None:
    every = in_languages(access, *sorted(MNLI.translated))
    assert sorted(MNLI.translated) == XNLI_OTHERS
    assert Counter(language_of(ex) for ex in every) == dict.fromkeys(XNLI_OTHERS, N_TRAIN)
    assert [language_of(ex) for ex in every[: len(XNLI_OTHERS)]] == XNLI_OTHERS  # in turn


def test_n_draws_n_in_total_from_the_pool_the_same_every_time(access: DataAccess) -> None:
    pool = [ex.id for ex in in_languages(access, "de", "hi", "sw")]
    ten = [ex.id for ex in in_languages(access, "de", "hi", "sw", train_sizes={"mnli": 10})]
    assert len(ten) == 10 and set(ten) <= set(pool)
    assert ten == sorted(ten, key=pool.index)
    again = replace(access, max_dev=3)  # another cell's settings: the same draw
    assert ten == [ex.id for ex in in_languages(again, "de", "hi", "sw", train_sizes={"mnli": 10})]
    with pytest.raises(UserError, match=r"mnli: 72 training examples, fewer than the n=73"):
        in_languages(access, "de", "hi", "sw", train_sizes={"mnli": 73})


def test_a_data_cap_caps_the_pool_not_each_language(access: DataAccess) -> None:
    capped = in_languages(access, "de", "en", max_train=10)
    assert [(language_of(ex), row(ex)) for ex in capped] == [
        (lang, i) for i in range(5) for lang in ("de", "en")
    ]


def test_a_language_without_training_data_is_a_user_error(access: DataAccess) -> None:
    with pytest.raises(UserError, match=r"task 'mnli' has no training data in 'xx'"):
        in_languages(access, "xx")
    with pytest.raises(UserError, match=r"task 'qqp' has no training data in 'de'"):
        replace(access, train_languages={"qqp": ("de",)}).train(get_task("qqp"))
