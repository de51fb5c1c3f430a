"""Before anything trains: the data a sweep reads is where its spec says it is.

- `source: local` — the user's own mirror, read exactly as it is: every split the sweep
  reads (training and dev data of the tasks it trains, the evaluation split of each
  selected language, BUCC's tuning split, native files) must be there; one line per
  missing file, naming the path looked for.
- `source: fixtures` — synthetic data that `prepare_data` writes on first use, only into
  an absent or empty directory (or one holding fixtures already): a directory holding
  anything else is refused, never written.
- `source: hub` — fetched when read; native files (CCG, Mewsli-X) must be in `native_dir`.

`data_problems(spec)` lists every problem (`xstilts validate` and `plan` show them);
`prepare_data(spec, console)` generates what `fixtures` sources ask for, then raises them.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from evaluation.data.mirror import METADATA, SourceKind, is_fixture_tree
from evaluation.data.needs import Need, missing_files, task_needs
from evaluation.tasks import get_task
from orchestrator.arms import parse_intermediate
from orchestrator.grid import phase2_tasks
from orchestrator.spec import SweepSpec
from storage.errors import UserError
from trainers.ladder import get_model


def sweep_needs(spec: SweepSpec) -> dict[str, list[Need]]:
    """Per task the sweep reads: the splits it reads (selected languages only)."""
    needs: dict[str, list[Need]] = {}
    for inter in spec.intermediate_tasks:
        for name in phase2_tasks(inter):
            needs.setdefault(name, task_needs(get_task(name), trains=True))
        for name, langs in parse_intermediate(inter).train_languages().items():
            translated = get_task(name).translated  # an arm's translated training data
            needs[name] += [Need("train", lang, translated[lang]) for lang in langs if lang != "en"]
    for name in spec.target_tasks:
        needs[name] = task_needs(get_task(name), spec.eval_languages(name))
        for stage in spec.stages(name):
            needs.setdefault(stage, task_needs(get_task(stage), trains=True))
    return needs


def location(spec: SweepSpec, task: str) -> tuple[SourceKind, str | None]:
    """(source, local directory) `task` reads, as `trainers.celldata.DataAccess` has it."""
    own = spec.data.tasks.get(task)
    return (own.source, own.local_dir) if own else (spec.data.source, spec.data.local_dir)


def data_problems(spec: SweepSpec, *, generated: bool = False) -> list[str]:
    """Every reason the sweep's data cannot be read as the spec says (one line each).

    A `fixtures` directory that is not there yet is fine unless `generated` (it is written
    on first use); one that holds something other than fixtures is not.
    """
    out: list[str] = []
    fixture_dirs = {d for t in spec.data.tasks.values() if t.source == "fixtures"
                    for d in [t.local_dir]}  # fmt: skip
    if spec.data.source == "fixtures":
        fixture_dirs.add(spec.data.local_dir)
    for directory in sorted(d for d in fixture_dirs if d):
        out += _fixture_problems(Path(directory).expanduser(), generated)
    for name, needs in sweep_needs(spec).items():
        source, local_dir = location(spec, name)
        if source == "fixtures" and not is_fixture_tree(_path(local_dir)):
            continue  # written on first use; refused above if it holds anything else
        missing = missing_files(needs, source, _path(local_dir), _path(spec.data.native_dir))
        out += [f"data ({name}): {line}" for line in missing]
    out += _corpus_problems(spec, generated)
    return list(dict.fromkeys(out))


def _fixture_problems(root: Path, generated: bool) -> list[str]:
    if is_fixture_tree(root):
        return []
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        return [
            f"data: {root} holds data that `xstilts fixtures` did not write (no fixtures "
            f"{METADATA}); fixtures are only generated into a new or empty directory. To "
            "read your own data there, say `source: local`"
        ]
    return [f"data: no fixtures in {root}"] if generated else []


def _path(directory: str | None) -> Path | None:
    return Path(directory).expanduser().absolute() if directory else None


def _corpus_problems(spec: SweepSpec, generated: bool) -> list[str]:
    """Models with a locally trained tokenizer (the tiny ladder) read its text locally."""
    from orchestrator.grid import model_entries

    entries = model_entries(spec)
    local = [m for m in spec.models if get_model(m, entries).source == "local_config"]
    if not local:
        return []
    root = _path(spec.data.native_dir if spec.data.source == "hub" else spec.data.local_dir)
    if spec.data.source == "fixtures" and not generated:
        return []
    if root is not None and root.is_dir():
        return []
    return [
        f"models {', '.join(local)} train their tokenizer on local data: set data.local_dir "
        "(source local or fixtures) or data.native_dir (source hub) to an existing directory"
    ]


def check_data(spec: SweepSpec, *, generated: bool = False) -> None:
    problems = data_problems(spec, generated=generated)
    if problems:
        raise UserError("\n".join(problems))


def prepare_data(spec: SweepSpec, console: Console) -> None:
    """Generate the fixtures `fixtures` sources ask for (atomically, into an absent or empty
    directory only), then check that everything the sweep reads is there."""
    from evaluation.data.fixtures import ensure_fixtures

    check_data(spec)  # refuses a directory holding other data before writing anything
    dirs = {d.local_dir for d in spec.data.tasks.values() if d.source == "fixtures"}
    if spec.data.source == "fixtures":
        dirs.add(spec.data.local_dir)
    for directory in sorted(d for d in dirs if d):
        with console.status(f"generating fixtures in {directory} (first use)"):
            ensure_fixtures(Path(directory).expanduser())
    check_data(spec, generated=True)
