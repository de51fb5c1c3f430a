"""Zero-shot prediction on every language of a target task: batched inference, the
official submission layout, and in-memory scoring.

The model side is a callable handed in (a `Predictor` from `trainers`, or an `Embedder`
for retrieval), so this module needs no trainer code: `infer` runs any batched forward
function length-sorted under `torch.inference_mode`; `evaluate` predicts each language,
writes ``<out_dir>/<task>/test-<lang>.<ext>`` as the official scripts read it and scores
the predictions with the task's scorer, and writes the head's mean negative
log-likelihood (`nll`) from the same forward pass; every F1, map@20 and nll row comes with
its test-set sampling SE (``<metric>_se``, `evaluation.sampling`); `evaluate_retrieval`
does the same for Tatoeba and BUCC from sentence embeddings (of the phase-2 encoder, as
Phang et al. score them), BUCC's margin threshold tuned on each language's validation gold
and reused on test;
`evaluate_dual` ranks a candidate pool with a trained dual encoder (Mewsli-X: the entity
pool; LAReQA: every answer sentence of every language).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from evaluation.data.examples import QuestionExample
from evaluation.data.retrieval import answer_pool
from evaluation.retrieval import (
    BuccMining,
    BuccSide,
    lareqa_rank,
    mewslix_rank,
    mine_bucc,
    tatoeba_top1,
)
from evaluation.sampling import bootstrap_se, combine_mean_nll
from evaluation.scorers import get_scorer
from evaluation.tasks import TaskSpec
from storage.files import write_file
from storage.schema import LOSS_METRIC, METRICS, sampling_se_metric

Row = dict[str, Any]


@dataclass(frozen=True)
class Predicted:
    """One language's predictions in the scorer's in-memory form and, from the same
    outputs, per example (summed nll of the gold, units): `trainers.heads.NllFn`; None
    where the head has no likelihood."""

    predictions: Any
    nll: np.ndarray | None = None


class Predictor(Protocol):
    """Examples of one language -> its `Predicted`."""

    def __call__(self, examples: Sequence[Any]) -> Predicted: ...


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
            logits = forward(collate([features[i] for i in chunk], pad_id)).float().cpu().numpy()
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
    if spec.scorer == "mewslix":
        return {ex.id: ex.entity_id for ex in examples}
    if spec.scorer == "lareqa":
        return relevant_ids(examples, candidate_pool(examples))
    if spec.scorer == "accuracy":
        return [_name(spec, ex.label) for ex in examples]
    if spec.scorer == "masked_lm":  # the MLM head compares with its masked tokens itself
        return [None] * len(examples)
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
    write_file(path, text.encode("utf-8"))
    return path


def _row(spec: TaskSpec, language: str, metric: str, value: float, n: int) -> Row:
    return {
        "target_task": spec.name,
        "language": language,
        "split": spec.report_split,
        "metric": metric,
        "value": float(value),
        "n_examples": n,
    }


def score_rows(spec: TaskSpec, language: str, predictions: Any, gold: Any, n: int) -> list[Row]:
    """The task's metrics, and the sampling SE of each that has an SE row (F1, map@20)."""
    scorer = get_scorer(spec.scorer)
    scores = scorer.score(predictions, gold, language=language)
    rows = [_row(spec, language, m, scores[m], n) for m in spec.metrics]
    with_se = [m for m in spec.metrics if sampling_se_metric(m) in METRICS]
    if with_se and scorer.per_example is not None and scorer.combine is not None:
        per_example = scorer.per_example(predictions, gold, language=language)
        se = bootstrap_se(per_example, scorer.combine, spec.name, language, scorer.name)
        rows += [_row(spec, language, sampling_se_metric(m), se[m], n) for m in with_se]
    return rows


def nll_rows(spec: TaskSpec, language: str, nll: np.ndarray, n: int) -> list[Row]:
    """The head's mean nll over the language's units (examples; tokens for tagging) and its
    sampling SE; nothing when no unit has a likelihood."""
    units = float(nll[:, 1].sum())
    if units <= 0:
        return []
    se = bootstrap_se(nll, combine_mean_nll, spec.name, language, LOSS_METRIC)[LOSS_METRIC]
    value = float(nll[:, 0].sum()) / units
    return [
        _row(spec, language, LOSS_METRIC, value, n),
        _row(spec, language, sampling_se_metric(LOSS_METRIC), se, n),
    ]


# --- whole tasks ------------------------------------------------------------------------


def evaluate(
    spec: TaskSpec,
    examples_by_language: Mapping[str, Sequence[Any]],
    predictor: Predictor,
    out_dir: str | Path | None,
) -> list[Row]:
    """Predict, write and score every language of a task with a trained head; its nll
    comes from the same forward pass as the predictions (the rows of
    `evaluation.scorers.row_metrics`)."""
    rows: list[Row] = []
    for language, examples in examples_by_language.items():
        found = predictor(examples)
        predictions = found.predictions
        if out_dir is not None:
            write_submission(out_dir, spec, language, submission_text(spec, predictions, examples))
        rows += score_rows(spec, language, predictions, golds(spec, examples), len(examples))
        if found.nll is not None:
            rows += nll_rows(spec, language, found.nll, len(examples))
    return rows


def tatoeba_predictions(pairs: Sequence[Any], embed: Embedder) -> list[int]:
    """For each non-English sentence, the index of the nearest English one (cosine)."""
    return tatoeba_top1(embed([p.source for p in pairs]), embed([p.target for p in pairs]))


def bucc_mining(test: Sequence[Any], validation: Sequence[Any], embed: Embedder) -> BuccMining:
    """Mined test pairs, the margin threshold chosen on the validation (sample) gold only."""

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

    gold = {(p.source_id, p.target_id) for p in validation}
    return mine_bucc(sides(validation), gold, sides(test))


def evaluate_retrieval(
    spec: TaskSpec,
    examples_by_language: Mapping[str, Sequence[Any]],
    embed: Embedder,
    out_dir: str | Path | None,
    tune_by_language: Mapping[str, Sequence[Any]] | None = None,
) -> list[Row]:
    """Tatoeba and BUCC on sentence embeddings, no task training.

    BUCC needs `tune_by_language`: each language's validation pairs, whose gold sets the
    threshold reused on test (never the test gold itself).
    """
    rows: list[Row] = []
    for language, pairs in examples_by_language.items():
        if spec.scorer == "bucc":
            tune = (tune_by_language or {}).get(language)
            if not tune:
                raise ValueError(f"task {spec.name}: no validation pairs to tune {language} on")
            predictions: Any = bucc_mining(pairs, tune, embed).predictions
            gold: Any = {(p.source_id, p.target_id) for p in pairs}
        else:
            predictions, gold = tatoeba_predictions(pairs, embed), golds(spec, pairs)
        if out_dir is not None:
            write_submission(out_dir, spec, language, submission_text(spec, predictions, pairs))
        rows += score_rows(spec, language, predictions, gold, len(pairs))
    return rows


# --- dual-encoder retrieval (Mewsli-X, LAReQA) ----------------------------------------------


@dataclass(frozen=True)
class Pool:
    """Candidates of a ranking task: ids, the items to embed, and each query's relevant ids."""

    ids: tuple[str, ...]
    items: tuple[Any, ...]  # evaluation.data.examples.Entity | evaluation.data.retrieval.Candidate
    relevant: Mapping[str, frozenset[str]]


def candidate_pool(queries: Sequence[Any], entities: Sequence[Any] | None = None) -> Pool:
    """The pool the queries are ranked against.

    Questions (LAReQA): every sentence of every context of every language among `queries`,
    relevant = the question's answer sentence in each language. Mentions (Mewsli-X):
    `entities` (the task's candidate set), else the distinct entities the mentions carry.
    """
    if queries and isinstance(queries[0], QuestionExample):
        answers = answer_pool(queries)
        ids = tuple(f"{c.language}-{i}" for i, c in enumerate(answers.candidates))
        relevant = {q: frozenset(ids[i] for i in idx) for q, idx in answers.relevant.items()}
        return Pool(ids, answers.candidates, relevant)
    if entities is None:
        entities = list({ex.entity.id: ex.entity for ex in queries if ex.entity}.values())
    relevant = {ex.id: frozenset((ex.entity_id,)) for ex in queries}
    return Pool(tuple(e.id for e in entities), tuple(entities), relevant)


def relevant_ids(queries: Sequence[Any], pool: Pool) -> dict[str, frozenset[str]]:
    return {q.id: pool.relevant[q.id] for q in queries}


def rank_candidates(
    spec: TaskSpec, queries: np.ndarray, candidates: np.ndarray, pool: Pool
) -> list[list[str]]:
    """Top-20 candidate ids per query, as the task's official retrieval does it."""
    if not pool.ids:
        raise ValueError(f"task {spec.name}: the candidate pool is empty")
    rank = mewslix_rank if spec.scorer == "mewslix" else lareqa_rank
    return rank(queries, candidates, pool.ids)


@dataclass(frozen=True)
class DualEncoder:
    """The two towers of a trained dual encoder (one shared encoder) as embedding functions."""

    queries: Callable[[Sequence[Any]], np.ndarray]  # mentions or questions
    candidates: Callable[[Sequence[Any]], np.ndarray]  # Pool.items


def evaluate_dual(
    spec: TaskSpec,
    examples_by_language: Mapping[str, Sequence[Any]],
    encoder: DualEncoder,
    out_dir: str | Path | None,
    entities: Sequence[Any] | None = None,
) -> list[Row]:
    """Rank one shared pool for every language's queries; write and score each language."""
    everything = [ex for examples in examples_by_language.values() for ex in examples]
    pool = candidate_pool(everything, entities)
    pool_embeddings = encoder.candidates(pool.items)
    rows: list[Row] = []
    for language, examples in examples_by_language.items():
        ranked = rank_candidates(spec, encoder.queries(examples), pool_embeddings, pool)
        predictions = {ex.id: ids for ex, ids in zip(examples, ranked, strict=True)}
        gold = relevant_ids(examples, pool) if spec.scorer == "lareqa" else golds(spec, examples)
        if out_dir is not None:
            write_submission(out_dir, spec, language, submission_text(spec, predictions, examples))
        rows += score_rows(spec, language, predictions, gold, len(examples))
    return rows
