"""Feedback alignment (Lillicrap, Cownden, Tweed & Akerman 2016, Nat. Commun. 7:13276).

The backward pass of backprop with each transposed forward matrix W_{l+1}ᵀ replaced by a fixed
random matrix B_{l+1}: δ_l = (B_{l+1}ᵀ δ_{l+1}) ⊙ f′(a_l), ΔW_l = −η δ_l h_{l−1}ᵀ. The forward
weights come to align with the feedback during learning ("feedback alignment"), which
`plasticity.observe.alignment` measures.

As a PyTorch extension: every converted layer (Linear, Conv1d, Conv2d) runs through an autograd
Function (`FeedbackLinear`, `FeedbackConv`) whose forward pass is the layer's own and whose
backward pass computes the weight gradient as usual but hands the output's error to the input
through B instead of W (for a convolution, the transposed convolution with B). Everything
between two converted layers (activations, pooling, flattening, residual additions) passes the
error by autograd as usual, which is where ⊙ f′(a_l) comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from plasticity.card import PlausibilityCard
from plasticity.errors import ConfigError
from plasticity.rules.attach import GradientRule, LazyFeedback, conv_padding, fan_out, override_forward
from plasticity.rules.base import RuleConfig
from plasticity.rules.feedback import uniform_feedback


@dataclass
class FeedbackConfig(RuleConfig):
    """feedback_scale: multiplies the feedback (entries ~ U(±scale·sqrt(3/fan)), fan = the
    layer's out_features, or out_channels × kernel size)."""

    feedback_scale: float = 1.0

    def validate(self) -> None:
        super().validate()
        if not self.feedback_scale > 0:
            raise ConfigError(f"feedback_scale must be > 0; got {self.feedback_scale}")


class FeedbackLinear(torch.autograd.Function):
    """y = x Wᵀ + b; backward: δ_x = δ_y B (B in place of W), ΔW = δ_yᵀ x, Δb = Σ δ_y."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, feedback: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, feedback)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, error: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, feedback = ctx.saved_tensors
        x, feedback = x.to(error.dtype), feedback.to(error.dtype)  # no-ops but under autocast
        grad_x = error @ feedback if ctx.needs_input_grad[0] else None
        rows, inputs = (error, x) if error.dim() == 2 else (error.reshape(-1, error.shape[-1]), x.reshape(-1, x.shape[-1]))
        grad_bias = rows.sum(dim=0) if ctx.has_bias else None
        return grad_x, rows.T @ inputs, grad_bias, None


class FeedbackConv(torch.autograd.Function):
    """The layer's own convolution; backward: the input's error is the transposed convolution of
    the output's error with B in place of W, and the weight and bias gradients are PyTorch's
    (one `convolution_backward` call gives all three). `geometry`: (stride, padding, dilation,
    output padding, groups) of the layer, as numbers."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, feedback: torch.Tensor, layer: nn.Module, geometry: tuple
    ) -> torch.Tensor:
        ctx.save_for_backward(x, feedback)
        ctx.geometry, ctx.has_bias = geometry, bias is not None
        return layer._conv_forward(x, weight, bias)

    @staticmethod
    def backward(ctx: Any, error: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, feedback = ctx.saved_tensors
        stride, padding, dilation, output_padding, groups = ctx.geometry
        grad_x, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
            error,
            x.to(error.dtype),
            feedback.to(error.dtype),
            [feedback.shape[0]] if ctx.has_bias else None,
            stride,
            padding,
            dilation,
            False,
            output_padding,
            groups,
            [ctx.needs_input_grad[0], True, ctx.has_bias],
        )
        return grad_x, grad_weight, grad_bias, None, None, None


class ChainFeedbackRule(GradientRule):
    """Errors passed down layer by layer, each layer's input error through its own feedback
    (`feedback_for`) instead of its forward weight.

    Each converted layer's `forward` is replaced, on the instance only, by a call of
    `FeedbackLinear` / `FeedbackConv` with the layer's own parameters (BioTorch's Function per
    layer, without swapping the module: names, `state_dict` keys and hooks stay the user's);
    `detach` removes it. When the rule is bypassed or no graph is built, the layer runs its own
    forward."""

    config_class = FeedbackConfig

    def _register(self, model: nn.Module) -> list[Any]:
        handles = []
        for index, layer in enumerate(self.layers_):
            geometry = None if isinstance(layer, nn.Linear) else (layer.stride, conv_padding(layer), layer.dilation, [0] * len(layer.stride), layer.groups)
            handles.append(override_forward(layer, partial(self._forward, index, layer, geometry)))
        return handles

    def _forward(self, index: int, layer: nn.Module, geometry: tuple | None, own: Any, x: torch.Tensor) -> torch.Tensor:
        if self.bypass or not (x.requires_grad and torch.is_grad_enabled()):  # no graph, or the input is data
            return own(x)
        feedback = self.feedback_for(index, layer)
        if geometry is None:
            return FeedbackLinear.apply(x, layer.weight, layer.bias, feedback)
        return FeedbackConv.apply(x, layer.weight, layer.bias, feedback, layer, geometry)

    def feedback_for(self, index: int, layer: nn.Module) -> torch.Tensor:
        """The matrix that stands in for layer `index`'s weight in the backward pass."""
        raise NotImplementedError


class FeedbackAlignment(ChainFeedbackRule):
    name = "fa"

    def _register(self, model: nn.Module) -> list[Any]:
        if len(getattr(self, "feedback", ())) != len(self.layers_):
            self.feedback = nn.ModuleList(LazyFeedback() for _ in self.layers_)
        self.slots_ = list(self.feedback)  # plain list: indexing a ModuleList costs more per step
        return super()._register(model)

    def feedback_for(self, index: int, layer: nn.Module) -> torch.Tensor:
        """B for layer `index`, drawn from the rule's generator when the layer first passes an
        error down (the first layer, whose input is data, never does and gets none)."""
        matrix = self.slots_[index].weight
        if matrix is None:
            weight = layer.weight
            drawn = uniform_feedback(tuple(weight.shape), fan_out(layer), self.config.feedback_scale, self.generator)
            matrix = self.slots_[index].materialize(drawn.to(weight))
        return matrix

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
        return [(f"B{index + 1}", slot.weight, layer.weight) for index, (slot, layer) in enumerate(zip(self.feedback, self.layers_, strict=True)) if slot.ready]
