"""Build a pretrained encoder and its tokenizer from a ladder entry.

`hub` entries and `local_dir` entries load through the same `from_pretrained` code (a Hub
id or a directory in Hugging Face format); `local_config` entries are an `XLMRobertaConfig`
of the entry's shape, initialised deterministically from the seed, with a tokenizer trained
locally on the given corpus. A saved phase-2 encoder is a `local_dir` in that format. Every
encoder is built with the attention kernel its entry's `Execution` names (`sdpa` or `eager`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel, XLMRobertaConfig
from transformers.utils import logging as hf_logging

from storage.errors import UserError
from trainers.ladder import TINY_MAX_POSITIONS, Attention, ModelEntry
from trainers.tokenizer import local_tokenizer, wrap

Corpus = Callable[[], list[str]]

hf_logging.disable_progress_bar()


@dataclass
class Pretrained:
    encoder: PreTrainedModel
    tokenizer: object  # a PreTrainedTokenizerFast (typed loosely: transformers' stubs vary)
    # Where it was loaded from (Hub id or directory); None when built from a config. Heads
    # that start from the checkpoint's own pretrained weights read them there (`trainers.mlm`).
    location: str | None = None


def tiny_config(entry: ModelEntry) -> XLMRobertaConfig:
    return XLMRobertaConfig(
        vocab_size=entry.vocab_size,
        hidden_size=entry.hidden,
        num_hidden_layers=entry.layers,
        num_attention_heads=entry.heads,
        intermediate_size=entry.ffn,
        max_position_embeddings=TINY_MAX_POSITIONS,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )


def _from_config(
    entry: ModelEntry, seed: int, corpus: Corpus, cache_dir: str, key: str | None
) -> Pretrained:
    tokenizer = wrap(local_tokenizer(corpus, entry.vocab_size, cache_dir, key))
    if len(tokenizer) > entry.vocab_size:
        raise UserError(f"tokenizer has {len(tokenizer)} tokens, over {entry.name}'s vocab")
    torch.manual_seed(seed)
    attention = entry.execution.attention
    encoder = AutoModel.from_config(tiny_config(entry), attn_implementation=attention)
    return Pretrained(encoder, tokenizer)


def load_dir(
    location: str, entry: ModelEntry | None = None, attention: Attention | None = None
) -> Pretrained:
    """An encoder and tokenizer in Hugging Face format (Hub id or directory).

    With `entry`, the stored config must have the entry's shape: a phase-2 encoder saved by
    another model size is a user error, not a silent mismatch. `attention`: the kernel
    (default: `entry`'s, else `sdpa`).
    """
    if entry is not None:
        check_shape(location, entry)
        attention = attention or entry.execution.attention
    encoder = AutoModel.from_pretrained(location, attn_implementation=attention or "sdpa")
    tokenizer = AutoTokenizer.from_pretrained(location)
    return Pretrained(encoder, tokenizer, location)


def check_shape(location: str, entry: ModelEntry) -> None:
    try:
        config = AutoConfig.from_pretrained(location)
    except OSError as err:
        raise UserError(f"no Hugging Face model at {location}: {err}".splitlines()[0]) from None
    shape = (config.num_hidden_layers, config.hidden_size)
    if shape != (entry.layers, entry.hidden):
        raise UserError(
            f"checkpoint at {location} has {shape[0]} layers x {shape[1]} hidden, "
            f"but model {entry.name} has {entry.layers} x {entry.hidden}"
        )


def build_pretrained(
    entry: ModelEntry, *, seed: int, corpus: Corpus, cache_dir: str, corpus_key: str | None = None
) -> Pretrained:
    """The phase-1 model of `entry`; `corpus` is read only for `local_config` entries, and
    only when no tokenizer for `corpus_key` is cached."""
    if entry.source == "local_config":
        return _from_config(entry, seed, corpus, cache_dir, corpus_key)
    if entry.source == "local_dir" and not Path(entry.location).is_dir():
        raise UserError(f"model {entry.name}: {entry.location} is not a directory")
    return load_dir(entry.location, attention=entry.execution.attention)


def save_pretrained(model: Pretrained, directory: str) -> None:
    model.encoder.save_pretrained(directory)
    model.tokenizer.save_pretrained(directory)  # type: ignore[attr-defined]
