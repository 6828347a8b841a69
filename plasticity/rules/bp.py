"""Backpropagation (Rumelhart, Hinton & Williams 1986): the baseline every rule is measured against.

Gradients come from autograd on the batch-mean cross-entropy. It is deliberately the ordinary
PyTorch way to train, so that time ratios compare local rules with what users run today.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from plasticity.nets import MLP
from plasticity.rules.base import Rule, StepInfo, step_info
from plasticity.rules.card import PlausibilityCard


class Backprop(Rule):
    name = "bp"

    def directions(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], StepInfo]:
        params = list(net.parameters())
        with torch.enable_grad():
            logits = net(x)
            grads = list(torch.autograd.grad(F.cross_entropy(logits, y), params))
        return grads, step_info(logits, y, grads)

    def card(self) -> PlausibilityCard:
        return PlausibilityCard(
            rule=self.name,
            weight_transport="exact",
            reads=("pre", "post", "error_from_above"),
            global_signal=0,
            error_signal="δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ f′(a_l): per-neuron errors through the transposed forward weights",
            phases_per_step=2,
            inference_iterations=0,
            locks_removed=(),
            reference="Rumelhart, Hinton & Williams 1986, Nature 323:533",
        )
