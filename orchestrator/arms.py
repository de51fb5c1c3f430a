"""Arms of an intermediate task: ``task@modifier[@modifier...]``, and mixtures of arms
(``mnli+mlm``), parsed in one place.

An arm trains phase 2 differently from the plain task (other data, other amounts), and its
whole spelling is the cell's `intermediate_task`: in the trial key, in every result row,
in the report. A modifier is ``head``, ``head=value`` or ``head[a,b,...]``; each head is
registered here with its parser, so a new arm is one `register` call plus what it changes
in phase 2. An unknown head gets a did-you-mean; a name must be written in its one canonical
spelling (modifiers in the order they are registered here, values canonical), so that two
spellings never make two cells of one arm.

An intermediate-task setting is one arm or several joined by ``+`` (`Intermediate`): phase 2
then trains all their tasks together, mixed as `multitask` is. Each arm's modifiers apply to
its own tasks. The canonical order of a mixture is alphabetical by spelling, except that the
MLM arm comes last (``mnli+mlm``: "MNLI, plus MLM"); a task may appear in one arm only.

- ``n=N``: phase 2 trains on N examples of each of its tasks (a fixed, seeded subset, the
  same for every model and seed; N of each of the nine for ``multitask``, whose mix is then
  uniform), so that task and data size can be told apart. With several training
  languages (below), N in total, drawn from their pool.
- ``translate-train``: phase 2 trains on the task's machine-translated training sets
  (`TaskSpec.translated`: MNLI's are XNLI's training sets), every language it has, pooled,
  and not on the English original: "translated instead of English", XTREME's
  translate-train applied to the intermediate task (Phang et al. 2020's ablation).
- ``langs[a,b,...]``: phase 2 trains on exactly these languages' versions of the task's
  training data, pooled (``en``: the English original; others: its translations), in the
  style of Moghe et al. 2021's multilingual intermediate training. Sorted, no duplicates;
  every language must be one the task has (did-you-mean otherwise).

Pooled languages are read in sorted order and interleaved one example each in turn
(`trainers.celldata.DataAccess.train`): a pure function of the data, so every model and
seed sees the same pool; a data cap (`data.max_examples.train`) caps the pool, not each
language. A language modifier on a task without translations is an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evaluation.data.multitask import PHANG_TASKS
from evaluation.tasks import get_task, suggest, task_names

SEPARATOR = "@"
MIX = "+"
MLM_TASK = "mlm"  # continued masked-language modelling: last in a mixture's spelling
_MODIFIER = re.compile(r"(?P<head>[a-z][a-z0-9_-]*)(?P<tail>(?:=[^@\[\]=]+|\[[^@\[\]]*\])?)")


@dataclass(frozen=True)
class Modifier:
    head: str
    parse: Callable[[str], Any]  # the text after the head ('' | '=v' | '[a,b]') -> value
    spell: Callable[[Any], str]  # value -> the canonical modifier text
    doc: str


MODIFIERS: dict[str, Modifier] = {}


def register(modifier: Modifier) -> None:
    if modifier.head in MODIFIERS:
        raise ValueError(f"arm modifier {modifier.head!r} is registered twice")
    MODIFIERS[modifier.head] = modifier


@dataclass(frozen=True)
class Arm:
    task: str  # the plain intermediate task: a task name, `multitask` or `none`
    modifiers: tuple[tuple[str, Any], ...] = ()  # (head, value), in the order written

    @property
    def name(self) -> str:
        return SEPARATOR.join(
            [self.task, *(MODIFIERS[head].spell(value) for head, value in self.modifiers)]
        )

    def get(self, head: str, default: Any = None) -> Any:
        return dict(self.modifiers).get(head, default)

    @property
    def train_size(self) -> int | None:
        """Training examples per phase-2 task (`n=N`), or None: as the data settings load."""
        return self.get("n")

    def train_languages(self, task: str) -> tuple[str, ...] | None:
        """The languages of `task`'s training data (sorted), or None: English only."""
        if self.get(TRANSLATE):
            return tuple(sorted(get_task(task).translated))
        langs: tuple[str, ...] | None = self.get(LANGS)
        return langs

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks phase 2 trains for this arm: `multitask`'s nine, none for `none`."""
        if self.task == "none":
            return ()
        return PHANG_TASKS if self.task == "multitask" else (self.task,)


@dataclass(frozen=True)
class Intermediate:
    """An intermediate-task setting: one arm, or arms trained together (``mnli+mlm``)."""

    arms: tuple[Arm, ...]

    @property
    def name(self) -> str:
        return MIX.join(arm.name for arm in self.arms)

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every task phase 2 trains, in the order of the spelling."""
        return tuple(t for arm in self.arms for t in arm.tasks)

    def arm_for(self, task: str) -> Arm:
        """The arm that trains `task` (one of `tasks`)."""
        return next(arm for arm in self.arms if task in arm.tasks)

    def train_sizes(self) -> dict[str, int]:
        """Phase-2 task -> the exact training-set size its arm's `n=N` asks for."""
        return {t: n for t in self.tasks if (n := self.arm_for(t).train_size) is not None}

    def train_languages(self) -> dict[str, tuple[str, ...]]:
        """Phase-2 task -> the languages of its training data, where its arm chooses them."""
        return {
            t: langs
            for t in self.tasks
            if (langs := self.arm_for(t).train_languages(t)) is not None
        }


def _mix_order(arm: Arm) -> tuple[bool, str]:
    return (arm.task == MLM_TASK, arm.name)


def parse_intermediate(text: str) -> Intermediate:
    """The intermediate-task setting `text` names; ValueError (one line) if malformed."""
    if MIX not in text:
        return Intermediate((parse_arm(text),))
    arms = tuple(parse_arm(part) for part in text.split(MIX))
    plain = [arm.task for arm in arms]
    if "none" in plain:
        raise ValueError(f"{text!r}: `none` trains nothing, so it mixes with nothing")
    seen: set[str] = set()
    for arm in arms:
        if twice := seen.intersection(arm.tasks):
            raise ValueError(f"{text!r}: {', '.join(sorted(twice))} is in two arms of the mixture")
        seen.update(arm.tasks)
    canonical = Intermediate(tuple(sorted(arms, key=_mix_order)))
    if canonical.name != text:
        raise ValueError(f"{text!r}: write this mixture as {canonical.name!r}")
    return canonical


def parse_arm(text: str) -> Arm:
    """The arm `text` names; ValueError (one line) for anything malformed."""
    task, *parts = text.split(SEPARATOR)
    if not task:
        raise ValueError(f"{text!r}: an arm starts with its task's name")
    modifiers: list[tuple[str, Any]] = []
    for part in parts:
        match = _MODIFIER.fullmatch(part)
        if match is None:
            raise ValueError(f"{text!r}: {part!r} is not a modifier (head, head=value, head[a,b])")
        head, tail = match["head"], match["tail"]
        if head not in MODIFIERS:
            raise ValueError(f"{text!r}: unknown arm modifier {head!r}{suggest(head, MODIFIERS)}")
        if head in dict(modifiers):
            raise ValueError(f"{text!r}: modifier {head!r} is given twice")
        modifiers.append((head, MODIFIERS[head].parse(tail)))
    order = list(MODIFIERS)
    arm = Arm(task, tuple(sorted(modifiers, key=lambda m: order.index(m[0]))))
    if parts and task == "none":
        raise ValueError(f"{text!r}: `none` trains nothing in phase 2, so it has no arms")
    if arm.name != text:
        raise ValueError(f"{text!r}: write this arm as {arm.name!r}")
    _check_languages(arm, text)
    return arm


def _parse_n(tail: str) -> int:
    value = tail.removeprefix("=")
    if not tail.startswith("=") or not value.isdigit() or int(value) < 1:
        raise ValueError(f"n{tail}: the training-set size is n=N with N a positive integer")
    return int(value)


register(
    Modifier(
        head="n",
        parse=_parse_n,
        spell=lambda n: f"n={n}",
        doc="N training examples per phase-2 task (a fixed, seeded subset)",
    )
)


TRANSLATE = "translate-train"
LANGS = "langs"
_LANGUAGE = re.compile(r"[a-z]{2,3}")


def _parse_translate(tail: str) -> bool:
    if tail:
        raise ValueError(f"{TRANSLATE}{tail}: {TRANSLATE} takes no value")
    return True


def _parse_langs(tail: str) -> tuple[str, ...]:
    """``[a,b,...]`` -> the languages, sorted; duplicates and malformed codes are errors."""
    usage = f"{LANGS}{tail}: the training languages are {LANGS}[a,b,...], e.g. {LANGS}[de,sw]"
    if not (tail.startswith("[") and tail.endswith("]")) or tail == "[]":
        raise ValueError(usage)
    langs = tail[1:-1].split(",")
    if bad := [lang for lang in langs if not _LANGUAGE.fullmatch(lang)]:
        raise ValueError(f"{usage}; {bad[0]!r} is not a language code")
    if twice := sorted({lang for lang in langs if langs.count(lang) > 1}):
        raise ValueError(f"{LANGS}{tail}: {', '.join(twice)} is listed twice")
    return tuple(sorted(langs))


def _check_languages(arm: Arm, text: str) -> None:
    """The languages an arm names are ones its tasks have (tasks not in the registry are
    the spec's field check's to report)."""
    chosen = [head for head in (TRANSLATE, LANGS) if arm.get(head) is not None]
    if len(chosen) > 1:
        raise ValueError(f"{text!r}: {TRANSLATE} and {LANGS}[...] both choose the languages")
    if not chosen:
        return
    known = [t for t in arm.tasks if t in task_names()]
    if lacking := [t for t in known if not get_task(t).translated]:
        have = [t for t in task_names() if get_task(t).translated]
        raise ValueError(
            f"{text!r}: {', '.join(lacking)} {'has' if len(lacking) == 1 else 'have'} no "
            f"translated training data, so no {chosen[0]} arm (tasks with translations: "
            f"{', '.join(have)})"
        )
    for t in known:
        languages = ["en", *get_task(t).translated]
        for lang in arm.get(LANGS, ()):
            if lang not in languages:
                raise ValueError(
                    f"{text!r}: {t} has no training data in {lang!r}{suggest(lang, languages)} "
                    f"(it has {' '.join(sorted(languages))})"
                )


register(
    Modifier(
        head=TRANSLATE,
        parse=_parse_translate,
        spell=lambda _: TRANSLATE,
        doc="train on the task's machine-translated training sets, every language, pooled",
    )
)
register(
    Modifier(
        head=LANGS,
        parse=_parse_langs,
        spell=lambda langs: f"{LANGS}[{','.join(langs)}]",
        doc="train on these languages' versions of the training data, pooled (en: English)",
    )
)
