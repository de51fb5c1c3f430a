"""`protocol: xtreme` and `xtreme_r` give the benchmarks' own language lists, exactly.

The lists below are copied character for character from google-research/xtreme's
evaluate.py (commit 838c13b, lines 141-178: XTREME_TASK2LANGS and XTREME_R_TASK2LANGS), the
scorer the benchmarks' leaderboards use. LAReQA's list there is empty (it is scored inside
evaluate_retrieval.py over XQuAD-R's 11 languages), so it is checked against XQuAD-R.
"""

from __future__ import annotations

import pytest

from evaluation.tasks.protocols import PROTOCOLS, XTREME, XTREME_R, get_protocol
from orchestrator.spec import SweepSpec
from storage.errors import UserError

XTREME_TASK2LANGS = {
    'pawsx': 'de,en,es,fr,ja,ko,zh'.split(','),
    'xnli': 'ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh'.split(','),
    'panx': 'ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,'
            'it,pt,es,bg,ru,ja,ka,ko,th,sw,yo,my,zh,kk,tr,et,fi,hu'.split(','),
    'udpos': 'af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,'
             'nl,pt,ru,ta,te,th,tl,tr,ur,vi,yo,zh'.split(','),
    'bucc2018': 'de,fr,ru,zh'.split(','),
    'tatoeba': 'ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,'
               'pt,es,bg,ru,ja,ka,ko,th,sw,zh,kk,tr,et,fi,hu'.split(','),
    'xquad': 'en,es,de,el,ru,tr,ar,vi,th,zh,hi'.split(','),
    'mlqa': 'en,es,de,ar,hi,vi,zh'.split(','),
    'tydiqa': 'en,ar,bn,fi,id,ko,ru,sw,te'.split(','),
}  # fmt: skip
XTREME_R_TASK2LANGS = {
    'xnli': 'ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh'.split(','),
    'panx': 'ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,'
            'it,pt,es,bg,ru,ja,ka,ko,th,sw,yo,my,zh,kk,tr,et,fi,hu,qu,pl,uk,az,'
            'lt,pa,gu,ro'.split(','),
    'udpos': 'af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,'
             'nl,pt,ru,ta,te,th,tl,tr,ur,vi,yo,zh,lt,pl,uk,wo,ro'.split(','),
    'tatoeba': 'ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,'
               'pt,es,bg,ru,ja,ka,ko,th,sw,zh,kk,tr,et,fi,hu,az,lt,pl,uk,'
               'ro'.split(','),
    'xcopa': 'et,ht,id,it,qu,sw,ta,th,tr,vi,zh'.split(','),
    'lareqa': [],
    'mewslix': 'ar,de,en,es,fa,ja,pl,ro,ta,tr,uk'.split(','),
    'xquad': 'en,es,de,el,ru,tr,ar,vi,th,zh,hi,ro'.split(','),
    'mlqa': 'en,es,de,ar,hi,vi,zh'.split(','),
    'tydiqa': 'en,ar,bn,fi,id,ko,ru,sw,te'.split(','),
}  # fmt: skip
XQUAD_R = "ar,de,el,en,es,hi,ru,th,tr,vi,zh".split(",")
OFFICIAL = {"xtreme": XTREME_TASK2LANGS, "xtreme_r": XTREME_R_TASK2LANGS}


def spec(protocol: str, targets: list[str]) -> SweepSpec:
    return SweepSpec.model_validate(
        {
            "name": "p",
            "storage": "/tmp/p",
            "models": ["tiny-s"],
            "intermediate_tasks": ["none"],
            "target_tasks": targets,
            "seeds": [0],
            "protocol": protocol,
            "data": {"source": "hub", "native_dir": "/n"},
        }
    )


@pytest.mark.parametrize("protocol", ["xtreme", "xtreme_r"])
def test_each_protocol_scores_exactly_the_benchmarks_languages(protocol: str) -> None:
    official = OFFICIAL[protocol]
    assert set(PROTOCOLS[protocol].tasks) == set(official)
    s = spec(protocol, sorted(official))
    for task, languages in official.items():
        expected = XQUAD_R if task == "lareqa" else languages
        chosen = s.eval_languages(task)
        assert sorted(chosen) == sorted(expected) and len(chosen) == len(expected), task


def test_the_four_tasks_xtreme_r_extended() -> None:
    sizes = {t: (len(XTREME.task_languages(t)), len(XTREME_R.task_languages(t)))
             for t in ("udpos", "panx", "xquad", "tatoeba")}  # fmt: skip
    assert sizes == {"udpos": (33, 38), "panx": (40, 48), "xquad": (11, 12), "tatoeba": (36, 41)}


def test_a_task_outside_the_benchmark_keeps_its_languages_and_has_no_stages() -> None:
    s = spec("xtreme", ["xcopa", "pawsx"])
    assert len(s.eval_languages("xcopa")) == 11 and s.stages("xcopa") == ()
    assert len(spec("xtreme_r", ["pawsx"]).eval_languages("pawsx")) == 7


def test_stages_and_retrieval_layers() -> None:
    r = spec("xtreme_r", ["xcopa", "tatoeba", "xnli"])
    assert (r.stages("xcopa"), r.stages("tatoeba"), r.stages("xnli")) == (("siqa",), ("squad",), ())
    assert spec("xtreme", ["tatoeba"]).stages("tatoeba") == ()
    # jiant reads hidden state 14 of XLM-R Large's 24 layers, XTREME-R's scripts 13.
    assert (XTREME.retrieval_layer(24), XTREME_R.retrieval_layer(24)) == (14, 13)


def test_an_unknown_protocol_suggests_a_near_one() -> None:
    with pytest.raises(UserError, match="did you mean 'xtreme_r'"):
        get_protocol("xtremer")
