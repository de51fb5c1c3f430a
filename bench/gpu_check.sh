#!/usr/bin/env bash
# GPU throughput check: XLM-R base- and large-sized models (random init, no download),
# DeepSpeed ZeRO-2, bf16, seq 256, through the one training loop; prints samples/s,
# tokens/s and MFU against the GPU's peak dense bf16 FLOP/s (target: MFU >= 0.40 for large).
#
#   bench/gpu_check.sh                      # every visible GPU, the defaults
#   NGPU=1 bench/gpu_check.sh --micro 32    # extra arguments go to bench/gpu_check.py
#
# Needs a CUDA build of torch, deepspeed and transformers in $PYTHON (default: .venv/bin/python,
# else python3). About 2-4 minutes on one H100; killed after 8.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
NGPU=${NGPU:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)}
if [ "${NGPU:-0}" -lt 1 ] && [[ " $* " != *" --device cpu "* ]]; then
    echo "gpu_check: no NVIDIA GPU found (nvidia-smi -L); nothing to measure" >&2
    exit 2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false
exec timeout 480 "$PYTHON" -m torch.distributed.run --standalone \
    --nproc_per_node="$(( NGPU > 0 ? NGPU : 2 ))" bench/gpu_check.py "$@"
