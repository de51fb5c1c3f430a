"""Zero-shot prediction on every language of a target task: batched inference, the
official submission layout, and in-memory scoring.

The model side is a callable handed in (a `Predictor` from `trainers`, or an `Embedder`
for retrieval), so this module needs no trainer code: `infer` runs any batched forward
function length-sorted under `torch.inference_mode`; `evaluate` predicts each language,
writes ``<out_dir>/<task>/test-<lang>.<ext>`` as the official scripts read it and scores
the predictions with the task's scorer; `evaluate_retrieval` does the same for Tatoeba and
BUCC from sentence embeddings (of the phase-2 encoder, as Phang et al. score them).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from evaluation.retrieval import BuccSide, mine_bucc, tatoeba_top1
from evaluation.scorers import get_scorer
from evaluation.tasks import TaskSpec

Row = dict[str, Any]


class Predictor(Protocol):
    """Examples of one language -> predictions in the scorer's in-memory form."""

    def __call__(self, examples: Sequence[Any]) -> Any: ...


Embedder = Callable[[Sequence[str]], np.ndarray]


def infer(
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    features: Sequence[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]], int], dict[str, torch.Tensor]],
    *,
    pad_id: int,
    batch_size: int,
) -> list[np.ndarray]:
    """Outputs of `forward` per feature, in input order; batches hold similar lengths.

    An output with a length axis is cut back to the feature's own length.
    """
    lengths = [_length(f["input_ids"]) for f in features]
    order = sorted(range(len(features)), key=lambda i: -lengths[i])
    outputs: list[np.ndarray] = [np.empty(0)] * len(features)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            logits = forward(collate([features[i] for i in chunk], pad_id)).float().numpy()
            for row, i in zip(logits, chunk, strict=True):
                outputs[i] = row[: lengths[i]] if row.ndim > 1 else row
    return outputs


def _length(ids: Sequence[Any]) -> int:
    return max(len(x) for x in ids) if ids and isinstance(ids[0], list) else len(ids)


# --- golds and submission files, per scorer family ---------------------------------------


def golds(spec: TaskSpec, examples: Sequence[Any]) -> Any:
    """The gold side of `spec.scorer`'s in-memory form."""
    if spec.scorer in ("squad", "mlqa"):
        return {ex.id: [a.text for a in ex.answers] for ex in examples}
    if spec.scorer in ("seqeval", "token_accuracy"):
        return [[_name(spec, t) for t in ex.tags] for ex in examples]
    if spec.scorer == "tatoeba":
        return list(range(len(examples)))
    if spec.scorer == "accuracy":
        return [_name(spec, ex.label) for ex in examples]
    raise ValueError(f"no gold form for scorer {spec.scorer!r}")


def _name(spec: TaskSpec, index: int) -> str | int:
    return spec.labels[index] if spec.labels else index


def submission_text(spec: TaskSpec, predictions: Any, examples: Sequence[Any]) -> str:
    """One language's predictions as the official evaluate.py reads them."""
    if spec.file_ext == "json":
        return json.dumps(predictions, ensure_ascii=False, sort_keys=True)
    if spec.file_ext == "jsonl":
        rows = [{"id": ex.id, "label": p} for ex, p in zip(examples, predictions, strict=True)]
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if spec.scorer in ("seqeval", "token_accuracy"):
        return "".join("".join(f"{t}\n" for t in sent) + "\n" for sent in predictions)
    if spec.scorer == "bucc":
        return "".join(f"{s}\t{t}\n" for s, t in sorted(predictions))
    return "".join(f"{p}\n" for p in predictions)


def write_submission(out_dir: str | Path, spec: TaskSpec, language: str, text: str) -> Path:
    path = Path(out_dir) / spec.name / f"test-{language}.{spec.file_ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def score_rows(spec: TaskSpec, language: str, predictions: Any, gold: Any, n: int) -> list[Row]:
    scores = get_scorer(spec.scorer).score(predictions, gold, language=language)
    return [
        {
            "target_task": spec.name,
            "language": language,
            "split": spec.report_split,
            "metric": metric,
            "value": float(scores[metric]),
            "n_examples": n,
        }
        for metric in spec.metrics
    ]


# --- whole tasks ------------------------------------------------------------------------


def evaluate(
    spec: TaskSpec,
    examples_by_language: Mapping[str, Sequence[Any]],
    predictor: Predictor,
    out_dir: str | Path | None,
) -> list[Row]:
    """Predict, write and score every language of a task with a trained head."""
    rows: list[Row] = []
    for language, examples in examples_by_language.items():
        predictions = predictor(examples)
        if out_dir is not None:
            write_submission(out_dir, spec, language, submission_text(spec, predictions, examples))
        rows += score_rows(spec, language, predictions, golds(spec, examples), len(examples))
    return rows


def tatoeba_predictions(pairs: Sequence[Any], embed: Embedder) -> list[int]:
    """For each non-English sentence, the index of the nearest English one (cosine)."""
    return tatoeba_top1(embed([p.source for p in pairs]), embed([p.target for p in pairs]))


def bucc_predictions(test: Sequence[Any], dev: Sequence[Any], embed: Embedder) -> set:
    """Mined test pairs, with the margin threshold chosen on the dev pairs."""

    def sides(pairs: Sequence[Any]) -> tuple[BuccSide, BuccSide]:
        src = BuccSide(
            embed([p.source for p in pairs]),
            [p.source for p in pairs],
            [p.source_id for p in pairs],
        )
        trg = BuccSide(
            embed([p.target for p in pairs]),
            [p.target for p in pairs],
            [p.target_id for p in pairs],
        )
        return src, trg

    dev_gold = {(p.source_id, p.target_id) for p in dev}
    return mine_bucc(sides(dev), dev_gold, sides(test)).predictions


def evaluate_retrieval(
    spec: TaskSpec,
    examples_by_language: Mapping[str, Sequence[Any]],
    embed: Embedder,
    out_dir: str | Path | None,
    dev_by_language: Mapping[str, Sequence[Any]] | None = None,
) -> list[Row]:
    """Tatoeba and BUCC on sentence embeddings, no task training."""
    rows: list[Row] = []
    for language, pairs in examples_by_language.items():
        if spec.scorer == "bucc":
            dev = (dev_by_language or {}).get(language) or pairs
            predictions: Any = bucc_predictions(pairs, dev, embed)
            gold: Any = {(p.source_id, p.target_id) for p in pairs}
        else:
            predictions, gold = tatoeba_predictions(pairs, embed), golds(spec, pairs)
        if out_dir is not None:
            write_submission(out_dir, spec, language, submission_text(spec, predictions, pairs))
        rows += score_rows(spec, language, predictions, gold, len(pairs))
    return rows
