"""Closed-form SoftHebb on the benchmark MLP (a `nn.Sequential` of Linear layers and activation
modules): the rule as it was written before it became a PyTorch extension, kept as the test
oracle of `plasticity.rules.softhebb`.

Hidden layer l with input x = h_l and pre-activation u = a_l (hidden biases are 0):
y = softmax(u/τ), −y_k for non-winners; ΔW_k = y_k (x − u_k W_k), batch mean; direction
−s |‖W_k‖ − 1|^p ΔW / max|ΔW|; hidden biases 0. The readout: the delta rule on its input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from oracle_ff import layer_direction, linears, output_error, trace
from torch import nn

from plasticity.rules.softhebb import SoftHebbConfig


def competition(config: SoftHebbConfig, u: torch.Tensor) -> torch.Tensor:
    y = torch.softmax(u / config.temperature, dim=1)
    if not config.anti_hebbian:
        return y
    winners = F.one_hot(u.argmax(dim=1), u.shape[1]).bool()
    return torch.where(winners, y, -y)


def hebbian_direction(config: SoftHebbConfig, x: torch.Tensor, u: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    y = competition(config, u)
    change = (y.T @ x - (y * u).sum(dim=0)[:, None] * weight) / len(x)
    if config.normalize_step:
        change = change / change.abs().max().clamp_min(torch.finfo(change.dtype).tiny)
    if config.adaptive_power:
        change = change * (weight.norm(dim=1, keepdim=True) - 1.0).abs().pow(config.adaptive_power)
    return -config.hebbian_scale * change


@torch.no_grad()
def directions(model: nn.Sequential, config: SoftHebbConfig, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """[ΔW, Δb] of every layer, in gradient convention (hidden biases: zeros)."""
    t = trace(model, x)
    layers = linears(model)
    out: list[torch.Tensor] = []
    for layer, pre, u in zip(layers[:-1], t.h[:-2], t.a[:-1], strict=True):
        weight = hebbian_direction(config, pre, u, layer.weight) if config.hebbian else torch.zeros_like(layer.weight)
        out += [weight, torch.zeros_like(layer.bias)]
    return out + layer_direction(output_error(t.logits, y), t.h[-2])
