"""What a task reads, and which of it a local directory lacks.

`task_needs(task, languages, trains)` lists every source a task reads in a sweep: its
English training and dev splits when it trains, the evaluation split of each selected
language, and the split a decision threshold is tuned on (BUCC). `missing_files` checks
them against a local mirror before anything trains: one line per missing file, naming the
path it looked for. `xstilts tasks --files TASK` prints `expected_file` of each source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from evaluation.data.mirror import SourceKind, expected_file, missing_message, split_files
from evaluation.tasks.spec import Role, Source, TaskSpec


@dataclass(frozen=True)
class Need:
    """One split a task reads: which part of the protocol, in which language."""

    part: str  # train, dev, eval or tune
    language: str
    source: Source


def task_needs(
    task: TaskSpec, languages: Sequence[str] | None = None, trains: bool | None = None
) -> list[Need]:
    """The splits `task` reads: training and dev data when it `trains` (default: an
    intermediate task, or a target task with English training data), and the evaluation
    (and threshold-tuning) split of each of `languages` (default: all of a target task's)."""
    trains = (
        (task.role is Role.INTERMEDIATE or task.needs_target_training) if trains is None else trains
    )
    needs: list[Need] = []
    if trains:
        needs += [Need("train", "en", s) for s in task.train]
        needs += [Need("dev", "en", s) for s in task.dev]
    if task.role is Role.TARGET:
        for lang in languages or task.languages:
            needs.append(Need("eval", lang, task.eval[lang]))
            if lang in task.tune:
                needs.append(Need("tune", lang, task.tune[lang]))
    return needs


def missing_files(
    needs: Iterable[Need],
    source: SourceKind,
    local_dir: Path | str | None,
    native_dir: Path | str | None = None,
) -> list[str]:
    """One line per split of `needs` that the local directories do not hold.

    Hub sweeps are not checked here (their splits are fetched when read, their native
    files read from `native_dir` where the cells run); a local mirror's native files must
    be in `<native_dir or local_dir>/<dataset>/` unless optional (FEVER-NLI).
    """
    out: dict[str, str] = {}
    if source == "hub" or local_dir is None:
        return []
    for need in needs:
        src = need.source
        if src.native is not None:
            where = native_dir or local_dir
            if where is not None and not src.optional and not (Path(where) / src.dataset).is_dir():
                path = Path(where) / src.dataset
                out.setdefault(
                    str(path), f"dataset {src.dataset!r}: missing {path}/ (native files)"
                )
            continue
        if not split_files(src, Path(local_dir)):
            out.setdefault(expected_file(src), missing_message(src, Path(local_dir)))
    return list(out.values())


def file_lines(task: TaskSpec) -> list[str]:
    """`<part> <language>: <dataset>/<config>/<split>.parquet`, every split the task reads,
    and its translated training sets (read by the `translate-train` and `langs[...]` arms)."""
    lines = [f"{n.part} {n.language}: {expected_file(n.source)}" for n in task_needs(task)]
    lines += [
        f"train {lang} (translated): {expected_file(src)}"
        for lang, src in sorted(task.translated.items())
    ]
    return lines
