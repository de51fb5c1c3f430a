"""The GPU-efficiency settings of a model (`trainers.ladder.Execution`), each on its CPU path.

Attention kernels, compilation and the optimizer kernel must compute what the plain path
computes (eager attention, the uncompiled module, torch's per-parameter AdamW loop are the
references); bf16 must really run the forward passes in bfloat16 (on the CPU here); ZeRO's
buckets follow the rules stated in `trainers.zero.buckets`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from synth_examples import classification_examples, synthetic_texts
from transformers import AutoModel, XLMRobertaXLConfig

from evaluation.tasks import get_task
from trainers.checkpoint import Resume
from trainers.ladder import LADDER, Execution, ModelEntry
from trainers.loop import TaskData, TrainSpec, adamw_kernel, make_optimizer, train
from trainers.models import Pretrained, build_pretrained, load_dir
from trainers.phase import PHASE1_SEED, phase_model, train_spec
from trainers.taskmodel import TaskModel, Tokenization, task_features
from trainers.tokenizer import tokenizer_digest
from trainers.zero import ZeroConfig, buckets, ds_config

LOGIT_TOLERANCE = 1e-5  # fp32: the kernels differ only in summation order


def with_execution(name: str, **settings) -> ModelEntry:
    entry = LADDER[name]
    return dataclasses.replace(entry, execution=Execution(**settings))


def pretrained(entry: ModelEntry, corpus, cache: Path) -> Pretrained:
    return build_pretrained(entry, seed=PHASE1_SEED, corpus=lambda: corpus, cache_dir=str(cache))


def padded_batch(vocab: int) -> dict[str, torch.Tensor]:
    """Three sequences of different lengths, right-padded: the mask matters."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (3, 20), generator=gen)
    mask = torch.ones_like(ids)
    for row, length in enumerate((20, 13, 6)):
        ids[row, length:], mask[row, length:] = 1, 0
    return {"input_ids": ids, "attention_mask": mask}


def hidden_states(encoder: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    encoder.eval()
    with torch.no_grad():
        out = encoder(**batch).last_hidden_state
    return out * batch["attention_mask"].unsqueeze(-1)  # padded positions are not compared


# --- attention kernels ----------------------------------------------------------------------


def test_sdpa_gives_the_eager_hidden_states_on_a_tiny_model(corpus, tmp_path: Path) -> None:
    eager = pretrained(with_execution("tiny-m", attention="eager"), corpus, tmp_path)
    sdpa = pretrained(with_execution("tiny-m", attention="sdpa"), corpus, tmp_path)
    assert eager.encoder.config._attn_implementation == "eager"
    assert sdpa.encoder.config._attn_implementation == "sdpa"
    batch = padded_batch(LADDER["tiny-m"].vocab_size)
    reference = hidden_states(eager.encoder, batch)
    assert reference.abs().max() > 0.1  # a real signal, not zeros
    torch.testing.assert_close(
        hidden_states(sdpa.encoder, batch), reference, atol=LOGIT_TOLERANCE, rtol=0
    )


def test_sdpa_gives_the_eager_hidden_states_on_the_xl_architecture(tmp_path: Path) -> None:
    """XLM-R XL and XXL (`xlm-roberta-xl`, pre-LayerNorm) load through `load_dir`."""
    config = XLMRobertaXLConfig(vocab_size=300, hidden_size=64, num_hidden_layers=2,
                                num_attention_heads=4, intermediate_size=128,
                                max_position_embeddings=64, pad_token_id=1)  # fmt: skip
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(tmp_path)
    batch = padded_batch(300)
    eager = AutoModel.from_pretrained(tmp_path, attn_implementation="eager")
    sdpa = AutoModel.from_pretrained(tmp_path, attn_implementation="sdpa")  # as load_dir does
    assert sdpa.config._attn_implementation == "sdpa"
    torch.testing.assert_close(
        hidden_states(sdpa, batch), hidden_states(eager, batch), atol=LOGIT_TOLERANCE, rtol=0
    )


def test_load_dir_builds_the_attention_kernel_it_is_asked_for(tiny, tmp_path: Path) -> None:
    tiny.encoder.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    assert load_dir(str(tmp_path)).encoder.config._attn_implementation == "sdpa"
    eager = load_dir(str(tmp_path), attention="eager")
    assert eager.encoder.config._attn_implementation == "eager"
    entry = with_execution("tiny-s", attention="eager")
    assert load_dir(str(tmp_path), entry).encoder.config._attn_implementation == "eager"


# --- training paths: a few steps of the real loop -------------------------------------------


STEPS = 3


def run_spec(**settings) -> TrainSpec:
    return TrainSpec(lr=1e-3, batch_size=8, grad_accum=1, warmup_ratio=0.0, eval_every=1000,
                     patience=0, weight_decay=0.01, max_grad_norm=1.0, seed=0,
                     max_steps=STEPS, **settings)  # fmt: skip


def trained(
    entry: ModelEntry, corpus, cache: Path, run: TrainSpec
) -> tuple[TaskModel, list[float]]:
    """`entry`'s tiny model with an xnli head after `STEPS` steps (dropout on), and its losses."""
    pre = pretrained(entry, corpus, cache)
    spec = get_task("xnli")
    examples = classification_examples(synthetic_texts(48, seed=1))
    tok = Tokenization(pre.tokenizer, tokenizer_digest(pre.tokenizer), 32, None)
    data = TaskData(spec, task_features(spec, examples, tok, "train", True), [], tok)
    # xnli's labels are in its spec: no data access needed for the head.
    model = phase_model(pre, ("xnli",), None, 7, entry.execution)  # type: ignore[arg-type]
    losses: list[float] = []
    train(model, {"xnli": data}, run, resume=Resume.NEVER,
          on_step=lambda step, loss: losses.append(loss))  # fmt: skip
    return model, losses


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_foreach_adamw_on_the_cpu_changes_no_number(corpus, tmp_path: Path) -> None:
    """`fused_optimizer` on a CPU is AdamW's multi-tensor form: bit for bit torch's loop."""
    entry = LADDER["tiny-s"]
    plain, plain_losses = trained(entry, corpus, tmp_path, run_spec(fused_optimizer=False))
    multi, multi_losses = trained(entry, corpus, tmp_path, run_spec(fused_optimizer=True))
    assert multi_losses == plain_losses
    for name, value in weights(plain).items():
        assert torch.equal(weights(multi)[name], value), name


def test_the_optimizer_kernel_follows_where_it_steps(tiny) -> None:
    assert adamw_kernel(True, on_cuda=True) == (True, None)
    assert adamw_kernel(True, on_cuda=False) == (None, True)
    assert adamw_kernel(False, on_cuda=True) == (None, None)
    model = TaskModel(tiny.encoder, {})
    optimizer, _ = make_optimizer(model, run_spec(), STEPS)
    assert optimizer.defaults["foreach"] is True and not optimizer.defaults["fused"]
    # The CUDA choice, run on CPU tensors: torch's fused AdamW exists for both devices.
    fused, _ = make_optimizer(model, run_spec(), STEPS, on_cuda=True)
    assert fused.defaults["fused"] is True
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.01)
    fused.step()  # the fused kernel runs


def test_fused_adamw_agrees_with_the_loop(tiny) -> None:
    """One fused step from the same state lands where torch's loop lands (to rounding)."""
    results = []
    for on_cuda in (False, True):
        torch.manual_seed(0)
        layer = torch.nn.Linear(16, 16)
        optimizer, _ = make_optimizer(layer, run_spec(fused_optimizer=on_cuda), STEPS, on_cuda)
        for _ in range(3):
            layer(torch.randn(4, 16)).square().sum().backward()
            optimizer.step()
            optimizer.zero_grad()
        results.append(layer.weight.detach().clone())
    torch.testing.assert_close(results[1], results[0], atol=1e-6, rtol=1e-6)


def test_bf16_runs_the_forward_passes_in_bfloat16_on_the_cpu(corpus, tmp_path: Path) -> None:
    """The autocast path on the CPU: the encoder's matrix products give bfloat16, the loss
    and the fp32 weights stay float32, and training still moves the loss the fp32 way."""
    dtypes: dict[str, set[torch.dtype]] = {"bf16": set(), "fp32": set()}
    losses = {}
    for precision in dtypes:
        entry = with_execution("tiny-s", precision=precision)
        hook = torch.nn.modules.module.register_module_forward_hook(
            lambda m, args, out, p=precision: dtypes[p].add(out.dtype)
            if isinstance(m, torch.nn.Linear) else None
        )  # fmt: skip
        try:
            model, losses[precision] = trained(
                entry, corpus, tmp_path, run_spec(precision=precision)
            )
        finally:
            hook.remove()
        assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert dtypes == {"bf16": {torch.bfloat16}, "fp32": {torch.float32}}
    assert losses["bf16"] != losses["fp32"]  # other arithmetic
    torch.testing.assert_close(losses["bf16"], losses["fp32"], atol=0.05, rtol=0.05)


def test_train_spec_carries_the_models_settings() -> None:
    from trainers.hparams import PhaseHparams

    hp = PhaseHparams(lr=1e-3, batch_size=8, grad_accum=1, warmup_ratio=0.0, max_seq_length=32,
                      eval_every=10, patience=0, weight_decay=0.0, max_grad_norm=1.0,
                      max_steps=3)  # fmt: skip
    run = train_spec(hp, 5, Execution(precision="bf16", fused_optimizer=False))
    assert (run.precision, run.fused_optimizer, run.seed, run.lr) == ("bf16", False, 5, 1e-3)
    assert LADDER["xlmr-large"].execution.precision == "bf16"
    assert LADDER["tiny-s"].execution.precision == "fp32"


@pytest.mark.slow
def test_compiled_encoder_trains_as_the_plain_one(corpus, tmp_path: Path) -> None:
    """torch.compile (inductor, gcc on a CPU): the same parameter names, and with dropout on
    the same losses and weights as eager to reduction noise (dropout masks drawn as eager)."""
    plain, plain_losses = trained(LADDER["tiny-s"], corpus, tmp_path, run_spec())
    entry = with_execution("tiny-s", compile=True)
    compiled, compiled_losses = trained(entry, corpus, tmp_path, run_spec())
    assert compiled.encoder._compiled_call_impl is not None  # it ran compiled
    assert list(weights(compiled)) == list(weights(plain))
    torch.testing.assert_close(compiled_losses, plain_losses, atol=1e-5, rtol=1e-5)
    for name, value in weights(plain).items():
        torch.testing.assert_close(weights(compiled)[name], value, atol=1e-5, rtol=1e-4)


# --- ZeRO buckets ---------------------------------------------------------------------------


def test_zero3_buckets_follow_the_hugging_face_auto_rules() -> None:
    """XLM-R large (hidden 1024): the values `transformers.integrations.deepspeed` fills in
    for `auto` (reduce hidden², prefetch 0.9·hidden², persistence 10·hidden)."""
    stage = ds_config(run_spec(), ZeroConfig(stage=3, hidden=1024), 1)["zero_optimization"]
    assert stage == {
        "stage": 3,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": 1_048_576,
        "stage3_prefetch_bucket_size": 943_718,
        "stage3_param_persistence_threshold": 10_240,
    }


def test_zero2_buckets_hold_one_transformer_layer() -> None:
    """XLM-R XL (hidden 2560): one layer is 4·h² attention + 8·h² feed-forward weights."""
    entry = LADDER["xlmr-xl"]
    layer = 4 * entry.hidden**2 + 2 * entry.hidden * entry.ffn
    assert buckets(2, entry.hidden) == {
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": layer,
        "allgather_bucket_size": layer,
    }
    assert layer == 78_643_200
    plain = ds_config(run_spec(), ZeroConfig(stage=2), 1)["zero_optimization"]
    assert plain == {"stage": 2}  # no hidden size given: DeepSpeed's own defaults
