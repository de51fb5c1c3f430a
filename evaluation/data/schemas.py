"""The declared schema of every dataset the registry reads: columns, dtypes, ClassLabel
names and splits, as on the Hugging Face Hub (docs/xtreme_r.md §4).

Fixtures are written from this table and tests check both fixtures and loaded data
against it. `verified=False` marks schemas recalled rather than checked in a primary
source ([R] in the reference): the loader checks the columns a task uses and fails
loudly rather than guessing. Native (non-Hub) datasets are declared by the shape their
reader (`evaluation.data.native`) produces.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from datasets import ClassLabel, Features, List, Value

from storage.errors import UserError

S = Value("string")
I32 = Value("int32")
NLI = ClassLabel(names=["entailment", "neutral", "contradiction"])
IOB2 = ClassLabel(names=["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"])
XTREME_UPOS = ClassLabel(
    names="ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split()
)
UD_UPOS = ClassLabel(
    names="NOUN PUNCT ADP NUM SYM SCONJ ADJ PART DET CCONJ PROPN PRON X _ ADV INTJ VERB AUX".split()
)
SQUAD_ANSWERS = {"text": List(S), "answer_start": List(I32)}
XTREME_ANSWERS = {"answer_start": List(I32), "text": List(S)}
TRAIN_DEV_TEST = ("train", "validation", "test")


@dataclass(frozen=True)
class HubSchema:
    """Features and splits of the configs of one dataset that match `configs` (fnmatch)."""

    dataset: str
    configs: str
    features: Features
    splits: tuple[str, ...]
    verified: bool = True
    split_overrides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unlabeled_splits: tuple[str, ...] = ()  # test splits whose labels are withheld
    unlabeled_share: float = 0.0  # share of rows without a gold label (SNLI's -1)
    unanswerable_share: float = 0.0  # share of questions without an answer (SQuAD 2.0)
    native: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "split_overrides", MappingProxyType(dict(self.split_overrides)))

    def splits_of(self, config: str | None) -> tuple[str, ...]:
        return self.split_overrides.get(config or "", self.splits)


def _qa(*, title: bool, answers: Mapping[str, object] = XTREME_ANSWERS) -> Features:
    cols: dict[str, object] = {"id": S}
    if title:
        cols["title"] = S
    cols.update({"context": S, "question": S, "answers": dict(answers)})
    return Features(cols)


_BITEXT = Features({"source_sentence": S, "target_sentence": S, "source_lang": S, "target_lang": S})
_MC4 = {f"answer{i}": S for i in range(4)}
_UD_STR = {c: List(S) for c in ("xpos", "feats", "head", "deprel", "deps", "misc")}

SCHEMAS: tuple[HubSchema, ...] = (
    HubSchema(
        "google/xtreme",
        "udpos.*",
        Features({"tokens": List(S), "pos_tags": List(XTREME_UPOS)}),
        TRAIN_DEV_TEST,
        split_overrides={
            "udpos.Tagalog": ("test",),
            "udpos.Thai": ("test",),
            "udpos.Yoruba": ("test",),
            "udpos.Kazakh": ("train", "test"),
        },
    ),
    HubSchema(
        "google/xtreme",
        "PAN-X.*",
        Features({"tokens": List(S), "ner_tags": List(IOB2), "langs": List(S)}),
        TRAIN_DEV_TEST,
    ),
    HubSchema("google/xtreme", "XQuAD.*", _qa(title=False), ("validation",)),
    HubSchema("google/xtreme", "MLQA.*", _qa(title=True), ("test", "validation")),
    HubSchema("google/xtreme", "tydiqa", _qa(title=True), ("train", "validation")),
    HubSchema("google/xtreme", "tatoeba.*", _BITEXT, ("validation",)),
    HubSchema("google/xtreme", "bucc18.*", _BITEXT, ("validation", "test")),
    # Verified 2026-12-01 against the dataset card's dataset_info, per-language configs:
    # https://huggingface.co/datasets/facebook/xnli/blob/30f05912bbad2b003b679a8f0b90ca71303c154f/README.md
    # (premise, hypothesis: string; label: class_label entailment/neutral/contradiction;
    # splits train, test, validation). The `all_languages` config has translation-dict
    # columns instead; the registry never reads it.
    HubSchema(
        "facebook/xnli",
        "*",
        Features({"premise": S, "hypothesis": S, "label": NLI}),
        ("train", "test", "validation"),
    ),
    HubSchema(
        "nyu-mll/glue",
        "mnli",
        Features({"premise": S, "hypothesis": S, "label": NLI, "idx": I32}),
        ("train", "validation_matched", "validation_mismatched", "test_matched", "test_mismatched"),
        unlabeled_splits=("test_matched", "test_mismatched"),
    ),
    HubSchema(
        "nyu-mll/glue",
        "qqp",
        Features(
            {
                "question1": S,
                "question2": S,
                "label": ClassLabel(names=["not_duplicate", "duplicate"]),
                "idx": I32,
            }
        ),
        TRAIN_DEV_TEST,
        unlabeled_splits=("test",),
    ),
    HubSchema(
        "aps/super_glue",
        "copa",
        Features(
            {
                "premise": S,
                "choice1": S,
                "choice2": S,
                "question": S,
                "idx": I32,
                "label": ClassLabel(names=["choice1", "choice2"]),
            }
        ),
        TRAIN_DEV_TEST,
        unlabeled_splits=("test",),
    ),
    HubSchema(
        "cambridgeltl/xcopa",
        "*",
        Features(
            {
                "premise": S,
                "choice1": S,
                "choice2": S,
                "question": S,
                "label": I32,
                "idx": I32,
                "changed": Value("bool"),
            }
        ),
        ("validation", "test"),
    ),
    HubSchema(
        "universal_dependencies",
        "*",
        Features(
            {"idx": S, "text": S, "tokens": List(S), "lemmas": List(S), "upos": List(UD_UPOS)}
            | _UD_STR
        ),
        TRAIN_DEV_TEST,
    ),
    # Verified 2026-12-01 against the card's dataset_info (every config: tokens, ner_tags as
    # class_label O B-PER I-PER B-ORG I-ORG B-LOC I-LOC, langs, spans; splits validation,
    # test, train): github.com/huggingface/datasets datasets/wikiann/README.md at
    # 040102f100964a33fd334e2695f1c493fa6b92db, and its loading script (same label order).
    HubSchema(
        "unimelb-nlp/wikiann",
        "*",
        Features({"tokens": List(S), "ner_tags": List(IOB2), "langs": List(S), "spans": List(S)}),
        ("validation", "test", "train"),
    ),
    HubSchema("google/xquad", "xquad.*", _qa(title=False, answers=SQUAD_ANSWERS), ("validation",)),
    # Checked 2026-12-01, secondary sources only (no dataset card with dataset_info found):
    # MTEB results metadata in model cards name configs `<iso3>-eng` with split `test`
    # (revision 9080400076fbadbb4c4dcb136ff4eddc40b42553), and scripts reading them take
    # `sentence1` as the non-English and `sentence2` as the English side. Columns beyond
    # these two (the all-pairs config carries `lang`) are not read.
    HubSchema(
        "mteb/tatoeba-bitext-mining",
        "*",
        Features({"sentence1": S, "sentence2": S}),
        ("test",),
        verified=False,
    ),
    HubSchema(
        "google-research-datasets/xquad_r",
        "*",
        _qa(title=False, answers=SQUAD_ANSWERS),
        ("validation",),
    ),
    # Verified 2026-12-01 against the loading script: github.com/huggingface/datasets
    # datasets/paws-x/paws-x.py at 0281f9d881f3a55c89aeaa642f1ba23444b64083 (id int32,
    # sentence1, sentence2, label ClassLabel ["0", "1"]; splits train, test, validation).
    HubSchema(
        "google-research-datasets/paws-x",
        "*",
        Features(
            {"id": I32, "sentence1": S, "sentence2": S, "label": ClassLabel(names=["0", "1"])}
        ),
        ("train", "test", "validation"),
    ),
    HubSchema(
        "rajpurkar/squad",
        "plain_text",
        _qa(title=True, answers=SQUAD_ANSWERS),
        ("train", "validation"),
    ),
    # Verified 2026-12-01 against the loading script: github.com/huggingface/datasets
    # datasets/squad_v2/squad_v2.py at 02bb18c7f9899b206983480b14bc1accf69714a5 (config
    # squad_v2; id, title, context, question, answers {text, answer_start int32}; splits
    # train, validation; unanswerable questions have empty answer lists).
    HubSchema(
        "rajpurkar/squad_v2",
        "squad_v2",
        _qa(title=True, answers=SQUAD_ANSWERS),
        ("train", "validation"),
        unanswerable_share=0.3,
    ),
    HubSchema(
        "facebook/anli",
        "plain_text",
        Features({"uid": S, "premise": S, "hypothesis": S, "label": NLI, "reason": S}),
        tuple(f"{kind}_r{r}" for r in (1, 2, 3) for kind in ("train", "dev", "test")),
    ),
    HubSchema(
        "stanfordnlp/snli",
        "plain_text",
        Features({"premise": S, "hypothesis": S, "label": NLI}),
        ("test", "validation", "train"),
        unlabeled_share=0.02,
    ),
    HubSchema(
        "Rowan/hellaswag",
        "*",
        Features(
            {
                "ind": I32,
                "activity_label": S,
                "ctx_a": S,
                "ctx_b": S,
                "ctx": S,
                "endings": List(S),
                "source_id": S,
                "split": S,
                "split_type": S,
                "label": S,
            }
        ),
        ("train", "test", "validation"),
        unlabeled_splits=("test",),
    ),
    HubSchema(
        "allenai/cosmos_qa",
        "*",
        Features({"id": S, "context": S, "question": S} | _MC4 | {"label": I32}),
        ("train", "test", "validation"),
        unlabeled_splits=("test",),
    ),
    HubSchema(
        "tau/commonsense_qa",
        "*",
        Features(
            {
                "id": S,
                "question": S,
                "question_concept": S,
                "choices": {"label": List(S), "text": List(S)},
                "answerKey": S,
            }
        ),
        ("train", "validation", "test"),
        unlabeled_splits=("test",),
    ),
    HubSchema(
        "allenai/social_i_qa",
        "*",
        Features(
            {"context": S, "question": S, "answerA": S, "answerB": S, "answerC": S, "label": S}
        ),
        ("train", "validation"),
    ),
    # Native formats, declared by the `datasets.Dataset` their readers produce.
    HubSchema(
        "mewslix",
        "*",
        Features(
            {
                "id": S,
                "language": S,
                "context": S,
                "mention": {"text": S, "start": I32},
                "entity_id": S,
                "entity": {"id": S, "title": S, "description": S},
            }
        ),
        ("train", "dev", "test"),
        native=True,
    ),
    HubSchema(
        "ccg",
        "*",
        Features({"text": S, "tags": List(ClassLabel(names=[]))}),  # names: tags_to_id.json
        ("train", "dev", "test"),
        native=True,
    ),
    HubSchema(
        "fever_nli",
        "*",
        Features({"uid": S, "premise": S, "hypothesis": S, "label": NLI}),
        ("train", "dev", "test"),
        native=True,
    ),
)


def schema_for(dataset: str, config: str | None) -> HubSchema:
    """The declared schema of one dataset config; UserError when none is declared."""
    for schema in SCHEMAS:
        if schema.dataset == dataset and fnmatch.fnmatchcase(config or "", schema.configs):
            return schema
    raise UserError(f"dataset {dataset!r} config {config!r}: no schema declared")


def schema_problems(features: Features, schema: HubSchema) -> list[str]:
    """Every difference between `features` and the declared ones, one line each."""
    want, got = schema.features, features
    problems = [f"column {c!r} missing" for c in want if c not in got]
    problems += [f"column {c!r} not declared" for c in got if c not in want]
    problems += [
        f"column {c!r} is {got[c]!r}, declared {want[c]!r}"
        for c in want
        if c in got and not _same(got[c], want[c])
    ]
    return problems


def _same(got: object, want: object) -> bool:
    """Feature equality; a declared ClassLabel without names accepts any names."""
    if isinstance(got, List) and isinstance(want, List):
        return _same(got.feature, want.feature)
    if isinstance(want, ClassLabel) and not want.names:
        return isinstance(got, ClassLabel)
    return got == want
