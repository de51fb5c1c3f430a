"""XTREME v1 target tasks that XTREME-R dropped, kept to reproduce Phang et al. 2020."""

from evaluation.tasks.registry import register
from evaluation.tasks.spec import Format, Role, Source, TaskSpec

PAWSX_LANGS = "de en es fr ja ko zh".split()
BUCC_LANGS = "de fr ru zh".split()
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
