"""Checks of a raw spec that span fields, and pydantic errors as one line per problem.

Cross-field checks run on the raw mapping, beside pydantic's field checks, so that one
`xstilts validate` reports every problem at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from evaluation.tasks import Role, suggest, task_names
from evaluation.tasks.protocols import DEFAULT_PROTOCOL, PROTOCOLS
from orchestrator.arms import parse_intermediate
from storage.errors import UserError
from storage.files import redact
from trainers.ladder import LADDER


def field_path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def all_field_names(model: type[BaseModel]) -> set[str]:
    """Every field name of a model and the models nested in it."""
    names: set[str] = set()
    stack: list[Any] = [model]
    while stack:
        cls = stack.pop()
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            for name, info in cls.model_fields.items():
                if name not in names:
                    names.add(name)
                    stack.append(info.annotation)
        for arg in getattr(cls, "__args__", ()):
            stack.append(arg)
    return names


def format_errors(err: ValidationError, model: type[BaseModel]) -> list[str]:
    known = all_field_names(model)
    out = []
    for e in err.errors():
        loc = list(e["loc"])
        # Drop pydantic's internal tags such as 'function-after[...]'.
        loc = [p for p in loc if not (isinstance(p, str) and "[" in p)]
        if e["type"] == "extra_forbidden":
            out.append(f"{field_path(loc)}: unknown field{suggest(str(loc[-1]), known)}")
            continue
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            msg = "required field is missing"
        elif isinstance(e.get("input"), str | int | float | bool):
            msg = f"{msg}, got {redact(repr(e['input']))}"
        out.append(f"{field_path(loc)}: {msg}")
    return out


def cross_check(raw: dict[str, Any]) -> list[str]:
    checks = (
        _models,
        _duplicates,
        _resources,
        _overrides,
        _stages,
        _native,
        _data_tasks,
        _train_caps,
        _languages,
        _mlm_corpus,
    )
    return [p for check in checks for p in check(raw)]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _phase2_tasks(raw: dict[str, Any]) -> list[str]:
    """The tasks phase 2 trains, over every (well-formed) intermediate task and arm."""
    out: list[str] = []
    for name in _list(raw, "intermediate_tasks"):
        try:
            members = parse_intermediate(name).tasks if isinstance(name, str) else ()
        except ValueError:
            continue  # the field check says so
        out += [m for m in members if m not in out]
    return out


def _stage_map(raw: dict[str, Any]) -> dict[str, list[str]]:
    """Target task -> its stages: the protocol's, replaced by `phase3.stages` entries."""
    protocol = PROTOCOLS.get(raw.get("protocol", DEFAULT_PROTOCOL))
    out = {
        t: list(protocol.stages.get(t, ())) if protocol else []
        for t in _list(raw, "target_tasks")
        if isinstance(t, str)
    }
    for t, stages in _dict(_dict(raw.get("phase3")).get("stages")).items():
        if isinstance(stages, list):
            out[t] = [s for s in stages if isinstance(s, str)]
    return out


def _list(raw: dict[str, Any], key: str) -> list[Any]:
    value = raw.get(key)
    return value if isinstance(value, list) else []


def _models(raw: dict[str, Any]) -> list[str]:
    entries = raw.get("model_entries")
    known = set(LADDER) | (set(entries) if isinstance(entries, dict) else set())
    return [
        f"models[{i}]: unknown model {m!r}{suggest(str(m), known)}"
        for i, m in enumerate(_list(raw, "models"))
        if isinstance(m, str) and m not in known
    ]


def _duplicates(raw: dict[str, Any]) -> list[str]:
    out = []
    for key in ("models", "intermediate_tasks", "target_tasks", "seeds"):
        items = [x for x in _list(raw, key) if isinstance(x, str | int)]
        out += [f"{key}: {x!r} is listed twice" for x, n in Counter(items).items() if n > 1]
    return out


def _resources(raw: dict[str, Any]) -> list[str]:
    """Per-model sections (`resources`, `execution`, `phase2/3.by_model`) name models of the
    sweep."""
    models = set(_list(raw, "models"))
    sections = {s: raw.get(s) for s in ("resources", "execution")}
    sections |= {f"{p}.by_model": _dict(raw.get(p)).get("by_model") for p in ("phase2", "phase3")}
    return [
        f"{section}.{name}: model {name!r} is not in models{suggest(str(name), models)}"
        for section, entries in sections.items()
        if isinstance(entries, dict)
        for name in entries
        if name not in models
    ]


def _overrides(raw: dict[str, Any]) -> list[str]:
    """Per-task settings (`overrides`, also under `by_model.<m>`) name tasks the phase trains."""
    stages = {s for staged in _stage_map(raw).values() for s in staged}
    allowed = {
        "phase2": set(_phase2_tasks(raw)),
        "phase3": set(_list(raw, "target_tasks")) | set(task_names(Role.INTERMEDIATE)) | stages,
    }
    out = []
    for phase, tasks in allowed.items():
        cfg = _dict(raw.get(phase))
        where = {f"{phase}.overrides": cfg.get("overrides")}
        for model, settings in _dict(cfg.get("by_model")).items():
            where[f"{phase}.by_model.{model}.overrides"] = _dict(settings).get("overrides")
        out += [
            f"{at}.{t}: task {t!r} is not trained in {phase} of this sweep{suggest(str(t), tasks)}"
            for at, overrides in where.items()
            if isinstance(overrides, dict)
            for t in overrides
            if t not in tasks
        ]
    return out


def _stages(raw: dict[str, Any]) -> list[str]:
    """`phase3.stages`: target tasks of the sweep, each stage a task with English training
    data, none twice and none the task itself."""
    from evaluation.tasks import get_task

    own = _dict(_dict(raw.get("phase3")).get("stages"))
    targets = [t for t in _list(raw, "target_tasks") if isinstance(t, str)]
    trainable = [t for t in task_names() if get_task(t).train]
    out = []
    for task, stages in own.items():
        at = f"phase3.stages.{task}"
        if task not in targets:
            out.append(
                f"{at}: {task!r} is not among the sweep's target_tasks{suggest(task, targets)}"
            )
        if not isinstance(stages, list):
            continue  # the field check says so
        for i, stage in enumerate(stages):
            if stage == task:
                out.append(f"{at}[{i}]: a task cannot be its own stage")
            elif isinstance(stage, str) and stage not in trainable:
                out.append(f"{at}[{i}]: {stage!r} is not a task with English training data"
                           f"{suggest(stage, trainable)}")  # fmt: skip
        out += [
            f"{at}: {s!r} is listed twice"
            for s, n in Counter(x for x in stages if isinstance(x, str)).items()
            if n > 1
        ]
    return out


def _native(raw: dict[str, Any]) -> list[str]:
    """Tasks whose data is not on the Hub need a local directory for their native files."""
    from evaluation.tasks import get_task

    data = _data(raw)
    if data.get("source") in ("local", "fixtures") or data.get("native_dir"):
        return []
    own = data.get("tasks")
    own = own if isinstance(own, dict) else {}
    local = {t for t, d in own.items() if isinstance(d, dict) and d.get("source") != "hub"}
    out = []
    for key in ("intermediate_tasks", "target_tasks"):
        for i, name in enumerate(_list(raw, key)):
            try:
                members = parse_intermediate(name).tasks if isinstance(name, str) else (name,)
            except ValueError:
                continue
            native = [
                m
                for m in members
                if m in task_names() and m not in local and _needs_native(get_task(m), key)
            ]
            if native:
                out.append(
                    f"{key}[{i}]: {name!r} needs {', '.join(native)} which is not on the Hub; "
                    "set data.native_dir to the directory holding its native files"
                )
    return out


def _needs_native(task: Any, key: str) -> bool:
    """Mandatory native sources (FEVER-NLI in ANLI+ is optional)."""
    sources = [*task.train, *task.dev, *task.eval.values()]
    return any(s.native and s.native != "fever_nli" for s in sources)


def _data(raw: dict[str, Any]) -> dict[str, Any]:
    data = raw.get("data")
    return data if isinstance(data, dict) else {}


def _sweep_tasks(raw: dict[str, Any]) -> list[str]:
    """Every task the sweep reads data of: phase 2's (multitask's members), the target tasks
    and their stages."""
    tasks = _phase2_tasks(raw)
    for name, stages in _stage_map(raw).items():
        tasks += [m for m in (*stages, name) if m not in tasks]
    return tasks


def _train_caps(raw: dict[str, Any]) -> list[str]:
    """`data.max_examples.tasks` names tasks the sweep trains."""
    from evaluation.tasks import get_task

    caps = _dict(_dict(_data(raw).get("max_examples")).get("tasks"))
    known = set(task_names())
    trained = [t for t in _sweep_tasks(raw) if t in known and get_task(t).train]
    return [
        f"data.max_examples.tasks.{t}: the sweep trains no task {t!r}{suggest(str(t), trained)}"
        for t in caps
        if t not in trained
    ]


def _data_tasks(raw: dict[str, Any]) -> list[str]:
    """`data.tasks` gives sources to tasks the sweep reads."""
    own = _data(raw).get("tasks")
    if not isinstance(own, dict):
        return []
    used = _sweep_tasks(raw)
    return [
        f"data.tasks.{t}: the sweep reads no data of task {t!r}{suggest(str(t), used)}"
        for t in own
        if t not in used
    ]


def _languages(raw: dict[str, Any]) -> list[str]:
    """`languages: {task: [codes] | all}` names target tasks of the sweep and languages they
    have."""
    from evaluation.tasks import get_task

    chosen = raw.get("languages")
    if not isinstance(chosen, dict):
        return []
    targets = [t for t in _list(raw, "target_tasks") if isinstance(t, str)]
    out = []
    for task, langs in chosen.items():
        if task not in targets:
            hint = suggest(str(task), targets)
            out.append(f"languages.{task}: {task!r} is not among the sweep's target_tasks{hint}")
            continue
        if langs == "all" or not isinstance(langs, list):
            continue  # `all`: every language of the protocol's list; else the field check
        if not langs:
            out.append(f"languages.{task}: no language; list at least one, or drop the entry")
        have = get_task(task).languages
        for i, lang in enumerate(langs):
            if lang not in have:
                hint = suggest(str(lang), have)
                out.append(f"languages.{task}[{i}]: {task} has no language {lang!r}{hint}")
        out += [
            f"languages.{task}: {lang!r} is listed twice"
            for lang, n in Counter(x for x in langs if isinstance(x, str)).items()
            if n > 1
        ]
    return out


def _mlm_corpus(raw: dict[str, Any]) -> list[str]:
    """An `mlm` arm has a corpus (`data.mlm_corpus`, or the fixture corpus with `source:
    fixtures`), a corpus belongs to an `mlm` arm, and a local corpus folder holds a
    `<lang>.txt` of every language it names."""
    from evaluation.data.mlm_corpus import MlmCorpus, corpus_languages
    from evaluation.tasks import Format, get_task

    known = set(task_names())
    trains = any(get_task(t).format is Format.MASKED_LM for t in _phase2_tasks(raw) if t in known)
    data = _data(raw)
    given = data.get("mlm_corpus")
    if not trains:
        return ["data.mlm_corpus: the sweep trains no `mlm` arm"] if given is not None else []
    if given is None:
        if data.get("source") == "fixtures":
            return []  # the fixture tree's own corpus, written with the fixtures
        return [
            "data.mlm_corpus: the `mlm` arm trains on a text corpus: set data.mlm_corpus "
            "(local_dir: a folder of <lang>.txt files, or hub: a dataset id)"
        ]
    corpus = _dict(given)
    folder, langs = corpus.get("local_dir"), corpus.get("languages", "all")
    if not isinstance(folder, str) or not (langs == "all" or isinstance(langs, list)):
        return []  # a Hub corpus, or the field checks say what is wrong
    chosen = None if langs == "all" else tuple(str(x) for x in langs)
    try:
        corpus_languages(MlmCorpus(local_dir=str(Path(folder).expanduser()), languages=chosen))
    except UserError as err:
        return [str(err)]
    return []
