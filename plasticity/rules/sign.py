"""Sign-symmetry (Liao, Leibo & Poggio 2016, AAAI; Moskovitz, Litwin-Kumar & Abbott 2018).

Feedback alignment where the feedback shares only the signs of the forward weights:
B_{l+1} = c · sign(W_{l+1}) with a fixed magnitude c = feedback_scale / sqrt(n_{l+1}) (the
"uniform sign-concordant feedback", uSF, of Liao et al.; c matches the entry scale of `fa`'s
random feedback). The update reads one bit per forward synapse, not its value.
"""

from __future__ import annotations

import math

import torch

from plasticity.nets import MLP
from plasticity.rules.base import Rule, StepInfo, layer_directions, output_error, step_info
from plasticity.rules.card import PlausibilityCard
from plasticity.rules.fa import FeedbackConfig
from plasticity.rules.feedback import chain_deltas, chain_pairs


class SignSymmetry(Rule):
    name = "sign"
    config_class = FeedbackConfig

    def sign_feedback(self, net: MLP) -> list[torch.Tensor]:
        return [
            torch.sign(layer.weight) * (self.config.feedback_scale / math.sqrt(layer.out_features))
            for layer in net.layers[1:]
        ]

    @torch.no_grad()
    def directions(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], StepInfo]:
        trace = net.trace(x)
        deltas = chain_deltas(trace, output_error(trace.logits, y), self.sign_feedback(net), net.activation)
        directions = layer_directions(trace, deltas)
        return directions, step_info(trace.logits, y, directions)

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

    def feedback_pairs(self, net: MLP) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        return chain_pairs(self.sign_feedback(net), net)
