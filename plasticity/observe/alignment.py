"""Alignment of a rule's updates and feedback with backprop (read-only).

Per layer and per epoch, on a fixed probe batch from the training set:
  update_angle — angle (degrees) between the rule's weight-update direction and the backprop
      gradient of the same loss on the same batch and weights. 0° = backprop's direction,
      90° = orthogonal (no descent information), > 90° = ascent.
  feedback_angle — angle between the rule's feedback matrix B and what it stands in for (the
      forward weight W_{l+1} for `fa`/`sign`; the product W_L⋯W_{l+1} for `dfa`), and
  feedback_norm_ratio — ‖B‖_F / ‖W‖_F.
Lillicrap et al. (2016) showed that under feedback alignment the update angle falls below 90°
as the forward weights come to align with the fixed feedback; these curves show it per layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.rules.attach import GradientRule


def angle(a: torch.Tensor, b: torch.Tensor) -> float:
    """Angle in degrees between two tensors seen as flat vectors (90° if either is zero)."""
    a, b = a.detach().flatten().double(), b.detach().flatten().double()
    norms = float(a.norm() * b.norm())
    if norms == 0.0:
        return 90.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(a @ b) / norms))))


def backprop_gradients(rule: GradientRule, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """Backprop's gradient of the batch cross-entropy for every parameter of `net` (an attached
    rule bypassed)."""
    with torch.enable_grad(), rule.bypassed():
        return list(torch.autograd.grad(F.cross_entropy(net(x), y), list(net.parameters())))


def weight_positions(rule: GradientRule, net: nn.Module) -> list[int]:
    """Where each layer's weight the rule is attached to sits in `net.parameters()`."""
    index = {id(p): i for i, p in enumerate(net.parameters())}
    return [index[id(block.weight)] for block in rule.layers_]


def alignment(rule: GradientRule, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, list[float]]:
    """Update angles per layer (weights only) and feedback angles / norm ratios per feedback matrix."""
    directions, _ = rule.directions(net, x, y)
    gradients = backprop_gradients(rule, net, x, y)
    pairs = rule.feedback_pairs(net)
    return {
        "update_angle": [angle(directions[i], gradients[i]) for i in weight_positions(rule, net)],
        "feedback_angle": [angle(B, W) for _, B, W in pairs],
        "feedback_norm_ratio": [float(B.detach().norm() / W.detach().norm()) for _, B, W in pairs],
        "feedback_names": [name for name, _, _ in pairs],
    }


@dataclass
class AlignmentConfig:
    """probe_size: rows of the training set (a fixed random subset, seed `seed`) used each epoch."""

    probe_size: int = 512
    seed: int = 0


class AlignmentMonitor:
    """Observer "alignment": update and feedback angles to backprop, per layer, each epoch."""

    name = "alignment"

    def __init__(self, config: AlignmentConfig | None = None) -> None:
        self.config = config or AlignmentConfig()

    def on_step(self, net: nn.Module, rule: GradientRule, x: torch.Tensor, y: torch.Tensor, info: Any) -> None:
        """Nothing per step: alignment is measured on a fixed probe at each epoch end."""

    def on_epoch_end(self, net: nn.Module, rule: GradientRule, epoch: int, data: Any) -> dict[str, Any]:
        n = len(data.train.y)
        generator = torch.Generator().manual_seed(self.config.seed)
        index = torch.randperm(n, generator=generator)[: min(self.config.probe_size, n)]
        device = next(net.parameters()).device
        return alignment(rule, net, data.train.x[index].to(device), data.train.y[index].to(device))
