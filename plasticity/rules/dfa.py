"""Direct feedback alignment (Nøkland 2016, NeurIPS, "Direct Feedback Alignment Provides
Learning in Deep Neural Networks").

The output error e = ∂loss/∂logits is broadcast to every hidden layer through that layer's own
fixed random matrix: δ_l = (B_lᵀ e) ⊙ f′(a_l), ΔW_l = −η δ_l h_{l−1}ᵀ; the output layer uses e
itself (the delta rule). No layer waits for the backward pass of the layers above it.

With `mirror_rate` > 0 the feedback is no longer fixed: B_l learns from the network's own noise
by a weight mirror (Akrout et al. 2019; `feedback.mirror_feedback`), so that it comes to point
where the path from layer l to the output points, without reading a forward weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from plasticity.nets import MLP, Trace
from plasticity.rules.base import (
    Rule,
    StepInfo,
    layer_directions,
    output_error,
    step_info,
)
from plasticity.rules.card import PlausibilityCard
from plasticity.rules.fa import FeedbackConfig
from plasticity.rules.feedback import (
    direct_deltas,
    direct_feedback,
    direct_pairs,
    mirror_feedback,
)


@dataclass
class DirectFeedbackConfig(FeedbackConfig):
    """Direct feedback, fixed or learned.

    mirror_rate: how fast the feedback learns by a weight mirror (0: fixed random feedback,
    Nøkland's DFA). Every `mirror_every` steps, the first `mirror_samples` samples of the batch
    are passed again with noise of std `mirror_sigma` added to every hidden unit's output.
    """

    mirror_rate: float = 0.0
    mirror_sigma: float = 0.1
    mirror_every: int = 4
    mirror_samples: int = 64

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.mirror_rate <= 1.0:
            raise ValueError(f"mirror_rate must be in [0, 1]; got {self.mirror_rate}")
        if not self.mirror_sigma > 0:
            raise ValueError(f"mirror_sigma must be > 0; got {self.mirror_sigma}")
        if self.mirror_every < 1 or self.mirror_samples < 1:
            raise ValueError(f"mirror_every and mirror_samples must be ≥ 1; got {self.mirror_every}, {self.mirror_samples}")

    @property
    def learned(self) -> bool:
        return self.mirror_rate > 0


def learn_feedback(config: DirectFeedbackConfig, net: MLP, trace: Trace, feedback: list[torch.Tensor], seed: int, step: int) -> None:
    """The feedback's own plasticity at training step `step`, before the weights move (the
    mirror's clean pass is `trace`): a weight-mirror step every `mirror_every` steps, with noise
    drawn from a generator seeded by (seed, step), so that a resumed run draws the same noise."""
    if config.learned and step % config.mirror_every == 0:
        noise = torch.Generator().manual_seed(seed * 1_000_003 + step)
        mirror_feedback(net, trace, feedback, config.mirror_rate, config.mirror_sigma, config.mirror_samples, noise)


def feedback_phrase(config: DirectFeedbackConfig) -> str:
    """How the card names the feedback pathway."""
    if config.learned:
        return f"feedback learned from noise by a weight mirror every {config.mirror_every} steps"
    return "fixed random feedback"


class DirectFeedbackAlignment(Rule):
    name = "dfa"
    config_class = DirectFeedbackConfig

    def setup(self, net: MLP, generator: torch.Generator) -> None:
        # feedback[l] maps the output error (classes) to hidden layer l+1 (width n_{l+1}).
        self.feedback = direct_feedback(net.sizes, self.config.feedback_scale, generator)
        self.steps = torch.zeros((), dtype=torch.long)

    def _directions(self, trace: Trace, y: torch.Tensor, activation: str) -> tuple[list[torch.Tensor], StepInfo]:
        error = self._broadcast_or_pinned(output_error(trace.logits, y))
        deltas = direct_deltas(trace, error, self.feedback, activation) + [error]
        directions = layer_directions(trace, deltas)
        return directions, step_info(trace.logits, y, directions)

    @torch.no_grad()
    def directions(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], StepInfo]:
        return self._directions(net.trace(x), y, net.activation)

    @torch.no_grad()
    def step(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> StepInfo:
        self._check_net(net)
        trace = net.trace(x)
        directions, info = self._directions(trace, y, net.activation)
        learn_feedback(self.config, net, trace, self.feedback, self.seed, int(self.steps))
        self.apply(directions, info)
        self.steps += 1
        return info

    @torch.no_grad()
    def broadcast(self, net: MLP, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return output_error(net.trace(x).logits, y)

    def card(self) -> PlausibilityCard:
        return PlausibilityCard(
            rule=self.name,
            weight_transport="random",
            reads=("pre", "post", "broadcast"),
            global_signal=self.net.sizes[-1],
            error_signal=f"δ_l = (B_lᵀ e) ⊙ f′(a_l): the output error e broadcast through {feedback_phrase(self.config)}",
            phases_per_step=3 if self.config.learned else 2,
            inference_iterations=0,
            locks_removed=("backward",),
            reference="Nøkland 2016, NeurIPS" + ("; weight mirror, Akrout et al. 2019, NeurIPS" if self.config.learned else ""),
        )

    def feedback_pairs(self, net: MLP) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        return direct_pairs(self.feedback, net)

    def rule_state(self) -> dict[str, torch.Tensor]:
        state = {f"feedback.{index}": B for index, B in enumerate(self.feedback)}
        state["steps"] = self.steps
        return state
