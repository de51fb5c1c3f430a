"""Throughput and MFU of the one training loop, one process and DeepSpeed ZeRO-2, on GPUs.

Launched by `bench/gpu_check.sh` (torchrun: one process for the one-process loop, one per
GPU for ZeRO-2). For each size (default: XLM-R large shapes, random init from config:
nothing is downloaded) it trains the real loop (`trainers.loop.train`, alone or with
`trainers.zero.ZeroEngine` and its buckets sized for the model, a classification head,
sequences of exactly `--seq` tokens) for `--warmup` + `--steps` optimizer steps with the
efficiency settings of `trainers.ladder.Execution` (bf16 autocast, SDPA attention, fused
AdamW, torch.compile: each can be turned off) and prints samples/s, tokens/s and model FLOPs
utilisation: model FLOPs per token (6 x non-embedding parameters + 12 x layers x hidden x seq
for attention, forward + backward) x tokens/s, over the GPUs' peak dense bf16 FLOP/s.
Checkpoints are not written (the engine's `save` is a no-op here).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from types import SimpleNamespace

import torch
import torch.distributed as dist

from evaluation.tasks import get_task
from trainers.checkpoint import Resume
from trainers.formats import head_for
from trainers.ladder import LADDER, Execution, encoder_params
from trainers.loop import Engine, TaskData, TrainSpec, train
from trainers.phase import compile_encoder
from trainers.taskmodel import TaskModel, Tokenization
from trainers.zero import ZeroConfig, ZeroEngine

# Dense bf16 peak per GPU (no sparsity), from the vendors' data sheets.
PEAKS = (("H200", 989.4e12), ("H100 NVL", 835e12), ("H100 PCIe", 756e12), ("H100", 989.4e12),
         ("A100", 312e12))  # fmt: skip
TARGET_MFU = {("xlmr-large", "torch"): 0.45, ("xlmr-large", "zero"): 0.40}  # issue 16
ENGINES = {"torch": "one-process loop", "zero": "ZeRO-2"}


def peak_flops(name: str) -> float | None:
    return next((peak for key, peak in PEAKS if key in name), None)


def flops_per_token(layers: int, hidden: int, ffn: int, vocab: int, seq: int) -> float:
    non_embedding = encoder_params(layers, hidden, ffn, vocab, 514) - (vocab + 515 + 2) * hidden
    return 6.0 * non_embedding + 12.0 * layers * hidden * seq


def build(
    name: str, seq: int, n: int, device: str, run_as: Execution
) -> tuple[TaskModel, dict[str, TaskData]]:
    from transformers import AutoModel, XLMRobertaConfig

    e = LADDER[name]
    config = XLMRobertaConfig(vocab_size=e.vocab_size, hidden_size=e.hidden,
                              num_hidden_layers=e.layers, num_attention_heads=e.heads,
                              intermediate_size=e.ffn, max_position_embeddings=514,
                              type_vocab_size=1)  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):
        encoder = AutoModel.from_config(config, attn_implementation=run_as.attention)
        if run_as.compile:
            compile_encoder(encoder)  # as `trainers.phase` does: names and checkpoints unchanged
        spec = get_task("mnli")
        model = TaskModel(encoder, {"mnli": head_for(spec).build(e.hidden, 3)})
    rng = random.Random(0)
    features = [{"input_ids": [0] + [rng.randrange(5, e.vocab_size) for _ in range(seq - 2)] + [2],
                 "label": rng.randrange(3)} for _ in range(n)]  # fmt: skip
    tok = Tokenization(SimpleNamespace(pad_token_id=1), "bench", seq, None)
    return model, {"mnli": TaskData(spec, features, [], tok)}


def execution(args: argparse.Namespace) -> Execution:
    return Execution(precision=args.precision, compile=args.compile, attention=args.attention,
                     fused_optimizer=args.fused)  # fmt: skip


def run(name: str, engine_name: str, args: argparse.Namespace) -> dict[str, float]:
    world = dist.get_world_size()
    steps = args.warmup + args.steps
    run_as = execution(args)
    global_batch = args.micro * world
    model, tasks = build(name, args.seq, global_batch * args.grad_accum * 4, args.device, run_as)
    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    spec = TrainSpec(lr=1e-5, batch_size=global_batch, grad_accum=args.grad_accum,
                     warmup_ratio=0.1, eval_every=10**9, patience=0, weight_decay=0.01,
                     max_grad_norm=1.0, seed=0, max_steps=steps, micro_batch_size=args.micro,
                     precision=run_as.precision,
                     fused_optimizer=run_as.fused_optimizer)  # fmt: skip
    engine: Engine | None = None  # None: the one-process path (`TorchEngine`)
    if engine_name == "zero":
        zero = ZeroConfig(stage=2, offload=False, hidden=LADDER[name].hidden)
        zero_engine = ZeroEngine(model, spec, steps, zero, lambda d, m: None, None, Resume.NEVER)
        zero_engine.save = lambda state: None  # type: ignore[method-assign]
        engine = zero_engine
    marks: dict[int, float] = {}
    profiler = torch.profiler.profile() if args.profile else None

    def on_step(step: int, loss: float) -> None:
        if cuda:
            torch.cuda.synchronize()
        marks[step] = time.perf_counter()
        if profiler is not None and step == args.warmup:
            profiler.start()
        if profiler is not None and step == steps:
            profiler.stop()

    train(model, tasks, spec, engine=engine, on_step=on_step, resume=Resume.NEVER)
    seconds = marks[steps] - marks[args.warmup]
    samples = args.steps * global_batch * args.grad_accum / seconds
    e = LADDER[name]
    tokens = samples * args.seq
    achieved = tokens * flops_per_token(e.layers, e.hidden, e.ffn, e.vocab_size, args.seq)
    if profiler is not None and dist.get_rank() == 0:
        print_profile(profiler, seconds)
    del engine, model
    memory = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    if cuda:
        torch.cuda.empty_cache()
    return {"samples_s": samples, "tokens_s": tokens, "flops": achieved, "memory_gib": memory}


def print_profile(profiler: torch.profiler.profile, seconds: float) -> None:
    """How much of the measured wall time the GPU was busy, and the kernels that took it.

    Only device events (kernels, copies) count: the operators that launch them carry the
    same time again as their own device time.
    """
    cpu = torch.autograd.DeviceType.CPU
    ops = [e for e in profiler.key_averages()
           if e.device_type != cpu and e.self_device_time_total > 0]  # fmt: skip
    busy = sum(e.self_device_time_total for e in ops) / 1e6
    print(f"profile: GPU busy {busy:.3f} s of {seconds:.3f} s wall ({busy / seconds:.0%})")
    for e in sorted(ops, key=lambda e: -e.self_device_time_total)[:15]:
        print(f"  {e.self_device_time_total / 1e6 / busy:6.1%}  {e.count:6d} x  {e.key[:90]}")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", default="xlmr-large")
    parser.add_argument("--engines", default="torch,zero",
                        help="torch: the one-process loop (one process); zero: ZeRO-2")  # fmt: skip
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--micro", type=int, default=64, help="micro-batch per GPU")
    parser.add_argument("--grad-accum", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--peak-tflops", type=float, default=None, help="per GPU, dense bf16")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test of this script")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--attention", choices=("sdpa", "eager"), default="sdpa")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="torch.compile the encoder")  # fmt: skip
    parser.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                        help="AdamW's fused kernel (foreach on a CPU)")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="profile the measured steps: GPU-busy share, top kernels")  # fmt: skip
    args = parser.parse_args()
    unknown = set(args.engines.split(",")) - set(ENGINES)
    if unknown:
        parser.error(f"--engines: unknown {sorted(unknown)}; choose from {sorted(ENGINES)}")
    return args


def main() -> None:
    args = parse()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if args.device == "cuda":
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    gpu = torch.cuda.get_device_name(local) if args.device == "cuda" else "CPU"
    peak = args.peak_tflops * 1e12 if args.peak_tflops else peak_flops(gpu)
    world = dist.get_world_size()
    for engine in args.engines.split(","):
        if engine == "torch" and world > 1:
            if dist.get_rank() == 0:
                print(f"one-process loop skipped: {world} processes (run it with one)")
            continue
        for name in args.models.split(","):
            r = run(name, engine, args)
            if dist.get_rank() == 0:
                report(name, engine, r, gpu, peak, world, args)
    dist.destroy_process_group()


def report(name: str, engine: str, r: dict, gpu: str, peak: float | None, world: int,
           args: argparse.Namespace) -> None:  # fmt: skip
    mfu = r["flops"] / (peak * world) if peak else None
    target = TARGET_MFU.get((name, engine))
    verdict = "" if target is None or mfu is None else (
        f"  target >= {target:.2f}: {'MET' if mfu >= target else 'MISSED'}")  # fmt: skip
    shown = f"{mfu:.3f}" if mfu is not None else "n/a (unknown peak: pass --peak-tflops)"
    options = f"{args.precision}, {args.attention}, {'fused' if args.fused else 'unfused'} AdamW"
    options += ", compiled" if args.compile else ""
    print(f"{name}: {world} x {gpu}, {ENGINES[engine]}, {options}, seq {args.seq}, micro "
          f"{args.micro} x accum {args.grad_accum}: {r['samples_s']:.1f} samples/s, "
          f"{r['tokens_s']:.0f} tokens/s, MFU {shown}{verdict}, peak memory "
          f"{r['memory_gib']:.1f} GiB", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
