"""English intermediate tasks (Phang et al. 2020), plus SocialIQA and COPA, which make
up XCOPA's English training recipe. Intermediate tasks are scored only on their English
dev split, for early stopping.
"""

from evaluation.tasks.defs.xtreme_r import XNLI_LANGS
from evaluation.tasks.registry import register
from evaluation.tasks.spec import Format, Role, Source, TaskSpec

NLI_LABELS = ("entailment", "neutral", "contradiction")
NLI_COLUMNS = {"text_a": "premise", "text_b": "hypothesis", "label": "label"}
QA_COLUMNS = {"id": "id", "context": "context", "question": "question", "answers": "answers"}
EN = ("en",)
ACC = ("accuracy",)
QA = ("f1", "exact_match")
GLUE = "nyu-mll/glue"


def _mc(
    name: str,
    dataset: str,
    config: str | None,
    columns: dict,
    labels: tuple,
    dev: str,
    train_examples: int,
) -> TaskSpec:
    return TaskSpec(
        name=name,
        role=Role.INTERMEDIATE,
        format=Format.MULTIPLE_CHOICE,
        languages=EN,
        metrics=ACC,
        headline="accuracy",
        scorer="accuracy",
        version=1,
        columns=columns,
        labels=labels,
        train=(Source(dataset, config, "train"),),
        dev=(Source(dataset, config, dev),),
        report_split=dev,
        train_examples=train_examples,
    )


register(
    TaskSpec(
        name="anli",
        train_examples=1_265_000,
        eval_examples=0,
        role=Role.INTERMEDIATE,
        format=Format.CLASSIFICATION,
        languages=EN,
        metrics=ACC,
        headline="accuracy",
        scorer="accuracy",
        version=1,
        columns=NLI_COLUMNS,
        labels=NLI_LABELS,
        # ANLI+ (Phang et al.): ANLI rounds 1-3 pooled with MNLI and SNLI (SNLI's -1
        # labels dropped); FEVER-NLI joins when a local directory for it is given.
        train=(
            Source("facebook/anli", "plain_text", "train_r1"),
            Source("facebook/anli", "plain_text", "train_r2"),
            Source("facebook/anli", "plain_text", "train_r3"),
            Source(GLUE, "mnli", "train"),
            Source("stanfordnlp/snli", "plain_text", "train", drop_unlabeled=True),
            Source("fever_nli", None, "train", native="fever_nli", optional=True),
        ),
        dev=(
            Source("facebook/anli", "plain_text", "dev_r1"),
            Source("facebook/anli", "plain_text", "dev_r2"),
            Source("facebook/anli", "plain_text", "dev_r3"),
        ),
        report_split="dev",
        description="ANLI+ (ANLI r1-r3 + MNLI + SNLI [+ FEVER-NLI]).",
    ),
    TaskSpec(
        name="mnli",
        train_examples=392_702,
        eval_examples=0,
        role=Role.INTERMEDIATE,
        format=Format.CLASSIFICATION,
        languages=EN,
        metrics=ACC,
        headline="accuracy",
        scorer="accuracy",
        version=1,
        columns=NLI_COLUMNS,
        labels=NLI_LABELS,
        train=(Source(GLUE, "mnli", "train"),),
        # XNLI's training sets are MNLI's training set machine-translated into XNLI's 14
        # other languages (Conneau et al. 2018, "XNLI: Evaluating Cross-lingual Sentence
        # Representations", arXiv 1809.05053, its TRANSLATE-TRAIN baseline; the
        # facebook/xnli dataset card, docs/xtreme_r.md §4): config = language, split train.
        translated={
            lang: Source("facebook/xnli", lang, "train") for lang in XNLI_LANGS if lang != "en"
        },
        dev=(Source(GLUE, "mnli", "validation_matched"),),
        report_split="validation_matched",
    ),
    TaskSpec(
        name="qqp",
        train_examples=363_846,
        eval_examples=0,
        role=Role.INTERMEDIATE,
        format=Format.CLASSIFICATION,
        languages=EN,
        metrics=ACC,
        headline="accuracy",
        scorer="accuracy",
        version=1,
        columns={"text_a": "question1", "text_b": "question2", "label": "label"},
        labels=("not_duplicate", "duplicate"),
        train=(Source(GLUE, "qqp", "train"),),
        dev=(Source(GLUE, "qqp", "validation"),),
        report_split="validation",
    ),
    TaskSpec(
        name="squad",
        train_examples=87_599,
        eval_examples=0,
        role=Role.INTERMEDIATE,
        format=Format.SPAN_QA,
        languages=EN,
        metrics=QA,
        headline="f1",
        scorer="squad",
        version=1,
        columns=QA_COLUMNS,
        train=(Source("rajpurkar/squad", "plain_text", "train"),),
        dev=(Source("rajpurkar/squad", "plain_text", "validation"),),
        report_split="validation",
    ),
    TaskSpec(
        name="squad_v2",
        train_examples=130_319,
        eval_examples=0,
        role=Role.INTERMEDIATE,
        format=Format.SPAN_QA,
        languages=EN,
        metrics=QA,
        headline="f1",
        scorer="squad",
        version=1,
        columns=QA_COLUMNS,
        train=(Source("rajpurkar/squad_v2", "squad_v2", "train"),),
        dev=(Source("rajpurkar/squad_v2", "squad_v2", "validation"),),
        report_split="validation",
        description="SQuAD 2.0; unanswerable questions have empty answer lists.",
    ),
    _mc(
        "hellaswag",
        "Rowan/hellaswag",
        None,
        {"context": "ctx", "choices": "endings", "label": "label"},
        ("0", "1", "2", "3"),
        "validation",
        39_905,
    ),
    _mc(
        "cosmosqa",
        "allenai/cosmos_qa",
        None,
        {
            "context": "context",
            "question": "question",
            "choices": ("answer0", "answer1", "answer2", "answer3"),
            "label": "label",
        },
        ("0", "1", "2", "3"),
        "validation",
        25_262,
    ),
    _mc(
        "commonsenseqa",
        "tau/commonsense_qa",
        None,
        {"question": "question", "choices": "choices.text", "label": "answerKey"},
        ("A", "B", "C", "D", "E"),
        "validation",
        9_741,
    ),
    _mc(
        "siqa",
        "allenai/social_i_qa",
        None,
        {
            "context": "context",
            "question": "question",
            "choices": ("answerA", "answerB", "answerC"),
            "label": "label",
        },
        ("1", "2", "3"),
        "validation",
        33_410,
    ),
    _mc(
        "copa",
        "aps/super_glue",
        "copa",
        {
            "context": "premise",
            "question": "question",
            "choices": ("choice1", "choice2"),
            "label": "label",
        },
        ("choice1", "choice2"),  # super_glue's ClassLabel names
        "validation",
        400,
    ),
    TaskSpec(
        name="ccg",
        train_examples=39_604,
        eval_examples=0,
        role=Role.INTERMEDIATE,
        format=Format.TAGGING,
        languages=EN,
        metrics=ACC,
        headline="accuracy",
        scorer="token_accuracy",
        version=2,  # 2: sentences past the window are tagged in windows, not cut
        columns={"tokens": "text", "tags": "tags"},
        # Supertag inventory comes from the corpus' own tags_to_id.json (jiant's format).
        train=(Source("ccg", None, "train", native="ccg"),),
        dev=(Source("ccg", None, "dev", native="ccg"),),
        report_split="dev",
        description="CCGbank supertagging; LDC-licensed, local TSV + tag map only.",
    ),
)

# Continued masked-language modelling (Phang et al.'s MLM arm, `mlm` and `task+mlm`): its text
# is the sweep's `data.mlm_corpus` (`evaluation.data.mlm_corpus`), not a Hub task dataset, so
# it has no train/dev sources; its dev score is the masked-token accuracy on held-out lines.
register(
    TaskSpec(
        name="mlm",
        role=Role.INTERMEDIATE,
        format=Format.MASKED_LM,
        languages=(),  # the corpus' languages (data.mlm_corpus.languages)
        metrics=ACC,
        headline="accuracy",
        scorer="masked_lm",
        version=1,
        description="Continued MLM on a multilingual text corpus (data.mlm_corpus).",
    )
)
