"""Direct feedback alignment (Nøkland 2016, NeurIPS, "Direct Feedback Alignment Provides
Learning in Deep Neural Networks").

The output error e = ∂loss/∂logits is broadcast to every hidden layer through that layer's own
fixed random matrix: δ_l = (B_lᵀ e) ⊙ f′(a_l), ΔW_l = −η δ_l h_{l−1}ᵀ; the output layer uses e
itself (the delta rule). No layer waits for the backward pass of the layers above it.
"""

from __future__ import annotations

import torch

from plasticity.nets import MLP
from plasticity.rules.base import Rule, StepInfo, layer_directions, output_error, step_info
from plasticity.rules.card import PlausibilityCard
from plasticity.rules.fa import FeedbackConfig
from plasticity.rules.feedback import direct_deltas, direct_feedback, direct_pairs


class DirectFeedbackAlignment(Rule):
    name = "dfa"
    config_class = FeedbackConfig

    def setup(self, net: MLP, generator: torch.Generator) -> None:
        # feedback[l] maps the output error (classes) to hidden layer l+1 (width n_{l+1}).
        self.feedback = direct_feedback(net.sizes, self.config.feedback_scale, generator)

    @torch.no_grad()
    def directions(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], StepInfo]:
        trace = net.trace(x)
        error = self._broadcast_or_pinned(output_error(trace.logits, y))
        deltas = direct_deltas(trace, error, self.feedback, net.activation) + [error]
        directions = layer_directions(trace, deltas)
        return directions, step_info(trace.logits, y, directions)

    @torch.no_grad()
    def broadcast(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return output_error(net.trace(x).logits, y)

    def card(self) -> PlausibilityCard:
        return PlausibilityCard(
            rule=self.name,
            weight_transport="random",
            reads=("pre", "post", "broadcast"),
            global_signal=self.net.sizes[-1],
            error_signal="δ_l = (B_lᵀ e) ⊙ f′(a_l): the output error e broadcast through fixed random feedback",
            phases_per_step=2,
            inference_iterations=0,
            locks_removed=("backward",),
            reference="Nøkland 2016, NeurIPS",
        )

    def feedback_pairs(self, net: MLP) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        return direct_pairs(self.feedback, net)

    def rule_state(self) -> dict[str, torch.Tensor]:
        return {f"feedback.{index}": B for index, B in enumerate(self.feedback)}
