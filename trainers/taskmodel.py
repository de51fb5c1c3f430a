"""One encoder with one head per task, and the inference callables built on it.

`predictor(...)` turns a trained head into `evaluation.predict.Predictor` (examples ->
predictions in the scorer's form); `embedder(...)` turns an encoder into an
`evaluation.predict.Embedder` (texts -> mean-pooled hidden states of one layer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor, nn

from evaluation.predict import Embedder, Predicted, Predictor, infer
from evaluation.tasks import TaskSpec
from trainers.features import features_for
from trainers.formats import head_for
from trainers.heads import Batch, Feature, _ids_batch
from trainers.precision import bf16_autocast


class TaskModel(nn.Module):
    def __init__(self, encoder: nn.Module, heads: dict[str, nn.Module]) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)


@dataclass(frozen=True)
class Tokenization:
    """How a task's text becomes features: tokenizer, its digest, window, feature cache."""

    tokenizer: Any
    digest: str
    max_len: int
    cache_dir: str | None


def task_features(
    spec: TaskSpec, examples: Sequence[Any], tok: Tokenization, split: str, train: bool
) -> list[Feature]:
    key = (tok.digest, spec.name, split, tok.max_len, train)
    return features_for(head_for(spec), examples, tok.tokenizer, key, tok.cache_dir)


def predictor(
    model: TaskModel, spec: TaskSpec, tok: Tokenization, batch_size: int, autocast: bool
) -> Callable[[Sequence[Any]], Any]:
    """Examples -> predictions only (the training loop's dev evaluation)."""
    scored = scored_predictor(model, spec, tok, batch_size, autocast)
    return lambda examples: scored(examples).predictions


def scored_predictor(
    model: TaskModel, spec: TaskSpec, tok: Tokenization, batch_size: int, autocast: bool
) -> Predictor:
    """Examples -> `Predicted`: predictions and the head's per-example nll, one forward pass."""
    kind = head_for(spec)
    head = model.heads[spec.name]
    pad_id = tok.tokenizer.pad_token_id

    def forward(batch: Batch) -> Tensor:
        with bf16_autocast(model, autocast):
            return kind.forward(model.encoder, head, _to(batch, model))

    def predict(examples: Sequence[Any]) -> Any:
        features = task_features(spec, examples, tok, "eval", train=False)
        was_training = model.training
        model.eval()
        try:
            outputs = infer(forward, features, kind.collate, pad_id=pad_id, batch_size=batch_size)
        finally:
            model.train(was_training)
        nll = kind.nll(outputs, features, examples) if kind.nll is not None else None
        return Predicted(kind.decode(outputs, features, examples, spec), nll)

    return predict


def _to(batch: Batch, model: nn.Module) -> Batch:
    """The batch on the model's device; on a GPU through pinned memory, without a host sync."""
    device = next(model.parameters()).device
    if device.type != "cuda":
        return {k: v.to(device) for k, v in batch.items()}
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}


def mean_pool(states: Tensor, mask: Tensor) -> Tensor:
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1)


def embedder(
    encoder: nn.Module, tokenizer: Any, layer: int, max_len: int, batch_size: int = 128
) -> Embedder:
    """Texts -> mean-pooled hidden states of `layer` (0 = embeddings), float32 numpy."""
    pad_id = tokenizer.pad_token_id

    def forward(batch: Batch) -> Tensor:
        batch = _to(batch, encoder)
        out = encoder(**batch, output_hidden_states=True)
        return mean_pool(out.hidden_states[layer], batch["attention_mask"])

    def embed(texts: Sequence[str]) -> np.ndarray:
        ids = tokenizer(list(texts), truncation=True, max_length=max_len)["input_ids"]
        was_training = encoder.training
        encoder.eval()
        try:
            rows = infer(
                forward,
                [{"input_ids": i} for i in ids],
                _ids_batch,
                pad_id=pad_id,
                batch_size=batch_size,
            )
        finally:
            encoder.train(was_training)
        return np.stack(rows) if rows else np.zeros((0, 1), dtype=np.float32)

    return embed
