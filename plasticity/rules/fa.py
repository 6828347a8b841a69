"""Feedback alignment (Lillicrap, Cownden, Tweed & Akerman 2016, Nat. Commun. 7:13276).

The backward pass of backprop with each transposed forward matrix W_{l+1}ᵀ replaced by a fixed
random matrix B_{l+1}: δ_l = (B_{l+1}ᵀ δ_{l+1}) ⊙ f′(a_l), ΔW_l = −η δ_l h_{l−1}ᵀ. The forward
weights come to align with the feedback during learning ("feedback alignment"), which
`plasticity.observe.alignment` measures.

As a PyTorch extension: every converted layer (Linear, Conv1d, Conv2d) keeps its own forward
pass and weight gradient; its input is detached from it, and an autograd Function
(`FeedbackPath`) hands the layer's output error to its input through B instead of W (for a
convolution, the transposed convolution with B). Everything between two converted layers
(activations, pooling, flattening, residual additions) passes the error by autograd as usual,
which is where ⊙ f′(a_l) comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from plasticity.rules.attach import GradientRule, LazyFeedback, fan_out, input_error
from plasticity.rules.base import RuleConfig
from plasticity.rules.card import PlausibilityCard
from plasticity.rules.feedback import uniform_feedback


@dataclass
class FeedbackConfig(RuleConfig):
    """feedback_scale: multiplies the feedback (entries ~ U(±scale·sqrt(3/fan)), fan = the
    layer's out_features, or out_channels × kernel size)."""

    feedback_scale: float = 1.0

    def validate(self) -> None:
        super().validate()
        if not self.feedback_scale > 0:
            raise ValueError(f"feedback_scale must be > 0; got {self.feedback_scale}")


class FeedbackPath(torch.autograd.Function):
    """Identity on a layer's output; backward sends the output's error to the layer's input
    through `feedback` (shaped like the layer's weight) instead of the weight."""

    @staticmethod
    def forward(ctx: Any, output: torch.Tensor, inputs: torch.Tensor, feedback: torch.Tensor, layer: nn.Module) -> torch.Tensor:
        ctx.layer, ctx.input_shape = layer, inputs.shape
        ctx.save_for_backward(feedback)
        return output.view_as(output)

    @staticmethod
    def backward(ctx: Any, error: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (feedback,) = ctx.saved_tensors
        return error, input_error(ctx.layer, error, feedback, ctx.input_shape), None, None


class ChainFeedbackRule(GradientRule):
    """Errors passed down layer by layer, each layer's input error through its own feedback
    (`feedback_for`) instead of its forward weight."""

    config_class = FeedbackConfig

    def _register(self, model: nn.Module) -> list[RemovableHandle]:
        # A stack per layer: the input the pre-hook detached, for the hook after the forward
        # (None when the hooks are inactive); a stack, so a layer may run twice in one pass.
        self.inputs_: list[list[torch.Tensor | None]] = [[] for _ in self.layers_]
        handles = []
        for index, layer in enumerate(self.layers_):
            handles.append(layer.register_forward_pre_hook(partial(self._detach_input, index)))
            handles.append(layer.register_forward_hook(partial(self._feedback_path, index)))
        return handles

    def _detach_input(self, index: int, layer: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        x = args[0]
        if not (self.active and x.requires_grad):
            self.inputs_[index].append(None)
            return None
        self.inputs_[index].append(x)
        return (x.detach(), *args[1:])

    def _feedback_path(self, index: int, layer: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor | None:
        x = self.inputs_[index].pop()
        if x is None:
            return None
        return FeedbackPath.apply(output, x, self.feedback_for(index, layer), layer)

    def feedback_for(self, index: int, layer: nn.Module) -> torch.Tensor:
        """The matrix that stands in for layer `index`'s weight in the backward pass."""
        raise NotImplementedError


class FeedbackAlignment(ChainFeedbackRule):
    name = "fa"

    def _register(self, model: nn.Module) -> list[RemovableHandle]:
        if len(getattr(self, "feedback", ())) != len(self.layers_):
            self.feedback = nn.ModuleList(LazyFeedback() for _ in self.layers_)
        return super()._register(model)

    def feedback_for(self, index: int, layer: nn.Module) -> torch.Tensor:
        """B for layer `index`, drawn from the rule's generator when the layer first passes an
        error down (the first layer, whose input is data, never does and gets none)."""
        slot = self.feedback[index]
        if not slot.ready:
            weight = layer.weight
            drawn = uniform_feedback(tuple(weight.shape), fan_out(layer), self.config.feedback_scale, self.generator)
            slot.materialize(drawn.to(weight))
        return slot.weight

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

    def feedback_pairs(self, model: nn.Module) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """(B_l, W_l) for every layer that has passed an error down through its feedback."""
        return [
            (f"B{index + 1}", slot.weight, layer.weight)
            for index, (slot, layer) in enumerate(zip(self.feedback, self.layers_, strict=True))
            if slot.ready
        ]
