"""A spec's own checkpoints are read as the user has them, at `validate` / `plan`: shape,
architecture and parameter count from `config.json` and the weights' headers; stated values
that disagree are errors naming both, in a few seconds and without Ray."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from transformers import XLMRobertaConfig, XLMRobertaModel

from orchestrator.grid import expand, model_entries
from orchestrator.spec import validate
from storage.errors import UserError

XSTILTS = str(Path(sys.executable).with_name("xstilts"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide XLM-R saved by transformers, as any Hugging Face directory is."""
    directory = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64,
                              max_position_embeddings=130)  # fmt: skip
    model = XLMRobertaModel(config)
    model.save_pretrained(directory)
    (directory / "params.txt").write_text(str(sum(p.numel() for p in model.parameters())))
    return directory


def raw(location: Path, **entry: object) -> dict:
    return {
        "name": "own",
        "storage": "/tmp/xstilts-own",
        "models": ["mine"],
        "model_entries": {"mine": {"source": "local_dir", "location": str(location), **entry}},
        "intermediate_tasks": ["none"],
        "target_tasks": ["xnli"],
        "seeds": [0],
        "phase3": {"defaults": {"max_seq_length": 64}},
    }


def test_source_and_location_are_enough(checkpoint: Path) -> None:
    entry = model_entries(validate(raw(checkpoint)))["mine"]
    params = int((checkpoint / "params.txt").read_text())
    assert (entry.architecture, entry.layers, entry.hidden, entry.heads, entry.ffn) == (
        "xlm-roberta", 2, 32, 2, 64)  # fmt: skip
    assert entry.vocab_size == 500 and entry.params == params and entry.retrieval_layer == 2


def test_disagreeing_shape_exits_2_naming_both_fast_and_without_ray(
    checkpoint: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw(checkpoint, layers=12, hidden=768, params=278_043_648)))
    started = time.monotonic()
    out = subprocess.run([XSTILTS, "validate", str(spec)], capture_output=True, text=True)
    elapsed = time.monotonic() - started
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert any("layers: stated 12" in ln and "has 2" in ln for ln in lines), lines
    assert any("hidden: stated 768" in ln and "has 32" in ln for ln in lines), lines
    params = int((checkpoint / "params.txt").read_text())
    assert any("params: stated 278,043,648" in ln and f"{params:,}" in ln for ln in lines)
    assert elapsed < 3.0, f"validate took {elapsed:.1f} s"
    code = (
        "import sys; from orchestrator.cli import cli\n"
        f"try: cli.main(['validate', {str(spec)!r}], standalone_mode=False)\n"
        "except Exception as e: print('ERR', type(e).__name__)\n"
        "print('HEAVY', sorted({'ray', 'torch', 'transformers'} & set(sys.modules)))"
    )
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "ERR UserError" in probe.stdout and "HEAVY []" in probe.stdout, probe


def test_a_rounded_parameter_count_passes(checkpoint: Path) -> None:
    params = int((checkpoint / "params.txt").read_text())
    spec = validate(raw(checkpoint, params=round(params * 1.005), layers=2, hidden=32))
    assert model_entries(spec)["mine"].params == params


def test_other_architectures_are_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "t5", "num_layers": 2, "d_model": 32, "num_hidden_layers": 2,
        "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64,
    }))  # fmt: skip
    with pytest.raises(UserError, match=r"model_type 't5' is not an encoder-only architecture"):
        expand(validate(raw(tmp_path, params=1000)))


def test_deberta_needs_eager_attention(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "deberta-v2", "num_hidden_layers": 2, "hidden_size": 32,
        "num_attention_heads": 2, "intermediate_size": 64, "vocab_size": 100,
    }))  # fmt: skip
    spec = raw(tmp_path, params=1000)
    with pytest.raises(UserError, match="no sdpa attention for deberta-v2"):
        model_entries(validate(spec))
    spec["execution"] = {"mine": {"attention": "eager"}}
    assert model_entries(validate(spec))["mine"].architecture == "deberta-v2"


def test_unreadable_or_unfitting_checkpoints_name_the_problem(
    checkpoint: Path, tmp_path: Path
) -> None:
    with pytest.raises(UserError, match=r"model_entries.mine.location: checkpoint .* is not a dir"):
        model_entries(validate(raw(tmp_path / "absent")))
    long = raw(checkpoint)
    long["phase3"] = {"defaults": {"max_seq_length": 256}}
    with pytest.raises(UserError, match=r"phase3: max_seq_length 256 of xnli is past the 128"):
        model_entries(validate(long))
    with pytest.raises(UserError, match=r"retrieval_layer: 5 is past the checkpoint's 2 layers"):
        model_entries(validate(raw(checkpoint, retrieval_layer=5)))
