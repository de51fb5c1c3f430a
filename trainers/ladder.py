"""The model ladder: one entry per size of one architecture family.

Entries are facts (where the weights come from, how big the model is, what it needs to
train); building a model from an entry lives beside the training loop. Real entries are
XLM-R on the Hub; the `tiny-*` entries are the same architecture at CPU scale, built from
an `XLMRobertaConfig` with a tokenizer trained locally on the fixture text, so that the
local ladder is a real size axis for tests and the quickstart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from evaluation.tasks import suggest
from storage.errors import UserError

Source = Literal["hub", "local_config", "local_dir"]
Precision = Literal["bf16", "fp32"]
Attention = Literal["sdpa", "eager"]


@dataclass(frozen=True)
class Resources:
    """What one cell of this model needs: workers x (GPUs or CPUs) per worker, ZeRO stage."""

    workers: int = 1
    gpus_per_worker: float = 0
    cpus_per_worker: float = 1
    zero_stage: int | None = None
    offload: bool = False

    @property
    def distributed(self) -> bool:
        """Several workers or a ZeRO stage: the cell trains through Ray Train + DeepSpeed."""
        return self.workers > 1 or self.zero_stage is not None

    def worker_bundle(self) -> dict[str, float]:
        """One worker's Ray resource bundle: its CPUs, and its GPUs when it has any.

        The one place a bundle is built: Ray Train's `resources_per_worker`, a single-process
        cell's trial bundle, the scheduler's gangs and the placement checks all use it.
        """
        bundle = {"CPU": float(self.cpus_per_worker)}
        if self.gpus_per_worker:
            bundle["GPU"] = float(self.gpus_per_worker)
        return bundle

    def overridden(self, override: Mapping[str, Any]) -> Resources:
        """These resources with a spec's per-model values (None: keep the ladder's)."""
        return _overridden(self, override)


@dataclass(frozen=True)
class Execution:
    """How a model's phases run on their hardware (spec: `execution.<model>`).

    - `precision`: `bf16` runs forward passes (training, dev and test prediction) under
      `torch.autocast(bfloat16)` on the model's device (CUDA or CPU) over fp32 weights, in
      one process and under ZeRO alike; `fp32` runs everything in float32. It changes a
      cell's numbers, so a value other than the ladder's enters the `trial_key`.
    - `compile`: `torch.compile` the encoder in place (its parameter names, and so every
      checkpoint, stay the same; dropout masks as eager torch draws them). One process and
      ZeRO-2 only.
    - `attention`: transformers' `attn_implementation`; `sdpa` is
      `torch.nn.functional.scaled_dot_product_attention` (flash / memory-efficient kernels on
      a GPU), `eager` the explicit softmax(QK^T)V.
    - `fused_optimizer`: AdamW's fused CUDA kernel when the optimizer steps on a GPU, its
      `foreach` (multi-tensor) form elsewhere.

    `compile`, `attention` and `fused_optimizer` compute the same functions with other kernels:
    results agree to floating-point reduction noise, so they never enter a key.
    """

    precision: Precision = "fp32"
    compile: bool = False
    attention: Attention = "sdpa"
    fused_optimizer: bool = True

    def overridden(self, override: Mapping[str, Any]) -> Execution:
        """These settings with a spec's per-model values (None: keep the ladder's)."""
        return _overridden(self, override)


def _overridden(value: Any, override: Mapping[str, Any]) -> Any:
    names = {f.name for f in fields(value)}
    return replace(value, **{k: v for k, v in override.items() if k in names and v is not None})


# The ladder's defaults: CPU-scale models in float32, the Hub models in bf16 (as each ran
# before precision was a setting: bf16 autocast on a GPU that supports it).
FP32 = Execution()
BF16 = Execution(precision="bf16")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    source: Source
    location: str  # Hub id, or a local directory in Hugging Face format; "" for local_config
    architecture: str  # transformers model_type
    params: int  # parameters of the pretrained encoder
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab_size: int
    retrieval_layer: int  # hidden-state index mean-pooled for retrieval (0 = embeddings)
    resources: Resources
    execution: Execution = FP32


def encoder_params(layers: int, hidden: int, ffn: int, vocab: int, max_positions: int) -> int:
    """Parameter count of an XLM-R encoder with its pooler (as `AutoModel` builds it)."""
    embeddings = (vocab + max_positions + 1) * hidden + 2 * hidden
    attention = 4 * (hidden * hidden + hidden) + 2 * hidden
    feed_forward = hidden * ffn + ffn + ffn * hidden + hidden + 2 * hidden
    pooler = hidden * hidden + hidden
    return embeddings + layers * (attention + feed_forward) + pooler


TINY_VOCAB = 4000
TINY_MAX_POSITIONS = 514
CPU = Resources(workers=1, gpus_per_worker=0, cpus_per_worker=1)


def _tiny(name: str, layers: int, hidden: int, heads: int) -> ModelEntry:
    ffn = 4 * hidden
    return ModelEntry(
        name=name,
        source="local_config",
        location="",
        architecture="xlm-roberta",
        params=encoder_params(layers, hidden, ffn, TINY_VOCAB, TINY_MAX_POSITIONS),
        layers=layers,
        hidden=hidden,
        heads=heads,
        ffn=ffn,
        vocab_size=TINY_VOCAB,
        retrieval_layer=layers // 2 + 1,
        resources=CPU,
    )


def _hub(
    name: str, hub_id: str, arch: str, params: int, shape: tuple[int, int, int, int], res: Resources
) -> ModelEntry:
    layers, hidden, heads, ffn = shape
    return ModelEntry(
        name=name,
        source="hub",
        location=hub_id,
        architecture=arch,
        params=params,
        layers=layers,
        hidden=hidden,
        heads=heads,
        ffn=ffn,
        vocab_size=250_002,
        # XTREME's retrieval scripts use layer 13 of 24 for XLM-R large; scale by depth.
        retrieval_layer=layers // 2 + 1,
        resources=res,
        execution=BF16,
    )


LADDER: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        # Sized so that the whole quickstart (18 cells) runs in minutes on 2 CPU cores
        # while spanning an 8x range of parameters.
        _tiny("tiny-s", 2, 32, 2),
        _tiny("tiny-m", 3, 64, 2),
        _tiny("tiny-l", 4, 128, 4),
        # base/large: exact counts of the encoder (278,043,648 for base, as its card says);
        # XL/XXL: the counts their paper and cards give.
        _hub(
            "xlmr-base",
            "FacebookAI/xlm-roberta-base",
            "xlm-roberta",
            encoder_params(12, 768, 3072, 250_002, 514),
            (12, 768, 12, 3072),
            Resources(gpus_per_worker=1, cpus_per_worker=4),
        ),
        _hub(
            "xlmr-large",
            "FacebookAI/xlm-roberta-large",
            "xlm-roberta",
            encoder_params(24, 1024, 4096, 250_002, 514),
            (24, 1024, 16, 4096),
            Resources(gpus_per_worker=1, cpus_per_worker=4),
        ),
        _hub(
            "xlmr-xl",
            "facebook/xlm-roberta-xl",
            "xlm-roberta-xl",
            3_500_000_000,
            (36, 2560, 32, 10240),
            Resources(workers=4, gpus_per_worker=1, cpus_per_worker=4, zero_stage=2),
        ),
        _hub(
            "xlmr-xxl",
            "facebook/xlm-roberta-xxl",
            "xlm-roberta-xl",
            10_700_000_000,
            (48, 4096, 32, 16384),
            Resources(workers=8, gpus_per_worker=1, cpus_per_worker=4, zero_stage=3),
        ),
    )
}


def get_model(name: str, extra: dict[str, ModelEntry] | None = None) -> ModelEntry:
    """The ladder entry called `name`, looking in a spec's own entries first."""
    entries = {**LADDER, **(extra or {})}
    try:
        return entries[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}{suggest(name, entries)}") from None
