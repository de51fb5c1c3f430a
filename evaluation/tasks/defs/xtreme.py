"""XTREME v1 target tasks that XTREME-R dropped, kept to reproduce Phang et al. 2020."""

from evaluation.tasks.registry import register
from evaluation.tasks.spec import Format, Role, Source, TaskSpec

PAWSX_LANGS = "de en es fr ja ko zh".split()
BUCC_LANGS = "de fr ru zh".split()

# XTREME v1's per-task language lists, exactly as google-research/xtreme's evaluate.py
# (commit 838c13b, lines 141-154: `XTREME_TASK2LANGS`) gives them, in its order. Four tasks
# have fewer languages than in XTREME-R (whose lists are the registry's: defs/xtreme_r.py);
# jiant's XTREME scripts (xtreme_runconfig_writer.py:7-20 + EXTRA_UDPOS_TEST_LANGS, line 21)
# score the same sets.
XTREME_V1_LANGUAGES = {
    "pawsx": tuple(PAWSX_LANGS),
    "xnli": tuple("ar bg de el en es fr hi ru sw th tr ur vi zh".split()),
    "panx": tuple(
        "ar he vi id jv ms tl eu ml ta te af nl en de el bn hi mr ur fa fr it pt es bg ru ja "
        "ka ko th sw yo my zh kk tr et fi hu".split()
    ),
    "udpos": tuple(
        "af ar bg de el en es et eu fa fi fr he hi hu id it ja kk ko mr nl pt ru ta te th tl "
        "tr ur vi yo zh".split()
    ),
    "bucc2018": tuple(BUCC_LANGS),
    "tatoeba": tuple(
        "ar he vi id jv tl eu ml ta te af nl de el bn hi mr ur fa fr it pt es bg ru ja ka ko "
        "th sw zh kk tr et fi hu".split()
    ),
    "xquad": tuple("en es de el ru tr ar vi th zh hi".split()),
    "mlqa": tuple("en es de ar hi vi zh".split()),
    "tydiqa": tuple("en ar bn fi id ko ru sw te".split()),
}
PAWSX = "google-research-datasets/paws-x"

register(
    TaskSpec(
        name="pawsx",
        train_examples=49_401,
        eval_examples=2_000,
        role=Role.TARGET,
        format=Format.CLASSIFICATION,
        languages=tuple(PAWSX_LANGS),
        metrics=("accuracy",),
        headline="accuracy",
        scorer="accuracy",
        version=1,
        columns={"text_a": "sentence1", "text_b": "sentence2", "label": "label"},
        labels=("0", "1"),
        train=(Source(PAWSX, "en", "train"),),
        dev=(Source(PAWSX, "en", "validation"),),
        eval={lang: Source(PAWSX, lang, "test") for lang in PAWSX_LANGS},
        group="classification",
        description="Paraphrase identification (XTREME v1).",
    ),
    TaskSpec(
        name="bucc2018",
        train_examples=0,
        eval_examples=30_000,
        role=Role.TARGET,
        format=Format.RETRIEVAL,
        languages=tuple(BUCC_LANGS),
        metrics=("f1", "precision", "recall"),
        headline="f1",
        scorer="bucc",
        version=2,  # 2: threshold tuned on the validation gold, no longer on the test gold
        # google/xtreme's bucc18 rows are the gold pairs; its *_lang columns hold sentence ids.
        columns={
            "source": "source_sentence",
            "target": "target_sentence",
            "source_id": "source_lang",
            "target_id": "target_lang",
        },
        eval={lang: Source("google/xtreme", f"bucc18.{lang}", "test") for lang in BUCC_LANGS},
        tune_split="validation",
        group="retrieval",
        description="Parallel sentence mining; margin threshold tuned on the validation gold.",
    ),
)
