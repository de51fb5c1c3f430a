"""The masked-language-model head of the `mlm` intermediate task (`Format.MASKED_LM`).

One corpus line is one feature, cut at `max_seq_length` tokens (jiant's `mlm_simple`: one
line per example, "everything past the first max_seq_length tokens per line will be
ignored", jiant guides/tasks/task_specific.md:14 at daa5a258).

Masking is BERT's, as transformers' `DataCollatorForLanguageModeling` and jiant
(jiant/tasks/lib/templates/mlm.py:159-192) draw it: each non-special token is chosen with
probability 0.15; a chosen token becomes <mask> with probability 0.8, a uniformly drawn
token of the vocabulary with probability 0.1 (half of the rest), and stays itself
otherwise; the loss is the cross-entropy over chosen tokens only. Training masks are drawn
anew for every batch in `collate`, from the RNG state the loop seeds for the micro-batch
(`trainers.state.seed_unit`, before the batch is collated): the same masks for the same
(seed, step, micro-batch) on any resources, and on resume. Dev lines are masked once, with a
generator seeded from the line itself, so that dev scores compare across evaluations.

The head is XLM-R's (`XLMRobertaLMHead`: dense, GELU, LayerNorm, decoder), its decoder tied
to the encoder's input embeddings and its decoder bias to its bias, as XLM-R's are. For a
pretrained checkpoint it starts from the checkpoint's own pretrained MLM head, the
``lm_head.*`` weights that `AutoModel` leaves out, as jiant does for MLM tasks
(jiant/proj/simple/runscript.py:200-201 loads `from_transformers_with_mlm` whenever a task
is MLM; jiant/proj/main/modeling/model_setup.py:188-197 maps ``lm_head.*`` onto the MLM
head, decoder bias = bias, and ties the decoder to the word embeddings). A model without
one (the tiny ladder, built from a config) gets a fresh head, initialised from the phase's
seed as transformers initialises XLM-R (normal(0, initializer_range) weights, zero biases,
unit LayerNorm).

`forward` returns, per token, (nll of the gold token, 1 if predicted exactly) at masked
positions and zeros elsewhere: the vocabulary logits exist only for masked tokens, and the
loss, the masked-token accuracy (`evaluation.scorers.masked_lm`) and the per-line nll all
come from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from transformers.models.xlm_roberta.modeling_xlm_roberta import XLMRobertaLMHead

from evaluation.tasks import TaskSpec
from storage.errors import UserError
from trainers.heads import IGNORE, Batch, Feature, HeadKind, _ids_batch, encode, pad

MLM_PROBABILITY = 0.15
MASK_SHARE = 0.8  # of the chosen tokens: <mask>
RANDOM_SHARE = 0.5  # of the chosen tokens not masked: a random token (10 % of all chosen)
LM_HEAD = "lm_head."  # the pretrained head's prefix in RoBERTa-family checkpoints
HEAD_KEYS = ("dense.weight", "dense.bias", "layer_norm.weight", "layer_norm.bias", "bias")


def mask_tokens(
    ids: Tensor,
    maskable: Tensor,
    mask_id: int,
    vocab: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """(inputs, labels): BERT's 15 % with 80/10/10, drawn in transformers' order from
    `generator` (None: torch's global CPU generator). `maskable` is False on specials and
    padding; labels are IGNORE where nothing was chosen."""
    labels = ids.clone()
    probs = torch.full(ids.shape, MLM_PROBABILITY).masked_fill(~maskable, 0.0)
    chosen = torch.bernoulli(probs, generator=generator).bool()
    labels[~chosen] = IGNORE
    inputs = ids.clone()
    full = torch.full(ids.shape, MASK_SHARE)
    masked = torch.bernoulli(full, generator=generator).bool() & chosen
    inputs[masked] = mask_id
    half = torch.full(ids.shape, RANDOM_SHARE)
    randomized = torch.bernoulli(half, generator=generator).bool() & chosen & ~masked
    words = torch.randint(vocab, ids.shape, dtype=torch.long, generator=generator)
    inputs[randomized] = words[randomized]
    return inputs, labels


def _line_generator(text: str) -> torch.Generator:
    seed = int.from_bytes(hashlib.sha256(f"mlm-dev/{text}".encode()).digest()[:8], "big")
    return torch.Generator().manual_seed(seed & 0x7FFF_FFFF_FFFF_FFFF)


def _featurize(examples: Sequence[Any], tok: Any, max_len: int, train: bool) -> list[Feature]:
    enc = tok(
        [ex.text for ex in examples],
        truncation=True,
        max_length=max_len,
        return_special_tokens_mask=True,
    )
    mask_id, vocab = int(tok.mask_token_id), len(tok)
    features: list[Feature] = []
    for ids, special, ex in zip(enc["input_ids"], enc["special_tokens_mask"], examples,
                                strict=True):  # fmt: skip
        maskable = [1 - s for s in special]
        if train:  # masked per batch, in `_collate`
            features.append({"input_ids": ids, "maskable": maskable, "mask_id": mask_id,
                             "vocab": vocab})  # fmt: skip
            continue
        inputs, labels = mask_tokens(
            torch.tensor([ids]), torch.tensor([maskable]).bool(), mask_id, vocab,
            _line_generator(ex.text),
        )  # fmt: skip
        features.append({"input_ids": inputs[0].tolist(), "labels": labels[0].tolist()})
    return features


def _collate(features: list[Feature], pad_id: int) -> Batch:
    batch = _ids_batch(features, pad_id)  # attention from the unmasked ids
    if "labels" in features[0]:  # dev lines: masked once, in `_featurize`
        batch["labels"] = pad([f["labels"] for f in features], IGNORE)
        return batch
    maskable = pad([f["maskable"] for f in features], 0).bool()
    first = features[0]
    batch["input_ids"], batch["labels"] = mask_tokens(
        batch["input_ids"], maskable, first["mask_id"], first["vocab"]
    )
    return batch


def _forward(encoder: nn.Module, head: nn.Module, batch: Batch) -> Tensor:
    states = encode(encoder, batch)
    labels = batch["labels"]
    where = labels != IGNORE
    logits = head(states[where]).float()
    gold = labels[where]
    nll = nn.functional.cross_entropy(logits, gold, reduction="none")
    hit = (logits.argmax(-1) == gold).float()
    out = torch.zeros((*labels.shape, 2), dtype=torch.float32, device=states.device)
    out[where] = torch.stack([nll, hit], dim=-1)
    return out


def _loss(out: Tensor, batch: Batch) -> Tensor:
    """Mean cross-entropy over the micro-batch's masked tokens (0 when none is masked)."""
    chosen = (batch["labels"] != IGNORE).sum().clamp(min=1)
    return out[..., 0].sum() / chosen


def _counts(features: list[Feature]) -> list[int]:
    return [sum(1 for x in f["labels"] if x != IGNORE) for f in features]


def _decode(outputs: list[np.ndarray], features: list, examples: Sequence, spec: TaskSpec):
    """Per line (hits, masked): the scorer's form (`evaluation.scorers.masked_lm`)."""
    del examples, spec
    return [(float(out[:, 1].sum()), n) for out, n in zip(outputs, _counts(features), strict=True)]


def _nll(outputs: list[np.ndarray], features: list, examples: Sequence) -> np.ndarray:
    """Per line: the summed nll of its masked tokens, and their number."""
    del examples
    counts = _counts(features)
    return np.array([[float(o[:, 0].sum()), n] for o, n in zip(outputs, counts, strict=True)])


def attach(encoder: nn.Module, location: str | None) -> nn.Module:
    """The MLM head on `encoder`: the pretrained ``lm_head`` of the checkpoint at `location`
    (a Hub id or directory) where it has one, else fresh (seeded by the caller); tied."""
    config: Any = encoder.config
    head = XLMRobertaLMHead(config)
    weights = lm_head_weights(location) if location else None
    if weights is None:
        std = config.initializer_range
        nn.init.normal_(head.dense.weight, mean=0.0, std=std)
        nn.init.zeros_(head.dense.bias)
        nn.init.ones_(head.layer_norm.weight)
        nn.init.zeros_(head.layer_norm.bias)
        nn.init.zeros_(head.bias)
    else:
        with torch.no_grad():
            for key in HEAD_KEYS:
                head.get_parameter(key).copy_(weights[key])
    head.decoder.weight = encoder.get_input_embeddings().weight  # type: ignore[operator]
    head.decoder.bias = head.bias
    return head


def lm_head_weights(location: str) -> dict[str, Tensor] | None:
    """The ``lm_head.*`` tensors (prefix removed) of a checkpoint, read without loading the
    rest; None when it has none (an encoder saved alone, e.g. a phase-1 model)."""
    from transformers.utils import cached_file

    found: dict[str, Tensor] = {}
    for path in _weight_files(location, cached_file):
        found.update(_read_prefixed(path, LM_HEAD))
    if not found:
        return None
    missing = [k for k in HEAD_KEYS if k not in found]
    if missing:
        raise UserError(f"model at {location}: its lm_head lacks {', '.join(missing)}")
    return found


def _weight_files(location: str, cached_file: Any) -> list[str]:
    """The weight files of a checkpoint that hold ``lm_head.*`` (sharded or not)."""

    def get(name: str) -> str | None:
        return cached_file(location, name, _raise_exceptions_for_missing_entries=False)

    for single, index in (
        ("model.safetensors", "model.safetensors.index.json"),
        ("pytorch_model.bin", "pytorch_model.bin.index.json"),
    ):
        if (path := get(single)) is not None:
            return [path]
        if (path := get(index)) is not None:
            with open(path, encoding="utf-8") as f:
                weight_map: dict[str, str] = json.load(f)["weight_map"]
            shards = sorted({s for k, s in weight_map.items() if k.startswith(LM_HEAD)})
            return [p for s in shards if (p := get(s)) is not None]
    return []


def _read_prefixed(path: str, prefix: str) -> dict[str, Tensor]:
    if path.endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            names: list[str] = f.keys()
            return {k.removeprefix(prefix): f.get_tensor(k) for k in names if k.startswith(prefix)}
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def _build(hidden: int, n_labels: int) -> nn.Module:
    raise TypeError("the MLM head is built on its encoder (tied embeddings): HeadKind.attach")


MASKED_LM_HEAD = HeadKind(
    build=_build,
    featurize=_featurize,
    collate=_collate,
    forward=_forward,
    loss=_loss,
    decode=_decode,
    nll=_nll,
    attach=attach,
)
