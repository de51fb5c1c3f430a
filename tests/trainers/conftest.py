"""Shared fixtures: one thread, a small synthetic corpus and in-memory examples."""

from __future__ import annotations

import random

import pytest
import torch

from trainers.ladder import LADDER
from trainers.models import Pretrained, build_pretrained

torch.set_num_threads(1)

SYLLABLES = "ka lo mi re to shi na vu ze pa ri qo el an un os".split()


def synthetic_texts(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))) for _ in range(300)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))) for _ in range(n)]


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return synthetic_texts()


@pytest.fixture
def tiny(corpus: list[str], tmp_path_factory: pytest.TempPathFactory) -> Pretrained:
    cache = str(tmp_path_factory.mktemp("cache"))
    return build_pretrained(LADDER["tiny-s"], seed=0, corpus=lambda: corpus, cache_dir=cache)
