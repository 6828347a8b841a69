"""Feedback alignment (Lillicrap, Cownden, Tweed & Akerman 2016, Nat. Commun. 7:13276).

The backward pass of backprop with each transposed forward matrix W_{l+1}ᵀ replaced by a fixed
random matrix B_{l+1}: δ_l = (B_{l+1}ᵀ δ_{l+1}) ⊙ f′(a_l), ΔW_l = −η δ_l h_{l−1}ᵀ. The forward
weights come to align with the feedback during learning ("feedback alignment"), which
`plasticity.observe.alignment` measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from plasticity.nets import MLP
from plasticity.rules.base import Rule, RuleConfig, StepInfo, layer_directions, output_error, step_info
from plasticity.rules.card import PlausibilityCard
from plasticity.rules.feedback import chain_deltas, chain_pairs, uniform_feedback


@dataclass
class FeedbackConfig(RuleConfig):
    """feedback_scale: multiplies the fixed feedback (entries ~ U(±scale·sqrt(3/fan_in)))."""

    feedback_scale: float = 1.0

    def validate(self) -> None:
        super().validate()
        if not self.feedback_scale > 0:
            raise ValueError(f"feedback_scale must be > 0; got {self.feedback_scale}")


class FeedbackAlignment(Rule):
    name = "fa"
    config_class = FeedbackConfig

    def setup(self, net: MLP, generator: torch.Generator) -> None:
        # feedback[l] stands in for the forward weight of layer l+2 (same shape, never read).
        self.feedback = [
            uniform_feedback(tuple(layer.weight.shape), layer.out_features, self.config.feedback_scale, generator)
            for layer in net.layers[1:]
        ]

    @torch.no_grad()
    def directions(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], StepInfo]:
        trace = net.trace(x)
        deltas = chain_deltas(trace, output_error(trace.logits, y), self.feedback, net.activation)
        directions = layer_directions(trace, deltas)
        return directions, step_info(trace.logits, y, directions)

    def card(self) -> PlausibilityCard:
        return PlausibilityCard(
            rule=self.name,
            weight_transport="random",
            reads=("pre", "post", "error_from_above"),
            global_signal=0,
            error_signal="δ_l = (B_{l+1}ᵀ δ_{l+1}) ⊙ f′(a_l): errors passed down through fixed random feedback",
            phases_per_step=2,
            inference_iterations=0,
            locks_removed=(),
            reference="Lillicrap et al. 2016, Nat. Commun. 7:13276",
        )

    def feedback_pairs(self, net: MLP) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        return chain_pairs(self.feedback, net)

    def rule_state(self) -> dict[str, torch.Tensor]:
        return {f"feedback.{index}": B for index, B in enumerate(self.feedback)}
