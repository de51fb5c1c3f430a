"""Benchmark protocols: which languages each target task is scored in, which tasks train
before it in phase 3, and which encoder layer retrieval reads.

A sweep names one (`protocol:` in the spec):

- ``xtreme``: XTREME v1 (Hu et al. 2020) as Phang et al. 2020 ran it with jiant: v1
  language lists, Tatoeba and BUCC scored on the phase-2 encoder directly, mean-pooled
  hidden state 14 of XLM-R Large's 24 layers.
- ``xtreme_r``: XTREME-R (Ruder et al. 2021): its language lists (the registry's), XCOPA
  trained on SIQA then COPA, Tatoeba (and BUCC, when a sweep adds it) scored on the encoder
  fine-tuned on SQuAD v1.1, hidden state 13 of 24.

A task outside the protocol's benchmark (PAWS-X or BUCC under ``xtreme_r``, XCOPA,
Mewsli-X or LAReQA under ``xtreme``) keeps all of its registry languages and no stages.
Every fact cites the file it comes from (google-research/xtreme at commit 838c13b, jiant at
daa5a258); docs/recipes.md gives the whole account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from evaluation.tasks.defs.xtreme import XTREME_V1_LANGUAGES
from evaluation.tasks.registry import get_task, suggest
from storage.errors import UserError

XTREME_R_TASKS = (
    "xnli", "xcopa", "udpos", "panx", "xquad", "mlqa", "tydiqa", "tatoeba", "mewslix", "lareqa",
)  # fmt: skip


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    tasks: tuple[str, ...]  # the benchmark's target tasks
    # Target task -> its languages where they are fewer than the registry's (else all).
    languages: Mapping[str, tuple[str, ...]]
    # Target task -> tasks trained on its encoder, in order, before it (phase 3).
    stages: Mapping[str, tuple[str, ...]]
    retrieval_offset: int  # retrieval reads hidden state layers // 2 + offset (0: embeddings)
    sources: Mapping[str, str]  # what -> where it comes from

    def __post_init__(self) -> None:
        object.__setattr__(self, "languages", MappingProxyType(dict(self.languages)))
        object.__setattr__(self, "stages", MappingProxyType(dict(self.stages)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    def task_languages(self, task: str) -> tuple[str, ...]:
        """The languages `task` is scored in under this protocol, in the registry's order."""
        spec = get_task(task)
        chosen = self.languages.get(task)
        if chosen is None:
            return spec.languages
        return tuple(lang for lang in spec.languages if lang in chosen)

    def task_stages(self, task: str) -> tuple[str, ...]:
        return self.stages.get(task, ())

    def retrieval_layer(self, layers: int) -> int:
        return min(layers, layers // 2 + self.retrieval_offset)


XTREME = Protocol(
    name="xtreme",
    description="XTREME v1 as Phang et al. 2020 ran it (jiant)",
    tasks=tuple(XTREME_V1_LANGUAGES),
    languages=XTREME_V1_LANGUAGES,
    stages={},
    retrieval_offset=2,
    sources={
        "languages": "google-research/xtreme evaluate.py:141-154 (XTREME_TASK2LANGS)",
        "retrieval": "jiant guides/projects/xstilts.md:12 (BUCC and Tatoeba evaluated on the "
        "phase-2 checkpoint directly); jiant/scripts/benchmarks/xtreme/"
        "xtreme_runconfig_writer.py:56,119-124 (mean pooling, layer 14 of XLM-R Large)",
    },
)

XTREME_R = Protocol(
    name="xtreme_r",
    description="XTREME-R (Ruder et al. 2021)",
    tasks=XTREME_R_TASKS,
    languages={},  # the registry's lists are XTREME-R's (evaluate.py:160-178)
    stages={"xcopa": ("siqa",), "tatoeba": ("squad",), "bucc2018": ("squad",)},
    retrieval_offset=1,
    sources={
        "languages": "google-research/xtreme evaluate.py:160-178 (XTREME_R_TASK2LANGS)",
        "xcopa": "google-research/xtreme scripts/train_xcopa.sh:56-100 (SIQA, then COPA "
        "from the SIQA model)",
        "retrieval": "google-research/xtreme scripts/run_tatoeba.sh:41,44-45 (the SQuAD "
        "v1.1 fine-tuned XLM-R, layer 13); BUCC, not an XTREME-R task, is scored the same "
        "way so that the two retrieval tasks stay comparable",
    },
)

PROTOCOLS: Mapping[str, Protocol] = MappingProxyType({p.name: p for p in (XTREME, XTREME_R)})
DEFAULT_PROTOCOL: Literal["xtreme_r"] = "xtreme_r"  # the study's benchmark: XTREME-R


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UserError(f"unknown protocol {name!r}{suggest(name, PROTOCOLS)}") from None
