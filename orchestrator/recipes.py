"""Recipes: named, cited defaults of every phase-2 and phase-3 hyperparameter.

A spec names one (`recipe:`); its own `phase2` / `phase3` settings go over it (see
`orchestrator.spec.SweepSpec.hparams`). Every value carries where it comes from, and
`xstilts plan SPEC --cells` prints it beside the value. Citations name files of
nyu-mll/jiant at commit daa5a258 (`jiant:`) and google-research/xtreme at 838c13b
(`xtreme:`); docs/recipes.md has the whole account and where sources disagree.

- ``jiant``: Phang et al. 2020 as jiant runs it. Phase 2 is the guide's command
  (`simple/runscript.py` with `--train_batch_size 4`, everything else its defaults); phase
  3 is jiant's XTREME scripts (`d_write_configs.sh`, `e_run_models.sh`,
  `c_tokenize_and_cache.sh`).
- ``xstilts``: what specs got before recipes had names (the default, so that their keys
  stay): jiant's optimiser settings and batch, one schedule for every task (3 epochs,
  dev score every 500 steps, patience 5) and capped multi-task mixing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from evaluation.data.multitask import DEFAULT_CAP
from evaluation.tasks import Format, TaskSpec, suggest
from storage.errors import UserError
from trainers.hparams import EVAL_AT_END, hparam_names

Phase = Literal["phase2", "phase3"]

JIANT = "jiant:jiant/"
SUBSCRIPTS = JIANT + "scripts/benchmarks/xtreme/subscripts/"
SIMPLE = JIANT + "proj/simple/runscript.py"
CONFIGURATOR = JIANT + "proj/main/scripts/configurator.py"
WRITER = JIANT + "scripts/benchmarks/xtreme/xtreme_runconfig_writer.py"
MODEL_SETUP = JIANT + "shared/model_setup.py"
GUIDE = "jiant:guides/projects/xstilts.md"
XSTILTS = "xstilts"


@dataclass(frozen=True)
class Cited:
    """One value and where it comes from."""

    value: Any
    source: str


def cite(source: str, **values: Any) -> dict[str, Cited]:
    return {name: Cited(value, source) for name, value in values.items()}


@dataclass(frozen=True)
class PhaseRecipe:
    """One phase's defaults: every field, then by task format, then by task name."""

    base: Mapping[str, Cited]
    by_format: Mapping[Format, Mapping[str, Cited]] = field(default_factory=dict)
    by_task: Mapping[str, Mapping[str, Cited]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = set(hparam_names())
        if set(self.base) != names:
            raise ValueError(f"a recipe's base sets every field: {sorted(names ^ set(self.base))}")
        for part in (*self.by_format.values(), *self.by_task.values()):
            if set(part) - names:
                raise ValueError(f"unknown hyperparameters {sorted(set(part) - names)}")
        object.__setattr__(self, "by_format", MappingProxyType(dict(self.by_format)))
        object.__setattr__(self, "by_task", MappingProxyType(dict(self.by_task)))

    def resolve(self, task: TaskSpec) -> dict[str, Cited]:
        out = dict(self.base)
        out.update(self.by_format.get(task.format, {}))
        out.update(self.by_task.get(task.name, {}))
        return out


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    phase2: PhaseRecipe
    phase3: PhaseRecipe

    def phase(self, phase: Phase) -> PhaseRecipe:
        return self.phase2 if phase == "phase2" else self.phase3


# --- xstilts: the defaults every spec had before recipes had names --------------------------

_XSTILTS_BASE = {
    **cite(JIANT + "proj/main/runscript.py:46", lr=1e-5),
    **cite(SIMPLE + ":40", epochs=3.0),
    **cite(XSTILTS, max_steps=None, micro_batch_size=None),
    **cite(GUIDE + ":27", batch_size=4),
    **cite(SUBSCRIPTS + "d_write_configs.sh:15", grad_accum=8),
    **cite(CONFIGURATOR + ":258", warmup_ratio=0.1),
    **cite(SUBSCRIPTS + "c_tokenize_and_cache.sh:16", max_seq_length=256),
    **cite(
        XSTILTS + " (dev score every 500 steps, stop after 5 without gain)",
        eval_every=500,
        patience=5,
    ),
    **cite(MODEL_SETUP + ":85", weight_decay=0.01),
    **cite(JIANT + "proj/main/runscript.py:48", max_grad_norm=1.0),
    **cite(
        XSTILTS + " (examples-proportional, capped: Raffel et al. 2020 §3.5.2)", mix_cap=DEFAULT_CAP
    ),
}
_XSTILTS_QA = {
    **cite(SUBSCRIPTS + "d_write_configs.sh:47", grad_accum=4),
    **cite(SUBSCRIPTS + "c_tokenize_and_cache.sh:98", max_seq_length=384),
}
_XSTILTS_PHASE = PhaseRecipe(base=_XSTILTS_BASE, by_format={Format.SPAN_QA: _XSTILTS_QA})

XSTILTS_RECIPE = Recipe(
    name="xstilts",
    description="jiant's optimiser and batch; 3 epochs, dev every 500 steps, patience 5",
    phase2=_XSTILTS_PHASE,
    phase3=_XSTILTS_PHASE,
)

# --- jiant: Phang et al. 2020 ---------------------------------------------------------------


def _xtreme(line: int, epochs: float, grad_accum: int) -> dict[str, Cited]:
    """One task's line of jiant's d_write_configs.sh: its epochs, batch and accumulation."""
    where = SUBSCRIPTS + f"d_write_configs.sh:{line}"
    return cite(where, epochs=epochs, batch_size=4, grad_accum=grad_accum)


JIANT_RECIPE = Recipe(
    name="jiant",
    description="Phang et al. 2020 as jiant runs it (guide command; XTREME scripts)",
    # The guide's phase-2 command (guides/projects/xstilts.md:20-29) sets only the batch; the
    # rest are simple/runscript.py's defaults, the configurator's and the optimiser's.
    phase2=PhaseRecipe(
        base={
            **cite(SIMPLE + ":59", lr=1e-5),
            **cite(SIMPLE + ":40", epochs=3.0),
            **cite(XSTILTS + " (jiant: epochs decide)", max_steps=None),
            **cite(XSTILTS + " (the batch in one pass)", micro_batch_size=None),
            **cite(GUIDE + ":27", batch_size=4),
            **cite(CONFIGURATOR + ":252", grad_accum=1),  # the guide's command passes none
            **cite(CONFIGURATOR + ":258", warmup_ratio=0.1),
            # One length for every task, SQuAD included (simple/runscript.py:166-167).
            **cite(SIMPLE + ":39", max_seq_length=256),
            # eval_every_steps 0: no evaluation while training; done_training evaluates
            # once and loads the best (= final) weights (proj/main/metarunner.py:184-188).
            **cite(SIMPLE + ":50", eval_every=EVAL_AT_END),
            **cite(SIMPLE + ":53", patience=0),
            **cite(MODEL_SETUP + ":85", weight_decay=0.01),
            **cite(SIMPLE + ":61", max_grad_norm=1.0),
            # ProportionalMultiTaskSampler when no train_examples_cap (the guide sets none):
            # p_i = n_i / sum n (proj/main/components/task_sampler.py:28-40).
            **cite(CONFIGURATOR + ":399-404", mix_cap=None),
        },
    ),
    phase3=PhaseRecipe(
        base={
            **cite(SUBSCRIPTS + "e_run_models.sh:15", lr=1e-5),
            **cite(WRITER + ":43", epochs=3.0),
            **cite(XSTILTS + " (jiant: epochs decide)", max_steps=None),
            **cite(XSTILTS + " (the batch in one pass)", micro_batch_size=None),
            **cite(SUBSCRIPTS + "d_write_configs.sh:15", batch_size=4, grad_accum=8),
            **cite(WRITER + ":44", warmup_ratio=0.1),
            **cite(SUBSCRIPTS + "c_tokenize_and_cache.sh:16", max_seq_length=256),
            **cite(SUBSCRIPTS + "e_run_models.sh:16", eval_every=1000),
            **cite(SUBSCRIPTS + "e_run_models.sh:17", patience=30),
            **cite(MODEL_SETUP + ":85", weight_decay=0.01),
            **cite(JIANT + "proj/main/runscript.py:48", max_grad_norm=1.0),
            **cite(XSTILTS + " (one task per phase 3: no mixing)", mix_cap=DEFAULT_CAP),
        },
        by_format={
            Format.SPAN_QA: {
                **cite(SUBSCRIPTS + "d_write_configs.sh:47", grad_accum=4),
                **cite(SUBSCRIPTS + "c_tokenize_and_cache.sh:98", max_seq_length=384),
            },
        },
        by_task={
            # Retrieval reads the encoder only (no phase-3 training): the length it embeds.
            "bucc2018": cite(SUBSCRIPTS + "c_tokenize_and_cache.sh:142", max_seq_length=512),
            "tatoeba": cite(SUBSCRIPTS + "c_tokenize_and_cache.sh:153", max_seq_length=512),
            "xnli": _xtreme(15, epochs=2.0, grad_accum=8),
            "pawsx": _xtreme(23, epochs=5.0, grad_accum=8),
            "udpos": _xtreme(31, epochs=10.0, grad_accum=8),
            "panx": _xtreme(39, epochs=10.0, grad_accum=8),
            "xquad": _xtreme(47, epochs=2.0, grad_accum=4),
            "mlqa": _xtreme(55, epochs=2.0, grad_accum=4),
            "tydiqa": _xtreme(63, epochs=2.0, grad_accum=4),
        },
    ),
)

RECIPES: Mapping[str, Recipe] = MappingProxyType(
    {r.name: r for r in (XSTILTS_RECIPE, JIANT_RECIPE)}
)
DEFAULT_RECIPE = XSTILTS_RECIPE.name


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise UserError(f"unknown recipe {name!r}{suggest(name, RECIPES)}") from None
