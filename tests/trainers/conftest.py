"""Shared fixtures: one thread, a small synthetic corpus and in-memory examples."""

from __future__ import annotations

import pytest
import torch
from synth_examples import synthetic_texts

from trainers.ladder import LADDER
from trainers.models import Pretrained, build_pretrained

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return synthetic_texts()


@pytest.fixture
def tiny(corpus: list[str], tmp_path_factory: pytest.TempPathFactory) -> Pretrained:
    cache = str(tmp_path_factory.mktemp("cache"))
    return build_pretrained(LADDER["tiny-s"], seed=0, corpus=lambda: corpus, cache_dir=cache)
