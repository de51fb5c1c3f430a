"""Tokenised features, cached on disk per (tokenizer, task, split, max length, examples).

The key holds the tokenizer's digest, the task, the split name, the maximum length, whether
the features are for training, and a digest of the examples themselves (so a different
example cap or data source never reads stale features). Files are written atomically.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storage.files import write_file
from trainers.heads import Feature, HeadKind


def examples_digest(examples: Sequence[Any]) -> str:
    h = hashlib.sha256()
    for ex in examples:
        h.update(repr(ex).encode())
    return h.hexdigest()[:16]


# Bumped when a head's features change form (2: tagging windows), so that no cache written
# before is read.
FEATURES_VERSION = 2


def feature_path(cache_dir: str, key: tuple[str, str, str, int, bool], examples: Sequence) -> Path:
    tok_digest, task, split, max_len, train = key
    name = f"{split}-{max_len}-{'train' if train else 'eval'}-{examples_digest(examples)}.pkl"
    return Path(cache_dir) / f"features-v{FEATURES_VERSION}" / tok_digest / task / name


def _write(path: Path, features: list[Feature]) -> None:
    write_file(path, pickle.dumps(features, protocol=pickle.HIGHEST_PROTOCOL))


def features_for(
    kind: HeadKind,
    examples: Sequence[Any],
    tokenizer: Any,
    key: tuple[str, str, str, int, bool],
    cache_dir: str | None,
) -> list[Feature]:
    """`kind.featurize(...)`, read from the cache when present; `key` as `feature_path`."""
    if not examples:
        return []
    path = feature_path(cache_dir, key, examples) if cache_dir else None
    if path is not None and path.exists():
        with path.open("rb") as f:
            cached: list[Feature] = pickle.load(f)
        return cached
    features = kind.featurize(examples, tokenizer, key[3], key[4])
    if path is not None:
        _write(path, features)
    return features
