"""A model's numeric precision at run time (`trainers.ladder.Execution.precision`).

`bf16` is autocast over float32 weights: matrix products and attention in bfloat16, losses,
softmaxes and reductions in float32, on whatever device the module lives on (CUDA or CPU), so
that a cell runs the same arithmetic wherever it is placed. `fp32` is a no-op.
"""

from __future__ import annotations

import torch
from torch import nn


def bf16_autocast(module: nn.Module, enabled: bool) -> torch.autocast:
    """bf16 autocast on `module`'s device type when `enabled`, else a no-op."""
    device = next(module.parameters()).device
    return torch.autocast(device.type, torch.bfloat16, enabled=enabled)
