"""The dual-encoder head of retrieval tasks with English training data (Mewsli-X, LAReQA).

XTREME-R's recipe (google-research/xtreme ``run_retrieval_el.py``, ``run_retrieval_qa.py``,
``BertForRetrieval``): one shared encoder embeds both sides; each embedding is
L2-normalised; the logits of a batch are ``scale * q @ c.T`` with a learnable scale that
starts at 100, and the loss is softmax cross-entropy of each query against the batch's
candidates (its own positive on the diagonal, the others as negatives).

Embeddings are the **mean-pooled last layer** (over the attention mask). The official
model takes the last layer too (its pooler over <s>); the ladder's `retrieval_layer` is for
encoders used without retrieval training (Tatoeba, BUCC), while this head trains exactly
the layer it reads. Texts follow the official preprocessing:

- Mewsli-X query: the mention's sentence with the mention marked,
  ``"{mention}: {left} { {mention} } {right}"`` (braces already in the text become
  parentheses); the sentence comes from `evaluation.data.convert.SENTENCE_END`, since the
  examples carry no sentence annotations. Candidate: the entity's description.
- LAReQA query: the question. Candidate: answer sentence + its context, concatenated
  without a separator and with newlines removed (as ``evaluate_retrieval.py`` does).

Queries are cut at ``min(max_len, 96)`` tokens (LAReQA's max query length; Mewsli-X uses
64 for both sides), candidates at ``max_len``. With ``train=False`` the features are the
examples' queries followed by an in-split candidate pool (`evaluation.predict.
candidate_pool`), so the training loop's English dev evaluation ranks that pool; zero-shot
evaluation ranks the task's full pool with `dual_encoder` + `evaluation.predict.
evaluate_dual`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from evaluation.data.convert import SENTENCE_END
from evaluation.data.examples import Entity, MentionExample, QuestionExample
from evaluation.data.retrieval import Candidate
from evaluation.predict import DualEncoder, candidate_pool, infer, rank_candidates
from evaluation.tasks import TaskSpec
from trainers.heads import Batch, Feature, HeadKind, _ids_batch, encode, pad
from trainers.precision import bf16_autocast

QUERY_MAX_LEN = 96
LOGIT_SCALE = 100.0
MARKED = re.compile(r"\{(.*?)\}")


class DualHead(nn.Module):
    """Mean pooling, L2 normalisation and the learnable logit scale of the dual encoder."""

    def __init__(self, hidden: int, n_labels: int = 0) -> None:
        super().__init__()
        del hidden, n_labels
        self.logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE))

    def forward(self, states: Tensor, mask: Tensor) -> Tensor:
        weights = mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1)
        return nn.functional.normalize(pooled.float(), dim=-1)


# --- texts ------------------------------------------------------------------------------


def _clean(text: str) -> str:
    return " ".join(text.splitlines()).replace("  ", " ").strip()


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """Character bounds of the sentence(s) holding ``text[start:end]``."""
    lo, hi = 0, len(text)
    for gap in SENTENCE_END.finditer(text):
        if gap.end() <= start:
            lo = gap.end()
        elif gap.start() >= end:
            hi = gap.start()
            break
    return lo, hi


def mention_query(ex: MentionExample) -> str:
    mention, start = ex.mention.text, ex.mention.start
    end = start + len(mention)
    lo, hi = _sentence_bounds(ex.context, start, end)
    left = MARKED.sub(r"(\1)", ex.context[lo:start])
    right = MARKED.sub(r"(\1)", ex.context[end:hi])
    return _clean(f"{mention}: {left} {{ {mention} }} {right}")


def query_text(ex: Any) -> str:
    if isinstance(ex, MentionExample):
        return mention_query(ex)
    if isinstance(ex, QuestionExample):
        return ex.question
    raise TypeError(f"no dual-encoder query for {type(ex).__name__}")


def candidate_text(item: Any) -> str:
    if isinstance(item, Entity):
        return _clean(item.description)
    if isinstance(item, Candidate):
        return (item.sentence + item.context).replace("\n", "")
    raise TypeError(f"no dual-encoder candidate for {type(item).__name__}")


def positive(ex: Any) -> Entity | Candidate | None:
    """The candidate a training example pairs its query with (None: no pair to learn)."""
    if isinstance(ex, MentionExample):
        return ex.entity
    sentence = ex.sentences[ex.answer_sentence]
    return Candidate(ex.language, sentence, ex.context)


# --- the head kind ----------------------------------------------------------------------


def query_len(max_len: int) -> int:
    return min(max_len, QUERY_MAX_LEN)


def _ids(tok: Any, texts: Sequence[str], max_len: int) -> list[list[int]]:
    if not texts:
        return []
    return list(tok(list(texts), truncation=True, max_length=max_len)["input_ids"])


def featurize(examples: Sequence[Any], tok: Any, max_len: int, train: bool) -> list[Feature]:
    """Training: (query, positive) pairs. Evaluation: queries, then the in-split pool."""
    if train:
        pairs = [(ex, c) for ex in examples if (c := positive(ex)) is not None]
        queries = _ids(tok, [query_text(ex) for ex, _ in pairs], query_len(max_len))
        cands = _ids(tok, [candidate_text(c) for _, c in pairs], max_len)
        return [{"input_ids": q, "cand_input_ids": c} for q, c in zip(queries, cands, strict=True)]
    pool = candidate_pool(examples)
    queries = _ids(tok, [query_text(ex) for ex in examples], query_len(max_len))
    cands = _ids(tok, [candidate_text(c) for c in pool.items], max_len)
    return [{"input_ids": q} for q in queries] + [
        {"input_ids": c, "candidate": cid} for c, cid in zip(cands, pool.ids, strict=True)
    ]


def collate(features: list[Feature], pad_id: int) -> Batch:
    batch = _ids_batch(features, pad_id)
    if "cand_input_ids" in features[0]:
        cand = pad([f["cand_input_ids"] for f in features], pad_id)
        batch["cand_input_ids"] = cand
        batch["cand_attention_mask"] = (cand != pad_id).long()
    return batch


def forward(encoder: nn.Module, head: nn.Module, batch: Batch) -> Tensor:
    """Pair batches: in-batch logits (queries x candidates). Single texts: embeddings."""
    queries = head(encode(encoder, batch), batch["attention_mask"])
    if "cand_input_ids" not in batch:
        return queries
    side = {"input_ids": batch["cand_input_ids"], "attention_mask": batch["cand_attention_mask"]}
    candidates = head(encode(encoder, side), side["attention_mask"])
    return head.logit_scale * queries @ candidates.T


def loss(logits: Tensor, batch: Batch) -> Tensor:
    del batch
    targets = torch.arange(logits.shape[0], device=logits.device)
    return nn.functional.cross_entropy(logits.float(), targets)


def decode(outputs: list[np.ndarray], features: list, examples: Sequence, spec: TaskSpec) -> Any:
    """Query id -> ranked ids of the in-split pool that `featurize` appended."""
    n = len(examples)
    pool = candidate_pool(examples)
    ranked = rank_candidates(spec, np.stack(outputs[:n]), np.stack(outputs[n:]), pool)
    return {ex.id: ids for ex, ids in zip(examples, ranked, strict=True)}


DUAL_HEAD = HeadKind(DualHead, featurize, collate, forward, loss, decode)


# --- zero-shot towers -------------------------------------------------------------------


def _tower(
    encoder: nn.Module,
    head: nn.Module,
    tokenizer: Any,
    text: Callable[[Any], str],
    max_len: int,
    settings: tuple[int, bool],
) -> Callable[[Sequence[Any]], np.ndarray]:
    batch_size, autocast = settings
    pad_id = int(tokenizer.pad_token_id)
    device = next(encoder.parameters()).device

    def run(batch: Batch) -> Tensor:
        batch = {k: v.to(device) for k, v in batch.items()}
        with bf16_autocast(encoder, autocast):
            return forward(encoder, head, batch)

    def embed(items: Sequence[Any]) -> np.ndarray:
        features = [
            {"input_ids": ids} for ids in _ids(tokenizer, [text(i) for i in items], max_len)
        ]
        was_training = encoder.training
        encoder.eval()
        try:
            outputs = infer(run, features, _ids_batch, pad_id=pad_id, batch_size=batch_size)
        finally:
            encoder.train(was_training)
        return np.stack(outputs) if outputs else np.zeros((0, 1), dtype=np.float32)

    return embed


def dual_encoder(
    encoder: nn.Module,
    head: nn.Module,
    tokenizer: Any,
    max_len: int,
    batch_size: int = 64,
    autocast: bool = False,
) -> DualEncoder:
    """Query and candidate towers of a trained dual encoder, for `evaluate_dual`."""
    settings = (batch_size, autocast)
    return DualEncoder(
        _tower(encoder, head, tokenizer, query_text, query_len(max_len), settings),
        _tower(encoder, head, tokenizer, candidate_text, max_len, settings),
    )
