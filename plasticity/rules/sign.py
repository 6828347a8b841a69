"""Sign-symmetry (Liao, Leibo & Poggio 2016, AAAI; Moskovitz, Litwin-Kumar & Abbott 2018).

Feedback alignment where the feedback shares only the signs of the forward weights:
B_{l+1} = c · sign(W_{l+1}) with a fixed magnitude c = feedback_scale / sqrt(fan) (the "uniform
sign-concordant feedback", uSF, of Liao et al.; fan = out_features, or out_channels × kernel
size, so that c matches the entry scale of `fa`'s random feedback). The update reads one bit
per forward synapse, not its value. The signs are read in the backward pass, from the weights
the forward pass used.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from plasticity.card import PlausibilityCard
from plasticity.rules.attach import fan_out
from plasticity.rules.fa import ChainFeedbackRule


class SignSymmetry(ChainFeedbackRule):
    name = "sign"

    def _register(self, model: nn.Module) -> list[Any]:
        self.scales_ = [self.config.feedback_scale / math.sqrt(fan_out(layer)) for layer in self.layers_]
        return super()._register(model)

    def feedback_for(self, index: int, layer: nn.Module) -> torch.Tensor:
        return torch.sign(layer.weight.detach()).mul_(self.scales_[index])

    def card(self) -> PlausibilityCard:
        return PlausibilityCard(
            rule=self.name,
            weight_transport="sign",
            reads=("pre", "post", "error_from_above"),
            global_signal=0,
            error_signal="δ_l = (c·sign(W_{l+1})ᵀ δ_{l+1}) ⊙ f′(a_l): feedback shares the forward weights' signs",
            phases_per_step=2,
            inference_iterations=0,
            locks_removed=(),
            reference="Liao, Leibo & Poggio 2016, AAAI; Moskovitz et al. 2018, arXiv:1812.05629",
        )

    def feedback_pairs(self, model: nn.Module) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """(c·sign(W_l), W_l) for every converted layer but the first (whose input is data)."""
        return [(f"B{index + 1}", self.feedback_for(index, layer), layer.weight) for index, layer in enumerate(self.layers_) if index > 0]
