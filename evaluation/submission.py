"""Reading the official XTREME submission layout into the scorers' in-memory forms.

A tree holds ``<root>/<task>/test-<lang>.<ext>`` with ``ext`` from `TaskSpec.file_ext`.
What a file holds depends on the task's scorer family and extension (`READERS`):

- accuracy/tatoeba ``.tsv``: one label per line, stripped (XNLI, PAW-X, Tatoeba indices);
- accuracy ``.jsonl``: one JSON object per line, its ``label`` value (XCOPA);
- seqeval ``.tsv``: one tag per line, a blank line after each sentence (two blank lines in a
  row make an empty sentence, as the official reader does);
- bucc ``.tsv``: ``source_id<TAB>target_id`` per line;
- squad/mlqa ``.json``: predictions ``{id: answer text}``; labels SQuAD-format JSON
  (``{"data": [...]}`` or the bare article list);
- mewslix ``.json``: ``{id: [entity ids]}`` on both sides (labels hold singleton lists);
- lareqa ``.json`` (no official file format exists): ``{question id: [candidate ids]}``,
  ranked in predictions, the relevant ids in labels.

Bad input raises `UserError` with one line naming the file (and line). The reader is as
tolerant as the official script, no more: unequal example counts are errors where it
requires equal counts (labels, tags, XCOPA); a missing QA / Mewsli-X / LAReQA id scores 0
and an id absent from the labels is ignored, each with a warning; BUCC pairs not in the
gold count as wrong. A tagged sentence whose length differs from the gold one is scored as
the official scorer scores it (see `evaluation.scorers.seqeval`) with a warning. Where the
official reader would silently misread a malformed file, it is an error here: a tab in a
one-value-per-line file, a BUCC line (blank ones included) that is not two tab-separated
ids, a JSON value of the wrong kind, a question id that occurs twice in the labels.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.tasks import TaskSpec, suggest
from storage.errors import UserError

Warn = Callable[[str], None]
_FILE_NAME = re.compile(r"test-(?P<lang>[^.]+)\.(?P<ext>.+)")


def _lines(path: Path) -> list[str]:
    """The file's lines, split as Python's text mode splits them (universal newlines)."""
    try:
        with path.open(encoding="utf-8") as handle:
            return list(handle)
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror})") from None


def _json(path: Path) -> Any:
    text = "".join(_lines(path))
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{path}:{err.lineno}: malformed JSON ({err.msg})") from None


def _single_column(path: Path) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(_lines(path), start=1):
        line = raw.strip()
        if "\t" in line:
            raise UserError(f"{path}:{number}: expected one value per line, found a tab")
        yield number, line


def read_lines(path: Path) -> list[str]:
    return [line for _, line in _single_column(path)]


def read_tags(path: Path) -> list[list[str]]:
    sentences: list[list[str]] = []
    sentence: list[str] = []
    for _, tag in _single_column(path):
        if tag:
            sentence.append(tag)
        else:
            sentences.append(sentence)
            sentence = []
    if sentence:
        sentences.append(sentence)
    return sentences


def read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for number, raw in enumerate(_lines(path), start=1):
        fields = raw.strip().split("\t")
        if len(fields) != 2 or not all(fields):
            raise UserError(f"{path}:{number}: expected 'source_id<TAB>target_id'")
        pairs.append((fields[0], fields[1]))
    return pairs


def read_jsonl_labels(path: Path) -> list[Any]:
    labels = []
    for number, row in enumerate(_lines(path), start=1):
        try:
            data = json.loads(row)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: malformed JSON line ({err.msg})") from None
        if not isinstance(data, dict) or "label" not in data:
            raise UserError(f"{path}:{number}: expected a JSON object with a 'label' field")
        labels.append(data["label"])
    return labels


def _object(path: Path) -> dict[str, Any]:
    data = _json(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object mapping ids to predictions")
    return data


def read_answers(path: Path) -> dict[str, str]:
    data = _object(path)
    for qid, answer in data.items():
        if not isinstance(answer, str):
            raise UserError(f"{path}: answer for id {qid!r} is not a string")
    return data


def read_id_lists(path: Path) -> dict[str, list[str]]:
    data = _object(path)
    for key, ids in data.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise UserError(f"{path}: value for id {key!r} is not a list of strings")
    return data


def read_mewslix_labels(path: Path) -> dict[str, list[str]]:
    data = read_id_lists(path)
    for key, ids in data.items():
        if not ids:
            raise UserError(f"{path}: gold entity list for id {key!r} is empty")
    return data


def _articles(path: Path) -> list[Any]:
    data = _json(path)
    if isinstance(data, dict) and "data" in data:
        data = data["data"]
    if not isinstance(data, list):
        raise UserError(f"{path}: expected SQuAD-format JSON ({{'data': [articles]}})")
    return data


def read_squad_labels(path: Path) -> dict[str, list[str]]:
    golds: dict[str, list[str]] = {}
    try:
        for article in _articles(path):
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    if qa["id"] in golds:
                        raise UserError(f"{path}: question id {qa['id']!r} occurs twice")
                    golds[qa["id"]] = [str(answer["text"]) for answer in qa["answers"]]
    except (KeyError, TypeError) as err:
        raise UserError(f"{path}: not SQuAD-format JSON (missing or bad {err})") from None
    return golds


@dataclass(frozen=True)
class Reader:
    """How one kind of submission file becomes a scorer's predictions and golds."""

    predictions: Callable[[Path], Any]
    labels: Callable[[Path], Any]
    keyed: bool = False  # True: {id: ...} on both sides; False: parallel sequences
    parallel: bool = True  # sequences must be equally long (ignored when keyed)


READERS: Mapping[tuple[str, str], Reader] = {
    ("accuracy", "tsv"): Reader(read_lines, read_lines),
    ("accuracy", "jsonl"): Reader(read_jsonl_labels, read_jsonl_labels),
    ("tatoeba", "tsv"): Reader(read_lines, read_lines),
    ("seqeval", "tsv"): Reader(read_tags, read_tags),
    ("bucc", "tsv"): Reader(read_pairs, read_pairs, parallel=False),
    ("squad", "json"): Reader(read_answers, read_squad_labels, keyed=True),
    ("mlqa", "json"): Reader(read_answers, read_squad_labels, keyed=True),
    ("mewslix", "json"): Reader(read_id_lists, read_mewslix_labels, keyed=True),
    ("lareqa", "json"): Reader(read_id_lists, read_id_lists, keyed=True),
}


def reader_for(spec: TaskSpec) -> Reader:
    try:
        return READERS[spec.scorer, spec.file_ext]
    except KeyError:
        raise UserError(f"task {spec.name!r} has no submission file format") from None


def language_files(task_dir: Path, spec: TaskSpec, warn: Warn) -> dict[str, Path]:
    """``test-<lang>.<ext>`` files of one task folder, by language; bad names are errors."""
    files: dict[str, Path] = {}
    for path in sorted(task_dir.iterdir()):
        match = _FILE_NAME.fullmatch(path.name)
        if path.name.startswith("."):
            continue
        if match is None or not path.is_file():
            warn(f"{path}: ignored (not a test-<lang>.{spec.file_ext} file)")
            continue
        lang, ext = match["lang"], match["ext"]
        if ext != spec.file_ext:
            raise UserError(f"{path}: {spec.name} files are test-<lang>.{spec.file_ext}")
        if lang not in spec.languages:
            hint = suggest(lang, spec.languages)
            raise UserError(f"{path}: {lang!r} is not a {spec.name} language{hint}")
        files[lang] = path
    return files


def _check_keys(pred_path: Path, label_path: Path, preds: dict, golds: dict, warn: Warn) -> None:
    missing = len(golds.keys() - preds.keys())
    extra = len(preds.keys() - golds.keys())
    if missing:
        warn(f"{pred_path}: {missing} of {len(golds)} ids in {label_path.name} unanswered, 0")
    if extra:
        warn(f"{pred_path}: {extra} ids not in {label_path.name} ignored")


def _check_sequences(pred_path: Path, label_path: Path, preds: list, golds: list, warn: Warn):
    if len(preds) != len(golds):
        raise UserError(f"{pred_path}: {len(preds)} examples but {label_path} has {len(golds)}")
    if not golds:
        raise UserError(f"{label_path}: no examples")
    if golds and isinstance(golds[0], list):
        uneven = sum(len(p) != len(g) for p, g in zip(preds, golds, strict=True))
        if uneven:
            warn(f"{pred_path}: {uneven} sentences differ in length from {label_path.name}")


def load_language(spec: TaskSpec, pred_path: Path, label_path: Path, warn: Warn) -> tuple:
    """(predictions, golds) of one language, in the in-memory form of the task's scorer."""
    reader = reader_for(spec)
    golds = reader.labels(label_path)
    preds = reader.predictions(pred_path)
    if reader.keyed:
        _check_keys(pred_path, label_path, preds, golds, warn)
    elif reader.parallel:
        _check_sequences(pred_path, label_path, preds, golds, warn)
    return preds, golds
