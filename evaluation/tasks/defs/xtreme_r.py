"""The ten XTREME-R target tasks (Ruder et al. 2021), language lists as in the
official `XTREME_R_TASK2LANGS`. Hub ids, configs and columns: docs/xtreme_r.md §4.
"""

from evaluation.tasks.registry import register
from evaluation.tasks.spec import Format, Role, Source, TaskSpec

XTREME = "google/xtreme"
SQUAD_TRAIN = (Source("rajpurkar/squad", "plain_text", "train"),)
SQUAD_DEV = (Source("rajpurkar/squad", "plain_text", "validation"),)
QA_COLUMNS = {"id": "id", "context": "context", "question": "question", "answers": "answers"}
NLI_LABELS = ("entailment", "neutral", "contradiction")
UPOS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip
IOB2 = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

XNLI_LANGS = "ar bg de el en es fr hi ru sw th tr ur vi zh".split()
XCOPA_LANGS = "et ht id it qu sw ta th tr vi zh".split()
UDPOS_NAMES = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian",
    "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian",
    "id": "Indonesian", "it": "Italian", "ja": "Japanese", "kk": "Kazakh", "ko": "Korean",
    "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian", "ta": "Tamil",
    "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ur": "Urdu",
    "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
}  # fmt: skip
# XTREME-R's extra UD languages are not in google/xtreme; one UD v2 treebank each.
UDPOS_EXTRA = {"lt": "lt_alksnis", "pl": "pl_pdb", "uk": "uk_iu", "wo": "wo_wtb", "ro": "ro_rrt"}
PANX_LANGS = (
    "ar he vi id jv ms tl eu ml ta te af nl en de el bn hi mr ur fa fr it pt "
    "es bg ru ja ka ko th sw yo my zh kk tr et fi hu qu pl uk az lt pa gu ro"
).split()
PANX_EXTRA = {"qu", "pl", "uk", "az", "lt", "pa", "gu", "ro"}  # from unimelb-nlp/wikiann
XQUAD_LANGS = "en es de el ru tr ar vi th zh hi ro".split()
MLQA_LANGS = "en es de ar hi vi zh".split()
TYDIQA_NAMES = {
    "en": "english", "ar": "arabic", "bn": "bengali", "fi": "finnish", "id": "indonesian",
    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu",
}  # fmt: skip
TATOEBA_ISO3 = {
    "ar": "ara", "he": "heb", "vi": "vie", "id": "ind", "jv": "jav", "tl": "tgl", "eu": "eus",
    "ml": "mal", "ta": "tam", "te": "tel", "af": "afr", "nl": "nld", "de": "deu", "el": "ell",
    "bn": "ben", "hi": "hin", "mr": "mar", "ur": "urd", "fa": "pes", "fr": "fra", "it": "ita",
    "pt": "por", "es": "spa", "bg": "bul", "ru": "rus", "ja": "jpn", "ka": "kat", "ko": "kor",
    "th": "tha", "sw": "swh", "zh": "cmn", "kk": "kaz", "tr": "tur", "et": "est", "fi": "fin",
    "hu": "hun",
}  # fmt: skip
# Not in google/xtreme's tatoeba configs; mteb's mirror has them with other column names.
TATOEBA_EXTRA = {"az": "aze", "lt": "lit", "pl": "pol", "uk": "ukr", "ro": "ron"}
MEWSLIX_LANGS = "ar de en es fa ja pl ro ta tr uk".split()
LAREQA_LANGS = "ar de el en es hi ru th tr vi zh".split()


def _udpos_source(lang: str) -> Source:
    if lang in UDPOS_EXTRA:
        return Source(
            "universal_dependencies",
            UDPOS_EXTRA[lang],
            "test",
            {"tokens": "tokens", "tags": "upos"},
            skip_tags=("_",),  # UD keeps multiword-token rows tagged "_"; xtreme drops them
        )
    return Source(XTREME, f"udpos.{UDPOS_NAMES[lang]}", "test")


def _panx_source(lang: str) -> Source:
    if lang in PANX_EXTRA:
        return Source("unimelb-nlp/wikiann", lang, "test")
    return Source(XTREME, f"PAN-X.{lang}", "test")


def _tatoeba_source(lang: str) -> Source:
    if lang in TATOEBA_EXTRA:
        cols = {"source": "sentence1", "target": "sentence2"}
        return Source("mteb/tatoeba-bitext-mining", f"{TATOEBA_EXTRA[lang]}-eng", "test", cols)
    return Source(XTREME, f"tatoeba.{TATOEBA_ISO3[lang]}", "validation")


register(
    TaskSpec(
        name="xnli",
        train_examples=392_702,
        eval_examples=5_010,
        role=Role.TARGET,
        format=Format.CLASSIFICATION,
        languages=tuple(XNLI_LANGS),
        metrics=("accuracy",),
        headline="accuracy",
        scorer="accuracy",
        version=1,
        columns={"text_a": "premise", "text_b": "hypothesis", "label": "label"},
        labels=NLI_LABELS,
        train=(Source("nyu-mll/glue", "mnli", "train"),),
        dev=(Source("facebook/xnli", "en", "validation"),),
        eval={lang: Source("facebook/xnli", lang, "test") for lang in XNLI_LANGS},
        group="classification",
        description="Cross-lingual NLI; trained on MNLI.",
    ),
    TaskSpec(
        name="xcopa",
        train_examples=400,
        eval_examples=500,
        role=Role.TARGET,
        format=Format.MULTIPLE_CHOICE,
        languages=tuple(XCOPA_LANGS),
        metrics=("accuracy",),
        headline="accuracy",
        scorer="accuracy",
        version=1,
        columns={
            "context": "premise",
            "question": "question",
            "choices": ("choice1", "choice2"),
            "label": "label",
        },
        labels=("choice1", "choice2"),  # super_glue copa's ClassLabel; xcopa's int indexes it
        train=(Source("aps/super_glue", "copa", "train"),),
        dev=(Source("aps/super_glue", "copa", "validation"),),
        eval={lang: Source("cambridgeltl/xcopa", lang, "test") for lang in XCOPA_LANGS},
        file_ext="jsonl",
        group="classification",
        description="Causal commonsense; English COPA training (SIQA is an intermediate task).",
    ),
    TaskSpec(
        name="udpos",
        train_examples=12_543,
        eval_examples=1_500,
        role=Role.TARGET,
        format=Format.TAGGING,
        languages=tuple(UDPOS_NAMES) + tuple(UDPOS_EXTRA),
        metrics=("f1", "precision", "recall"),
        headline="f1",
        scorer="seqeval",
        version=2,  # 2: sentences past the window are tagged in windows, not cut
        columns={"tokens": "tokens", "tags": "pos_tags"},
        labels=UPOS,
        train=(Source(XTREME, "udpos.English", "train"),),
        dev=(Source(XTREME, "udpos.English", "validation"),),
        eval={lang: _udpos_source(lang) for lang in (*UDPOS_NAMES, *UDPOS_EXTRA)},
        group="tagging",
        description="Universal POS tagging, UD v2.5.",
    ),
    TaskSpec(
        name="panx",
        train_examples=20_000,
        eval_examples=10_000,
        role=Role.TARGET,
        format=Format.TAGGING,
        languages=tuple(PANX_LANGS),
        metrics=("f1", "precision", "recall"),
        headline="f1",
        scorer="seqeval",
        version=2,  # 2: sentences past the window are tagged in windows, not cut
        columns={"tokens": "tokens", "tags": "ner_tags"},
        labels=IOB2,
        train=(Source(XTREME, "PAN-X.en", "train"),),
        dev=(Source(XTREME, "PAN-X.en", "validation"),),
        eval={lang: _panx_source(lang) for lang in PANX_LANGS},
        group="tagging",
        description="WikiANN named entities (Rahimi splits), IOB2.",
    ),
    TaskSpec(
        name="xquad",
        train_examples=87_599,
        eval_examples=1_190,
        role=Role.TARGET,
        format=Format.SPAN_QA,
        languages=tuple(XQUAD_LANGS),
        metrics=("f1", "exact_match"),
        headline="f1",
        scorer="squad",
        version=1,
        columns=QA_COLUMNS,
        train=SQUAD_TRAIN,
        dev=SQUAD_DEV,
        eval={
            lang: Source("google/xquad", "xquad.ro", "validation")
            if lang == "ro"
            else Source(XTREME, f"XQuAD.{lang}", "validation")
            for lang in XQUAD_LANGS
        },
        report_split="validation",
        file_ext="json",
        group="qa",
        description="Extractive QA over SQuAD paragraphs translated into 11 languages.",
    ),
    TaskSpec(
        name="mlqa",
        train_examples=87_599,
        eval_examples=4_500,
        role=Role.TARGET,
        format=Format.SPAN_QA,
        languages=tuple(MLQA_LANGS),
        metrics=("f1", "exact_match"),
        headline="f1",
        scorer="mlqa",
        version=1,
        columns=QA_COLUMNS,
        train=SQUAD_TRAIN,
        dev=SQUAD_DEV,
        eval={lang: Source(XTREME, f"MLQA.{lang}.{lang}", "test") for lang in MLQA_LANGS},
        file_ext="json",
        group="qa",
        description="Extractive QA, same-language context/question pairs; MLQA normalizer.",
    ),
    TaskSpec(
        name="tydiqa",
        train_examples=3_696,
        eval_examples=700,
        role=Role.TARGET,
        format=Format.SPAN_QA,
        languages=tuple(TYDIQA_NAMES),
        metrics=("f1", "exact_match"),
        headline="f1",
        scorer="squad",
        version=1,
        columns=QA_COLUMNS,
        train=(Source(XTREME, "tydiqa", "train", where_prefix=("id", "english-")),),
        dev=(Source(XTREME, "tydiqa", "validation", where_prefix=("id", "english-")),),
        eval={
            lang: Source(XTREME, "tydiqa", "validation", where_prefix=("id", f"{name}-"))
            for lang, name in TYDIQA_NAMES.items()
        },
        report_split="validation",
        file_ext="json",
        group="qa",
        description="TyDiQA-GoldP; scored with the English SQuAD normalizer in every language.",
    ),
    TaskSpec(
        name="tatoeba",
        train_examples=0,
        eval_examples=1_000,
        role=Role.TARGET,
        format=Format.RETRIEVAL,
        languages=tuple(TATOEBA_ISO3) + tuple(TATOEBA_EXTRA),
        metrics=("accuracy",),
        headline="accuracy",
        scorer="tatoeba",
        version=1,
        columns={"source": "source_sentence", "target": "target_sentence"},
        eval={lang: _tatoeba_source(lang) for lang in (*TATOEBA_ISO3, *TATOEBA_EXTRA)},
        report_split="validation",
        group="retrieval",
        description="Sentence retrieval into English; scored on the phase-2 encoder.",
    ),
    TaskSpec(
        name="mewslix",
        train_examples=100_000,
        eval_examples=2_500,
        role=Role.TARGET,
        format=Format.RETRIEVAL,
        languages=tuple(MEWSLIX_LANGS),
        metrics=("map@20",),
        headline="map@20",
        scorer="mewslix",
        version=1,
        columns={"mention": "mention", "entity": "entity_id"},
        train=(Source("mewslix", None, "train", native="mewslix"),),
        dev=(Source("mewslix", None, "dev", native="mewslix"),),
        eval={lang: Source("mewslix", lang, "test", native="mewslix") for lang in MEWSLIX_LANGS},
        file_ext="json",
        group="retrieval",
        description="Entity linking as retrieval; MRR@20 reported as map@20. Native files.",
    ),
    TaskSpec(
        name="lareqa",
        train_examples=87_599,
        eval_examples=1_190,
        role=Role.TARGET,
        format=Format.RETRIEVAL,
        languages=tuple(LAREQA_LANGS),
        metrics=("map@20",),
        headline="map@20",
        scorer="lareqa",
        version=1,
        columns=QA_COLUMNS,
        train=SQUAD_TRAIN,
        dev=SQUAD_DEV,
        eval={
            lang: Source("google-research-datasets/xquad_r", lang, "validation")
            for lang in LAREQA_LANGS
        },
        report_split="validation",
        file_ext="json",
        group="retrieval",
        description="Language-agnostic answer retrieval over an 11-language candidate pool.",
    ),
)
