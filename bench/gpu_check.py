"""Throughput and MFU of the one training loop under DeepSpeed ZeRO-2, bf16, on GPUs.

Launched by `bench/gpu_check.sh` (torchrun, one process per GPU). For each size (XLM-R base
and large shapes, random init from config: nothing is downloaded) it trains the real loop
(`trainers.loop.train` with `trainers.zero.ZeroEngine`, a classification head, sequences of
exactly `--seq` tokens) for `--warmup` + `--steps` optimizer steps and prints samples/s,
tokens/s and model FLOPs utilisation: model FLOPs per token (6 x non-embedding parameters
+ 12 x layers x hidden x seq for attention, forward + backward) x tokens/s, over the GPUs'
peak dense bf16 FLOP/s. Checkpoints are not written (the engine's `save` is a no-op here).
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
from trainers.ladder import LADDER, encoder_params
from trainers.loop import TaskData, TrainSpec, train
from trainers.taskmodel import TaskModel, Tokenization
from trainers.zero import ZeroConfig, ZeroEngine

# Dense bf16 peak per GPU (no sparsity), from the vendors' data sheets.
PEAKS = (("H200", 989.4e12), ("H100 NVL", 835e12), ("H100 PCIe", 756e12), ("H100", 989.4e12),
         ("A100", 312e12))  # fmt: skip
TARGET_MFU = {"xlmr-large": 0.40}


def peak_flops(name: str) -> float | None:
    return next((peak for key, peak in PEAKS if key in name), None)


def flops_per_token(layers: int, hidden: int, ffn: int, vocab: int, seq: int) -> float:
    non_embedding = encoder_params(layers, hidden, ffn, vocab, 514) - (vocab + 515 + 2) * hidden
    return 6.0 * non_embedding + 12.0 * layers * hidden * seq


def build(
    name: str, seq: int, n: int, device: str, compile: bool = False
) -> tuple[TaskModel, dict[str, TaskData]]:
    from transformers import AutoModel, XLMRobertaConfig

    e = LADDER[name]
    config = XLMRobertaConfig(vocab_size=e.vocab_size, hidden_size=e.hidden,
                              num_hidden_layers=e.layers, num_attention_heads=e.heads,
                              intermediate_size=e.ffn, max_position_embeddings=514,
                              type_vocab_size=1)  # fmt: skip
    torch.manual_seed(0)
    with torch.device(device):
        encoder = AutoModel.from_config(config)
        if compile:
            encoder.compile()  # in place: parameter names (and checkpoints) stay the same
        spec = get_task("mnli")
        model = TaskModel(encoder, {"mnli": head_for(spec).build(e.hidden, 3)})
    rng = random.Random(0)
    features = [{"input_ids": [0] + [rng.randrange(5, e.vocab_size) for _ in range(seq - 2)] + [2],
                 "label": rng.randrange(3)} for _ in range(n)]  # fmt: skip
    tok = Tokenization(SimpleNamespace(pad_token_id=1), "bench", seq, None)
    return model, {"mnli": TaskData(spec, features, [], tok)}


def run(name: str, args: argparse.Namespace) -> dict[str, float]:
    world = dist.get_world_size()
    steps = args.warmup + args.steps
    global_batch = args.micro * world
    model, tasks = build(name, args.seq, global_batch * args.grad_accum * 4, args.device,
                         args.compile)  # fmt: skip
    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    spec = TrainSpec(lr=1e-5, batch_size=global_batch, grad_accum=args.grad_accum,
                     warmup_ratio=0.1, eval_every=10**9, patience=0, weight_decay=0.01,
                     max_grad_norm=1.0, seed=0, max_steps=steps)  # fmt: skip
    bf16 = cuda and torch.cuda.is_bf16_supported()
    engine: ZeroEngine | None = None  # None: the one-process path (fp32 weights, bf16 autocast)
    if args.engine == "zero":
        zero = ZeroConfig(stage=2, offload=False, bf16=bf16)
        engine = ZeroEngine(model, spec, steps, zero, lambda d, m: None, None, Resume.NEVER)
        engine.save = lambda state: None  # type: ignore[method-assign]
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
    return {"samples_s": samples, "tokens_s": tokens, "flops": achieved, "memory_gib": memory,
            "bf16": float(bf16)}  # fmt: skip


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="xlmr-base,xlmr-large")
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--micro", type=int, default=64, help="micro-batch per GPU")
    parser.add_argument("--grad-accum", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--peak-tflops", type=float, default=None, help="per GPU, dense bf16")
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test of this script")
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoder")
    parser.add_argument("--engine", choices=("zero", "torch"), default="zero",
                        help="zero: DeepSpeed ZeRO-2; torch: the one-process loop")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="profile the measured steps: GPU-busy share, top kernels")  # fmt: skip
    args = parser.parse_args()
    if args.engine == "torch" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        parser.error("--engine torch is the one-process loop: run it with NGPU=1")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if args.device == "cuda":
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    gpu = torch.cuda.get_device_name(local) if args.device == "cuda" else "CPU"
    peak = args.peak_tflops * 1e12 if args.peak_tflops else peak_flops(gpu)
    world = dist.get_world_size()
    for name in args.models.split(","):
        r = run(name, args)
        if dist.get_rank() == 0:
            report(name, r, gpu, peak, world, args)
    dist.destroy_process_group()


def report(name: str, r: dict, gpu: str, peak: float | None, world: int, args) -> None:
    mfu = r["flops"] / (peak * world) if peak else None
    target = TARGET_MFU.get(name)
    verdict = "" if target is None or mfu is None else (
        f"  target >= {target:.2f}: {'MET' if mfu >= target else 'MISSED'}")  # fmt: skip
    shown = f"{mfu:.3f}" if mfu is not None else "n/a (unknown GPU: pass --peak-tflops)"
    dtype = "bf16" if r["bf16"] else "fp32"
    engine = "ZeRO-2" if args.engine == "zero" else "one-process loop"
    print(f"{name}: {world} x {gpu}, {engine} {dtype}, seq {args.seq}, micro {args.micro} x "
          f"accum {args.grad_accum}: {r['samples_s']:.1f} samples/s, {r['tokens_s']:.0f} "
          f"tokens/s, MFU {shown}{verdict}, peak memory {r['memory_gib']:.1f} GiB",
          flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
