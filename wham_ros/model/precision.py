"""Optional float16 weights for the per-frame network steps.

A streaming step reads every recurrent weight once per frame (about 120 MB in
float32), so one track's step is bound by memory bandwidth. ``fp16`` keeps a
float16 copy of the LSTM and integrator weights and runs those products in
float16; states, heads, the body model and all geometry stay float32. On the
parity set every output stays within 0.2 % relative L2 of float32 (README,
"Reduced precision"). On CPUs without native float16 arithmetic it only pays off
for one or two tracks per step; on CUDA it helps at any batch size.

``set_precision(net, "fp32")`` restores the exact path; loading a checkpoint does too.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from wham_ros.model.integrator import Integrator
from wham_ros.model.regressor import Regressor

PRECISIONS = ("fp32", "fp16")
LinearFn = Callable[[torch.Tensor], torch.Tensor]


def half_linear(weight: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype = torch.float16) -> LinearFn:
    """x (N, in) float32 -> x W^T + b (N, out) float32, with W stored and multiplied in ``dtype``."""
    w = weight.detach().to(dtype)
    b = bias.detach().float()
    return lambda x: F.linear(x.to(dtype), w).float() + b


def apply_linear(net: nn.Module, make: Callable[[torch.Tensor, torch.Tensor], LinearFn] | None) -> nn.Module:
    """Give every regressor's LSTM cells and the integrator's layers products built by ``make`` (None: exact)."""
    for module in net.modules():
        if isinstance(module, Regressor):
            rnn = module.rnn
            module.fast_cells = None if make is None else [
                (make(getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"bias_ih_l{k}")),
                 make(getattr(rnn, f"weight_hh_l{k}"), getattr(rnn, f"bias_hh_l{k}")))
                for k in range(rnn.num_layers)]
        elif isinstance(module, Integrator) and module.enabled:
            module.fast_layers = None if make is None else [
                make(layer.weight, layer.bias) for layer in (module.layer1, module.layer2, module.layer3)]
    return net


def set_precision(net: nn.Module, mode: str) -> nn.Module:
    """``fp32`` (exact, default) or ``fp16`` step weights; returns ``net``."""
    if mode not in PRECISIONS:
        raise ValueError(f"unknown precision {mode!r}; use one of {PRECISIONS}")
    apply_linear(net, None if mode == "fp32" else half_linear)
    net.precision = mode
    return net
