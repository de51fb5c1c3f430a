from __future__ import annotations

from pathlib import Path

import pytest
import torch

from storage.errors import UserError
from trainers.ladder import LADDER, get_model
from trainers.models import build_pretrained, load_dir, save_pretrained
from trainers.tokenizer import local_tokenizer


@pytest.mark.parametrize("name", ["tiny-s", "tiny-m", "tiny-l"])
def test_tiny_parameter_count_is_the_entry_count(name: str, corpus, tmp_path: Path) -> None:
    entry = LADDER[name]
    model = build_pretrained(entry, seed=0, corpus=lambda: corpus, cache_dir=str(tmp_path))
    assert sum(p.numel() for p in model.encoder.parameters()) == entry.params


def test_tokenizer_is_deterministic_and_cached(corpus, tmp_path: Path) -> None:
    first = local_tokenizer(corpus, 4000, tmp_path / "a")
    second = local_tokenizer(corpus, 4000, tmp_path / "b")
    assert first.to_str() == second.to_str()
    assert len(list((tmp_path / "a" / "tokenizers").glob("*.json"))) == 1


def test_tokenizer_uses_xlmr_special_ids(tiny) -> None:
    tok = tiny.tokenizer
    assert (tok.cls_token_id, tok.pad_token_id, tok.sep_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    ids = tok("ka lo", "mi")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and ids.count(2) == 3


def test_same_seed_same_weights(corpus, tmp_path: Path) -> None:
    entry = LADDER["tiny-s"]
    a = build_pretrained(entry, seed=3, corpus=lambda: corpus, cache_dir=str(tmp_path))
    b = build_pretrained(entry, seed=3, corpus=lambda: corpus, cache_dir=str(tmp_path))
    for x, y in zip(a.encoder.parameters(), b.encoder.parameters(), strict=True):
        assert torch.equal(x, y)


def test_saved_encoder_loads_through_the_hub_code_path(tiny, tmp_path: Path) -> None:
    save_pretrained(tiny, str(tmp_path))
    loaded = load_dir(str(tmp_path), LADDER["tiny-s"])
    for x, y in zip(tiny.encoder.parameters(), loaded.encoder.parameters(), strict=True):
        assert torch.equal(x, y)
    assert loaded.tokenizer("ka lo")["input_ids"] == tiny.tokenizer("ka lo")["input_ids"]


def test_checkpoint_of_another_size_is_a_user_error(tiny, tmp_path: Path) -> None:
    save_pretrained(tiny, str(tmp_path))
    with pytest.raises(UserError, match="tiny-m has 3 x 64"):
        load_dir(str(tmp_path), LADDER["tiny-m"])


def test_unknown_model_name_suggests() -> None:
    with pytest.raises(UserError, match="did you mean 'tiny-s'"):
        get_model("tiny-ss")
