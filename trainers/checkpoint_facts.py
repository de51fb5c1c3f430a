"""What a pretrained checkpoint is, read from its files without loading it.

`read_facts(source, location)` reads `config.json` (architecture, layers, hidden size,
heads, feed-forward size, vocabulary, positions) and counts the encoder's parameters from
the weights: safetensors headers (an 8-byte length and a JSON header per file; no tensor
is read), or, where only `pytorch_model.bin` exists, its tensors memory-mapped. A Hub id is
read from the local Hub cache, else its `config.json` and safetensors headers are fetched
(no weights). Plain JSON: no transformers import, so `xstilts validate` stays fast.

`problems(name, facts, stated)` compares the values a spec states with the checkpoint's,
naming both; `refusal(facts)` says why xstilts cannot put its heads on an architecture.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from storage.errors import UserError

# Encoder-only architectures `AutoModel` loads whose forward takes input_ids and an
# attention mask and returns per-token hidden states (and every layer's, for retrieval):
# every xstilts head fits them. Keys: transformers' `model_type`.
ENCODERS = (
    "bert",
    "camembert",
    "deberta",
    "deberta-v2",
    "distilbert",
    "electra",
    "roberta",
    "xlm-roberta",
    "xlm-roberta-xl",
)
# Architectures transformers has no `sdpa` attention for (it raises): they need
# `execution.<model>.attention: eager`.
NO_SDPA = ("deberta", "deberta-v2")
# Pretraining heads saved beside the encoder, which `AutoModel` does not load.
HEAD_PREFIXES = ("lm_head.", "cls.", "generator_lm_head.", "generator_predictions.", "qa_outputs.")
# Config keys per fact; DistilBERT names them its own way.
KEYS = {
    "layers": ("num_hidden_layers", "n_layers"),
    "hidden": ("hidden_size", "dim"),
    "heads": ("num_attention_heads", "n_heads"),
    "ffn": ("intermediate_size", "hidden_dim"),
}
# A stated parameter count may round the true one (e.g. from a model card) by this much.
PARAMS_TOLERANCE = 0.01


@dataclass(frozen=True)
class CheckpointFacts:
    location: str
    architecture: str  # transformers' model_type
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab_size: int
    max_tokens: int  # the longest input its position embeddings allow
    params: int | None  # the encoder's parameters; None when no weights file was found
    custom_code: bool  # config.json asks for code outside transformers (auto_map)


def read_facts(source: str, location: str) -> CheckpointFacts:
    """The facts of a `local_dir` directory or a `hub` id; `UserError` when unreadable."""
    if source == "local_dir":
        where = Path(location).expanduser()
        if not (where / "config.json").is_file():
            why = "is not a directory" if not where.is_dir() else "holds no config.json"
            raise UserError(f"checkpoint {location} {why}")
        return _local(str(where.resolve()), _stamp(where))
    return _hub(location)


def _stamp(where: Path) -> tuple[int, ...]:
    """Modification times of the files read, so a changed checkpoint is read again."""
    return tuple(p.stat().st_mtime_ns for p in sorted(where.iterdir()) if p.is_file())


@lru_cache(maxsize=64)
def _local(where: str, stamp: tuple[int, ...]) -> CheckpointFacts:
    del stamp
    root = Path(where)
    config = _json(root / "config.json")
    files = sorted(root.glob("*.safetensors"))
    if files:
        params: int | None = sum(_safetensors_params(f) for f in files)
    elif (root / "pytorch_model.bin").is_file():
        params = _torch_params(root / "pytorch_model.bin")
    else:
        params = None
    return _facts(where, config, params)


def _hub(repo: str) -> CheckpointFacts:
    try:
        from huggingface_hub import get_safetensors_metadata, hf_hub_download
        from huggingface_hub.errors import HFValidationError

        config = _json(Path(hf_hub_download(repo, "config.json")))
    except (OSError, ValueError, HFValidationError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"cannot read config.json of Hub model {repo!r}: {first}") from None
    try:
        meta = get_safetensors_metadata(repo)
        params: int | None = sum(meta.parameter_count.values())
    except (OSError, ValueError):
        params = None
    return _facts(repo, config, params)


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: unreadable: {err}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: not a JSON object")
    return value


def _facts(location: str, config: dict[str, Any], params: int | None) -> CheckpointFacts:
    arch = str(config.get("model_type", ""))
    values = {}
    for fact, keys in KEYS.items():
        found = next((config[k] for k in keys if isinstance(config.get(k), int)), None)
        if found is None:
            raise UserError(f"{location}/config.json: no {keys[0]} (model_type {arch!r})")
        values[fact] = found
    positions = int(config.get("max_position_embeddings", 512))
    if arch in ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert"):
        positions -= int(config.get("pad_token_id", 1)) + 1  # positions start after padding
    return CheckpointFacts(
        location=location,
        architecture=arch,
        vocab_size=int(config.get("vocab_size", 0)),
        max_tokens=positions,
        params=params,
        custom_code="auto_map" in config,
        **values,
    )


def _safetensors_params(path: Path) -> int:
    """Parameters of one safetensors file, from its header alone."""
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    return sum(
        math.prod(t["shape"])
        for name, t in header.items()
        if name != "__metadata__" and not name.startswith(HEAD_PREFIXES)
    )


def _torch_params(path: Path) -> int:
    import torch

    state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    return sum(t.numel() for n, t in state.items() if not n.startswith(HEAD_PREFIXES))


def refusal(facts: CheckpointFacts, attention: str = "eager") -> str | None:
    """Why xstilts cannot train on this checkpoint with this attention kernel, or None when
    every head fits it."""
    if facts.custom_code:
        return "its config.json asks for custom code (auto_map), which xstilts does not run"
    if facts.architecture not in ENCODERS:
        return (
            f"model_type {facts.architecture!r} is not an encoder-only architecture xstilts "
            f"puts its heads on (supported: {', '.join(ENCODERS)})"
        )
    if attention == "sdpa" and facts.architecture in NO_SDPA:
        return (
            f"transformers has no sdpa attention for {facts.architecture}: set its "
            "execution attention to eager"
        )
    return None


def _differ(stated: int, counted: int) -> bool:
    return abs(stated - counted) > PARAMS_TOLERANCE * counted


def problems(
    name: str, facts: CheckpointFacts, stated: dict[str, Any], attention: str = "sdpa"
) -> list[str]:
    """One line per value the spec states that the checkpoint contradicts (both named), and
    the reason it cannot be used at all with the `attention` kernel it would run with."""
    where = f"model_entries.{name}"
    out = []
    for field in ("architecture", "layers", "hidden"):
        want, have = stated.get(field), getattr(facts, field)
        if want is not None and want != have:
            out.append(f"{where}.{field}: stated {want!r}, but {facts.location} has {have!r}")
    want = stated.get("params")
    have_params = facts.params
    if want is not None and have_params is not None and _differ(want, have_params):
        out.append(
            f"{where}.params: stated {want:,}, but the weights in {facts.location} hold "
            f"{have_params:,} parameters"
        )
    if want is None and facts.params is None:
        out.append(f"{where}.params: no weights file to count parameters in; state params")
    layer = stated.get("retrieval_layer")
    if layer is not None and layer > facts.layers:
        out.append(
            f"{where}.retrieval_layer: {layer} is past the checkpoint's {facts.layers} layers"
        )
    why = refusal(facts, attention)
    if why:
        out.append(f"{where}: {facts.location} cannot be used: {why}")
    return out
