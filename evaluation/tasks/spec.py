"""What a task is: one frozen, declarative spec holding every fact about it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType


class Format(StrEnum):
    CLASSIFICATION = "classification"
    MULTIPLE_CHOICE = "multiple_choice"
    SPAN_QA = "span_qa"
    TAGGING = "tagging"
    RETRIEVAL = "retrieval"
    MASKED_LM = "masked_lm"  # continued MLM on a text corpus (`evaluation.data.mlm_corpus`)


class Role(StrEnum):
    TARGET = "target"
    INTERMEDIATE = "intermediate"


@dataclass(frozen=True)
class Source:
    """One split of one dataset: where the rows come from and how columns are named.

    `columns` maps the task's common field names (e.g. ``premise``) to the dataset's
    column names; None means "the task's default mapping". `where_prefix` keeps only
    rows whose column starts with a prefix (TyDiQA encodes the language in the id).
    `native` names a non-Hub file format read from a local directory (Mewsli-X, CCG).
    `drop_unlabeled` drops rows without a gold label (SNLI's -1) instead of failing;
    `skip_tags` removes tokens carrying these tags (UD's "_" multiword-token rows);
    `optional` sources are skipped when no local directory holds them (FEVER-NLI).
    """

    dataset: str
    config: str | None
    split: str
    columns: Mapping[str, str] | None = None
    where_prefix: tuple[str, str] | None = None
    native: str | None = None
    drop_unlabeled: bool = False
    skip_tags: tuple[str, ...] = ()
    optional: bool = False


@dataclass(frozen=True)
class TaskSpec:
    """Every fact about one task. Nothing about a task lives anywhere else."""

    name: str
    role: Role
    format: Format
    languages: tuple[str, ...]
    metrics: tuple[str, ...]
    headline: str
    scorer: str  # scorer family in evaluation.scorers
    version: int
    columns: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    train: tuple[Source, ...] = ()  # English training data (pooled when several)
    dev: tuple[Source, ...] = ()  # English dev data for early stopping
    # Language -> a machine translation of the English training data, read by the
    # translated arms of an intermediate task (`mnli@translate-train`, orchestrator.arms).
    translated: Mapping[str, Source] = field(default_factory=dict)
    eval: Mapping[str, Source] = field(default_factory=dict)  # language -> zero-shot split
    report_split: str = "test"
    # Split of each eval source that a decision threshold is tuned on (BUCC's validation
    # "sample" gold), never the split that is scored.
    tune_split: str | None = None
    file_ext: str = "tsv"  # extension in the official submission layout
    group: str | None = None
    description: str = ""
    # Approximate sizes of the real datasets, for `xstilts plan`'s cost model only:
    # English training examples (all `train` sources pooled) and examples per eval language.
    train_examples: int = 0
    eval_examples: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))
        object.__setattr__(self, "eval", MappingProxyType(dict(self.eval)))
        object.__setattr__(self, "translated", MappingProxyType(dict(self.translated)))
        if "en" in self.translated:
            raise ValueError(f"task {self.name}: `translated` holds translations, not English")
        if self.headline not in self.metrics:
            raise ValueError(f"task {self.name}: headline {self.headline!r} not in metrics")
        if len(set(self.languages)) != len(self.languages):
            raise ValueError(f"task {self.name}: duplicate languages")
        if self.role is Role.TARGET and set(self.eval) != set(self.languages):
            missing = sorted(set(self.languages) ^ set(self.eval))
            raise ValueError(f"task {self.name}: eval sources do not match languages: {missing}")

    @property
    def tune(self) -> Mapping[str, Source]:
        """Language -> the source a threshold is tuned on; empty without a `tune_split`."""
        if self.tune_split is None:
            return {}
        return {lang: replace(src, split=self.tune_split) for lang, src in self.eval.items()}

    @property
    def needs_target_training(self) -> bool:
        """Retrieval tasks without English training data are scored on the phase-2 encoder."""
        return bool(self.train)
