#!/usr/bin/env bash
# GPU throughput check (issue 16): XLM-R large shapes (random init, no download), bf16
# autocast, SDPA attention, fused AdamW, torch.compile, seq 256, through the one training
# loop: first as one process on one GPU (target MFU >= 0.45), then with DeepSpeed ZeRO-2 on
# every visible GPU (target MFU >= 0.40). Prints samples/s, tokens/s and MFU against the GPU's
# peak dense bf16 FLOP/s.
#
#   bench/gpu_check.sh                          # the defaults
#   bench/gpu_check.sh --no-compile --micro 32  # extra arguments go to bench/gpu_check.py
#   bench/gpu_check.sh --device cpu --models tiny-s --seq 32 --micro 4 --grad-accum 1 \
#       --warmup 1 --steps 2 --no-compile       # smoke test of this script without a GPU
#
# Needs a CUDA build of torch, deepspeed and transformers in $PYTHON (default: .venv/bin/python,
# else python3). About 3-5 minutes on one H100/H200; each half is killed after 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
NGPU=${NGPU:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)}
if [[ " $* " == *" --device cpu "* ]]; then
    NGPU=0
    export DS_ACCELERATOR=cpu
elif [ "${NGPU:-0}" -lt 1 ]; then
    echo "gpu_check: no NVIDIA GPU found (nvidia-smi -L); nothing to measure" \
         "(bench/gpu_check.sh --device cpu ... runs a smoke test)" >&2
    exit 2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false
launch() {  # launch NPROC ARGS...: one torchrun, killed after 5 minutes
    local nproc=$1
    shift
    timeout 300 "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node="$nproc" \
        bench/gpu_check.py "$@"
}
launch 1 --engines torch "$@"
launch "$(( NGPU > 0 ? NGPU : 2 ))" --engines zero "$@"
