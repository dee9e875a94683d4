"""Reduced-precision variants measured by the benchmark (bf16 and int8 are not product options).

``fp16`` is the shipped option (``wham_ros.model.precision``). The others rebind the
same step products to:

* ``bf16``: bfloat16 weights and products (oneDNN; uses AVX512-BF16 here);
* ``int8``: per-output-channel symmetric int8 weights with dynamically quantised
  activations (fbgemm ``linear_dynamic``).

The README records their speed and why they are not offered (deviation over 1 %
relative L2 on the parity set).
"""
from __future__ import annotations

import torch

from wham_ros.model.precision import LinearFn, apply_linear, half_linear, set_precision

MODES = ("fp16", "bf16", "int8")


def int8_linear(weight: torch.Tensor, bias: torch.Tensor) -> LinearFn:
    scale = (weight.detach().abs().amax(1).clamp_min(1e-12) / 127.0).double()
    q = torch.quantize_per_channel(weight.detach(), scale, torch.zeros_like(scale, dtype=torch.long), 0, torch.qint8)
    packed = torch.ops.quantized.linear_prepack(q, bias.detach().float())
    return lambda x: torch.ops.quantized.linear_dynamic(x.contiguous(), packed, True)


def apply(net: torch.nn.Module, mode: str) -> torch.nn.Module:
    if mode == "fp16":
        return set_precision(net, "fp16")
    if mode == "bf16":
        return apply_linear(net, lambda w, b: half_linear(w, b, torch.bfloat16))
    if mode == "int8":
        return apply_linear(net, int8_linear)
    raise ValueError(f"unknown mode {mode!r}; use one of {MODES}")
